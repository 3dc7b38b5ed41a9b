"""Torch as the oracle for whole networks: shapes and parameters per layer, measured fields."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from archspec import Report
from archspec.analysis import LayerReport, ReceptiveField
from archspec.ops import Window
from archspec.ops.base import Steps
from archspec.ops.layouts import POSITIONS, layout_of

LAYER = "archspec_layer"  # fx node meta key: the dotted name of the layer the node computes
Shape = tuple[int, ...]
Span = tuple[int, int]  # first and last pixel along one axis, inclusive


class ShapeRecorder(fx.Interpreter):
    """Run a compiled spec node by node, keeping each layer's output shape without the batch."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.shapes: dict[str, Shape] = {}

    def run_node(self, node: fx.Node) -> Any:
        result = super().run_node(node)
        layer = node.meta.get(LAYER)
        if (
            layer is not None
        ):  # an add of n inputs is n - 1 nodes; the last one is the layer's output
            self.shapes[layer] = tuple(result.shape[1:])
        return result


def layer_shapes(module: fx.GraphModule, batch: torch.Tensor) -> dict[str, Shape]:
    recorder = ShapeRecorder(module)
    with torch.no_grad():
        recorder.run(batch)
    return recorder.shapes


def layer_params(module: nn.Module, report: Report) -> dict[str, int]:
    """Numel of the parameters under each layer's module path, or of the learned tensor at it
    (0 for layers lowered to calls)."""
    counts = {}
    for layer in report.layers:
        try:
            owner = module.get_submodule(layer.name)
        except AttributeError:
            try:
                counts[layer.name] = module.get_parameter(layer.name).numel()
            except AttributeError:
                counts[layer.name] = 0
            continue
        counts[layer.name] = sum(p.numel() for p in owner.parameters())
    return counts


def spatial_layers(report: Report) -> list[LayerReport]:
    """Layers whose units see part of the input exactly, in order: the input's spatial axes kept
    in the output ((C, L), (C, H, W) or (C, T, H, W)), field not global, and no step before them
    by a fraction of a pixel, where the recurrence is an approximation (upsampling a strided map)
    or a bound (adaptive pooling that does not divide)."""
    positions = position_axes(report.input_shape)
    inexact: set[str] = set()
    chosen = []
    for layer in report.layers:
        if _fractional(layer.op.window(layer.input_shapes)) or inexact.intersection(layer.inputs):
            inexact.add(layer.name)
        elif (
            positions
            and position_axes(layer.output_shape) == positions
            and layer.receptive_field is not None
            and not layer.receptive_field.is_global
            and not layer.receptive_field.constant
        ):
            chosen.append(layer)
    return chosen


def position_axes(shape: Sequence[int]) -> str:
    """The letters of `shape`'s position axes in order ("HW" for (C, H, W) and (H, W, C))."""
    return "".join(axis for axis in layout_of(shape) if axis in POSITIONS)


def position_sizes(shape: Sequence[int]) -> tuple[int, ...]:
    """The sizes of `shape`'s position axes: (H, W) of a (C, H, W) or an (H, W, C) map."""
    return tuple(
        size for size, axis in zip(shape, layout_of(shape), strict=True) if axis in POSITIONS
    )


def _fractional(steps: Steps) -> bool:
    return any(
        isinstance(step, Window)
        and not all(isinstance(value, int) for value in (*step.stride, *step.padding))
        for step in (steps if isinstance(steps, tuple) else (steps,))
    )


# -- receptive field, measured -----------------------------------------------------------------

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
#: Adaptive max pooling's windows, averaged, by the max pool's class.
ADAPTIVE_AVERAGES: dict[type[nn.Module], type[nn.Module]] = {
    nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
}


def make_positive_average(module: fx.GraphModule) -> None:
    """Turn the network into one where every unit is a positive weighted mean of what it reads.

    Then, for positive inputs, an input pixel has a non-zero gradient with respect to a unit exactly
    when some chain of windows connects them: the measured receptive field. Convolution and linear
    weights become 1/fan_in with zero bias, batch norm the identity, and max pooling an average
    over the same windows.
    """
    for name, child in list(module.named_modules()):
        if isinstance(child, CONVOLUTIONS):
            nn.init.constant_(child.weight, 1 / child.weight[0].numel())
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.LayerNorm):
            # it mixes one position's features only, so the identity keeps the geometry; as it
            # is, its outputs sum to a constant, and a probe summing them would see no input
            _replace(module, name, nn.Identity())
        elif isinstance(child, BATCH_NORMS):
            assert child.track_running_stats, f"{name}: batch norm without running stats"
            child.reset_parameters()  # weight 1, bias 0, running mean 0, running variance 1
        elif isinstance(child, MAX_POOLS):
            # Max sends the gradient to one element of each window only, which would hide the rest
            # of the field. An average over the same windows (same kernel, stride, padding,
            # dilation and ceil_mode: the same geometry, hence the same receptive field) sends
            # gradient to every element it reads.
            _replace(module, name, WindowAverage(child))
        elif type(child) in ADAPTIVE_AVERAGES:
            _replace(module, name, ADAPTIVE_AVERAGES[type(child)](child.output_size))
    module.eval()
    module.requires_grad_(False)


