"""The analysis report: records per layer and totals, and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archspec.analysis.receptive_field import ReceptiveField
from archspec.errors import Diagnostic, suggest
from archspec.ops.base import Op, Rational, Shape
from archspec.ops.layouts import layout_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from archspec.analysis.folding import Row

BATCH = "N"
#: Activations are counted as float32.
BYTES_PER_ELEMENT = 4


@dataclass(frozen=True)
class LayerReport:
    """Static figures of one layer; shapes exclude the batch, counts are per sample."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    input_shapes: tuple[Shape, ...]  # per sample, in the order of `inputs`
    frozen: bool  # as the spec says, even for a layer without parameters (affine: false)
    output_shape: Shape
    params: int
    trainable_params: int
    macs: int
    flops: int
    activation_bytes: int
    receptive_field: ReceptiveField | None
    #: The layer's opaque origin, for a frontend's lookup to place messages about it.
    origin: Any = field(default=None, compare=False)

    @property
    def op_name(self) -> str:
        return self.op.op

    def __repr__(self) -> str:
        frozen = ", frozen" if self.frozen else ""
        return (
            f"<LayerReport {self.name}: {self.op_name} -> {short_shape(self.output_shape)}, "
            f"{self.params:,} params, {self.macs:,} MACs{frozen}>"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "op": self.op.op,
            "inputs": list(self.inputs),
            "output_shape": [BATCH, *self.output_shape],
            "layout": layout_of(self.output_shape),
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "receptive_field": _field_json(self.receptive_field),
            "config": self.op.model_dump(mode="json", exclude={"op"}),
        }


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    macs: int
    flops: int
    activation_bytes: int

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    def to_json(self) -> dict[str, int]:
        return {
            "params": self.params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
        }


@dataclass(frozen=True)
class Report:
    """Static analysis of a whole network at one input shape."""

    name: str
    input_shape: Shape
    layers: tuple[LayerReport, ...]
    outputs: tuple[str, ...]
    totals: Totals
    warnings: tuple[Diagnostic, ...]
    #: The names the module returns its outputs under (a dict), or () for a tensor or a tuple.
    output_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        from archspec.outputs.text import si  # the formatting of the tables, kept in one place

        return (
            f"<Report {self.name}: {len(self.layers):,} layers, input "
            f"{short_shape(self.input_shape)}, {self.totals.params:,} params, "
            f"{si(self.totals.macs)} MACs>"
        )

    def layer(self, name: str) -> LayerReport:
        """The layer called `name`; KeyError naming the nearest names when there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(_missing(self, name))

    def fold(self, depth: int | None = None) -> tuple[Row, ...]:
        """One row per group of layers below `depth` (see `archspec.analysis.folding.fold`)."""
        from archspec.analysis.folding import fold

        return fold(self, depth)

    def to_table(
        self,
        depth: int | None = None,
        columns: str | Sequence[str] | None = None,
        width: int | None = None,
    ) -> str:
        """The boxed text table (see `archspec.outputs.render.to_table`)."""
        from archspec.outputs.render import to_table

        return to_table(self, depth=depth, columns=columns, width=width)

    def to_markdown(
        self, depth: int | None = None, columns: str | Sequence[str] | None = None
    ) -> str:
        """A Markdown table and the totals (see `archspec.outputs.render.to_markdown`)."""
        from archspec.outputs.render import to_markdown

        return to_markdown(self, depth=depth, columns=columns)

    def _repr_markdown_(self) -> str:
        from archspec.outputs.notebook import markdown_view

        return markdown_view(self)

    def _repr_html_(self) -> str:
        from archspec.outputs.notebook import html_view

        return html_view(self)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "input_shape": [BATCH, *self.input_shape],
            "input_layout": layout_of(self.input_shape),
            "layers": [layer.to_json() for layer in self.layers],
            "outputs": list(self.outputs),
            "output_keys": list(self.output_keys) if self.output_keys else None,
            "totals": self.totals.to_json(),
            "warnings": [warning.to_json() for warning in self.warnings],
        }


def short_shape(shape: Shape) -> str:
    """`(N, 64, 56, 56)`: a shape with its batch, without naming its layout."""
    return "(" + ", ".join([BATCH, *(str(dim) for dim in shape)]) + ")"


#: Nearest names a miss suggests.
SUGGESTIONS = 3


def _missing(report: Report, name: str) -> str:
    """Why `name` is not a layer: the group it names, or the nearest names."""
    inside = [layer.name for layer in report.layers if layer.name.startswith(name + ".")]
    if inside:
        return (
            f"{name!r} is a group of {len(inside):,} layers ({inside[0]} … {inside[-1]}), "
            "not a layer; report.fold(depth) sums groups"
        )
    nearest = suggest(name, (layer.name for layer in report.layers), SUGGESTIONS)
    return f"no layer {name!r} in {report.name}{nearest}"


def _field_json(field: ReceptiveField | None) -> dict[str, object] | None:
    if field is None:
        return None
    return {
        "size": [_compact(value) for value in field.size],
        "stride": [_compact(value) for value in field.stride],
        "offset": [_compact(value) for value in field.offset],
        "global": field.is_global,
        "aligned": field.aligned,
        "constant": field.constant,
    }


def _compact(value: Rational) -> int | float:
    # JSON has no fractions: whole values stay ints, the rest (after upsampling) become floats
    return value if isinstance(value, int) else float(value)
