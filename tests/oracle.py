"""Torch as the oracle for whole networks: shapes and parameters per layer, measured fields."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from archspec import Report
from archspec.analysis import LayerReport, ReceptiveField

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
    """Numel of the parameters under each layer's module path (0 for layers lowered to calls)."""
    counts = {}
    for layer in report.layers:
        try:
            owner = module.get_submodule(layer.name)
        except AttributeError:
            owner = nn.Module()
        counts[layer.name] = sum(p.numel() for p in owner.parameters())
    return counts


def spatial_layers(report: Report) -> list[LayerReport]:
    """Layers whose units see part of the image, in order: (C, H, W) output, field not global."""
    return [
        layer
        for layer in report.layers
        if len(layer.output_shape) == 3
        and layer.receptive_field is not None
        and not layer.receptive_field.is_global
    ]


# -- receptive field, measured -----------------------------------------------------------------


def make_positive_average(module: fx.GraphModule) -> None:
    """Turn the network into one where every unit is a positive weighted mean of what it reads.

    Then, for positive inputs, an input pixel has a non-zero gradient with respect to a unit exactly
    when some chain of windows connects them: the measured receptive field. Convolution and linear
    weights become 1/fan_in with zero bias, batch norm the identity, and max pooling an average
    over the same windows.
    """
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.Conv2d | nn.Linear):
            nn.init.constant_(child.weight, 1 / child.weight[0].numel())
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.BatchNorm2d):
            assert child.track_running_stats, f"{name}: batch norm without running stats"
            child.reset_parameters()  # weight 1, bias 0, running mean 0, running variance 1
        elif isinstance(child, nn.MaxPool2d):
            # Max sends the gradient to one element of each window only, which would hide the rest
            # of the field. An average over the same windows (same kernel, stride, padding,
            # dilation and ceil_mode: the same geometry, hence the same receptive field) sends
            # gradient to every element it reads.
            parent, _, leaf = name.rpartition(".")
            module.get_submodule(parent).add_module(leaf, WindowAverage(child))
    module.eval()
    module.requires_grad_(False)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


class WindowAverage(nn.Module):
    """The windows of a max pool, averaged: (N, C, H, W) -> (N, C, H', W') of the pool's H', W'.

    AvgPool2d has the same windows when the pool has no dilation; a dilated pool becomes a
    depthwise convolution with constant weights over the same dilated windows.
    """

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.pool = pool
        self.kernel, self.stride, self.padding, self.dilation = (
            _pair(value) for value in (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
        )
        self.average = nn.AvgPool2d(self.kernel, self.stride, self.padding, pool.ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dilation == (1, 1):
            return self.average(x)
        out = self.pool(x).shape[-2:]  # torch decides how many windows there are
        # zero padding in front as the pool has it, and behind as far as the last window reaches
        behind = [
            max(0, (o - 1) * s + d * (k - 1) + 1 - p - n)
            for o, s, d, k, p, n in zip(
                out,
                self.stride,
                self.dilation,
                self.kernel,
                self.padding,
                x.shape[-2:],
                strict=True,
            )
        ]
        padded = F.pad(x, (self.padding[1], behind[1], self.padding[0], behind[0]))
        weight = x.new_full((x.shape[1], 1, *self.kernel), 1 / (self.kernel[0] * self.kernel[1]))
        y = F.conv2d(padded, weight, stride=self.stride, dilation=self.dilation, groups=x.shape[1])
        return y[..., : out[0], : out[1]]


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
    """(1, C, H, W) of values in [0.5e-3, 1e-3]: positive, and small enough that ReLU6 never
    saturates (a residual add at most doubles a value; MobileNetV2's largest is then 0.76)."""
    generator = torch.Generator().manual_seed(0)
    return (1 + torch.rand(1, *shape, generator=generator, dtype=dtype)) * 0.5e-3


@dataclass(frozen=True)
class Box:
    rows: Span
    cols: Span


class FieldProbe:
    """Run once up to some layers; then, per output position, the input pixels it sees.

    A layer's field covers all its channels: behind a concat or a grouped convolution, channels
    see different parts of the input. So a position's units are summed over channels.
    """

    def __init__(self, module: fx.GraphModule, layers: Sequence[str], image: torch.Tensor) -> None:
        self.image = image.clone().requires_grad_(True)
        self.outputs = dict(zip(layers, truncated(module, layers)(self.image), strict=True))

    def box(self, layer: str, row: int, col: int) -> Box | None:
        """Bounding box of the non-zero input gradient of position (row, col), or None if none."""
        unit = self.outputs[layer][0, :, row, col].sum()
        (grad,) = torch.autograd.grad(unit, self.image, retain_graph=True)
        seen = grad[0].abs().sum(0)  # (H, W), summed over input channels
        rows = torch.nonzero(seen.sum(1)).flatten()
        cols = torch.nonzero(seen.sum(0)).flatten()
        if len(rows) == 0:
            return None
        return Box((int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())))


def unit_span(centre: float, size: int, extent: int) -> Span:
    """Pixels of a field `size` wide centred on `centre`, clipped to an image `extent` long."""
    half = (size - 1) / 2
    low, high = centre - half, centre + half
    assert low.is_integer(), f"a field of {size} cannot centre on {centre}"
    return max(0, int(low)), min(extent - 1, int(high))


def static_box(field: ReceptiveField, row: int, col: int, spatial: tuple[int, int]) -> Box:
    """The report's field of unit (row, col): centre offset + index * stride, clipped."""
    return Box(
        unit_span(field.offset[0] + row * field.stride[0], field.size[0], spatial[0]),
        unit_span(field.offset[1] + col * field.stride[1], field.size[1], spatial[1]),
    )