def _replace(module: nn.Module, name: str, replacement: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    module.get_submodule(parent).add_module(leaf, replacement)


def _axes(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


#: Average pooling and convolution by the number of spatial axes.
AVERAGE_POOLS: dict[int, type[nn.Module]] = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
CONVOLVE = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class WindowAverage(nn.Module):
    """The windows of a max pool, averaged: (N, C, *spatial) -> (N, C, *spatial') of the pool's.

    An average pool has the same windows when the pool has no dilation; a dilated pool becomes a
    depthwise convolution with constant weights over the same dilated windows.
    """

    def __init__(self, pool: nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d) -> None:
        super().__init__()
        self.pool = pool
        self.rank = MAX_POOLS.index(type(pool)) + 1
        self.kernel, self.stride, self.padding, self.dilation = (
            _axes(value, self.rank)
            for value in (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
        )
        self.average = AVERAGE_POOLS[self.rank](
            self.kernel, self.stride, self.padding, pool.ceil_mode
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if all(d == 1 for d in self.dilation):
            return self.average(x)
        out = self.pool(x).shape[2:]  # torch decides how many windows there are
        # zero padding in front as the pool has it, and behind as far as the last window reaches
        behind = [
            max(0, (o - 1) * s + d * (k - 1) + 1 - p - n)
            for o, s, d, k, p, n in zip(
                out,
                self.stride,
                self.dilation,
                self.kernel,
                self.padding,
                x.shape[2:],
                strict=True,
            )
        ]
        # F.pad takes (front, back) pairs from the last axis to the first
        pairs = reversed(list(zip(self.padding, behind, strict=True)))
        padded = F.pad(x, [pad for pair in pairs for pad in pair])
        weight = x.new_full((x.shape[1], 1, *self.kernel), 1 / math.prod(self.kernel))
        convolve = CONVOLVE[self.rank]
        y = convolve(padded, weight, stride=self.stride, dilation=self.dilation, groups=x.shape[1])
        return y[(..., *(slice(0, o) for o in out))]


def truncated(module: fx.GraphModule, layers: Sequence[str]) -> fx.GraphModule:
    """A copy of `module` that returns the outputs of `layers` (a tuple) and stops there."""
    last = {node.meta[LAYER]: node for node in module.graph.nodes if node.meta.get(LAYER) in layers}
    graph = fx.Graph()
    copies: dict[fx.Node, fx.Node] = {}
    for node in module.graph.nodes:
        if node.op == "output":
            break
        copies[node] = graph.node_copy(node, copies.__getitem__)
    graph.output(tuple(copies[last[name]] for name in layers))
    result = fx.GraphModule(module, graph)
    result.graph.eliminate_dead_code()  # layers after the last one asked for
    result.recompile()
    return result


def positive_image(shape: Shape, dtype: torch.dtype) -> torch.Tensor:
    """(1, C, *spatial) of values in [0.5e-3, 1e-3]: positive, and small enough that ReLU6 never
    saturates (a residual add at most doubles a value; MobileNetV2's largest is then 0.76)."""
    generator = torch.Generator().manual_seed(0)
    return (1 + torch.rand(1, *shape, generator=generator, dtype=dtype)) * 0.5e-3


#: First and last pixel reached along each spatial axis: (L,), (H, W) or (T, H, W).
Box = tuple[Span, ...]
#: One output position: its index along each spatial axis.
Position = tuple[int, ...]


class FieldProbe:
    """Run once up to some layers; then, per output position, the input pixels it sees.

    A layer's field covers all its channels: behind a concat or a grouped convolution, channels
    see different parts of the input. So a position's units are summed over channels.
    """

    def __init__(self, module: fx.GraphModule, layers: Sequence[str], image: torch.Tensor) -> None:
        self.image = image.clone().requires_grad_(True)
        self.outputs = dict(zip(layers, truncated(module, layers)(self.image), strict=True))

    def box(self, layer: str, position: Position, shape: Sequence[int] = ()) -> Box | None:
        """Bounding box of the non-zero input gradient of `position`, or None if none; `shape`
        (laid out) says where the position axes are, channels first when not given."""
        layout = layout_of(shape) if shape else "C" + "P" * len(position)
        places = iter(position)
        index = [next(places) if axis not in "CF" else slice(None) for axis in layout]
        unit = self.outputs[layer][(0, *index)].sum()
        (grad,) = torch.autograd.grad(unit, self.image, retain_graph=True)
        seen = grad[0].abs().sum(0)  # (*spatial), summed over input channels
        reached = torch.nonzero(seen)
        if len(reached) == 0:
            return None
        low, high = reached.min(0).values.tolist(), reached.max(0).values.tolist()
        return tuple(zip(low, high, strict=True))


def unit_span(centre: float, size: int, extent: int) -> Span:
    """Pixels of a field `size` wide centred on `centre`, clipped to an image `extent` long."""
    half = (size - 1) / 2
    low, high = centre - half, centre + half
    assert low.is_integer(), f"a field of {size} cannot centre on {centre}"
    return max(0, int(low)), min(extent - 1, int(high))


def static_box(field: ReceptiveField, position: Position, spatial: Sequence[int]) -> Box:
    """The report's field of the unit at `position`: centre offset + index * stride, clipped."""
    return tuple(
        unit_span(offset + index * stride, size, extent)
        for offset, index, stride, size, extent in zip(
            field.offset, position, field.stride, field.size, spatial, strict=True
        )
    )
