"""Fold a report's layers into one row per group below a depth of their dotted names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from archspec.analysis.receptive_field import ReceptiveField
from archspec.analysis.report import LayerReport, Report, short_shape
from archspec.errors import UsageError
from archspec.ops.base import Shape

#: Rows a notebook shows at most, when a depth can keep them that few.
VIEW_ROWS = 40


@dataclass(frozen=True)
class Row:
    """One line of a folded report: a layer, or a group of layers summed (`layer1` at depth 1
    holds every `layer1.*`). Shapes exclude the batch; counts are per sample."""

    name: str
    op: str  # the layer's op, or a group's size: `32 layers`, `2 x 12 layers` (see count_label)
    inputs: tuple[str, ...]  # the rows it reads from outside itself, folded to the same depth
    output_shape: Shape  # of its last layer
    params: int
    trainable_params: int
    macs: int
    flops: int
    activation_bytes: int
    receptive_field: ReceptiveField | None  # of its last layer
    frozen: bool  # every layer in it is
    layers: tuple[LayerReport, ...] = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"<Row {self.name}: {self.op} -> {short_shape(self.output_shape)}, "
            f"{self.params:,} params, {self.macs:,} MACs>"
        )


def fold(report: Report, depth: int | None = None) -> tuple[Row, ...]:
    """One row per group of layers whose names agree to `depth` parts, in order of each group's
    first layer; a layer named with `depth` parts or fewer is its own row. None: every layer.

    ResNet-50 at depth 1: conv1, bn1, relu, maxpool, layer1..layer4, avgpool, flatten, fc.
    """
    if depth is not None and (isinstance(depth, bool) or depth < 1):
        raise UsageError(f"a folding depth is at least 1 (or None for every layer), got {depth!r}")
    members: dict[str, list[LayerReport]] = {}
    for layer in report.layers:
        members.setdefault(group_of(layer.name, depth), []).append(layer)
    return tuple(_row(name, layers, depth) for name, layers in members.items())


def group_of(name: str, depth: int | None) -> str:
    """The row holding layer `name` at `depth`: its first `depth` dotted parts."""
    parts = name.split(".")
    return name if depth is None or len(parts) <= depth else ".".join(parts[:depth])


def count_label(group: str, names: Sequence[str]) -> str:
    """`24 layers`, or `2 x 12 layers` (a multiplication sign) when the group holds equal
    sub-groups: repeated blocks."""
    depth = group.count(".") + 1
    children: dict[str, int] = {}
    for name in names:
        child = ".".join(name.split(".")[: depth + 1])
        children[child] = children.get(child, 0) + 1
    sizes = set(children.values())
    if len(children) > 1 and len(sizes) == 1 and min(sizes) > 1:
        return f"{len(children)} \N{MULTIPLICATION SIGN} {min(sizes)} layers"
    return f"{len(names)} layers"


def view_depth(report: Report, max_rows: int = VIEW_ROWS) -> int | None:
    """The deepest folding that keeps at most `max_rows` rows (None, every layer, when the
    network is that small; 1 when even that has more)."""
    if len(report.layers) <= max_rows:
        return None
    deepest = max(layer.name.count(".") for layer in report.layers) + 1
    chosen = 1
    for depth in range(1, deepest):
        if len({group_of(layer.name, depth) for layer in report.layers}) > max_rows:
            break
        chosen = depth
    return chosen


def _row(name: str, layers: list[LayerReport], depth: int | None) -> Row:
    last = layers[-1]
    read = dict.fromkeys(group_of(source, depth) for layer in layers for source in layer.inputs)
    read.pop(name, None)  # a group's reads among its own layers are inside it
    return Row(
        name=name,
        op=last.op_name if len(layers) == 1 else count_label(name, [x.name for x in layers]),
        inputs=tuple(read),
        output_shape=last.output_shape,
        params=sum(layer.params for layer in layers),
        trainable_params=sum(layer.trainable_params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        flops=sum(layer.flops for layer in layers),
        activation_bytes=sum(layer.activation_bytes for layer in layers),
        receptive_field=last.receptive_field,
        frozen=all(layer.frozen for layer in layers),
        layers=tuple(layers),
    )
