"""Receptive fields measured: backpropagate from one output unit, see which input pixels it reached.

The static field of a unit is its centre (offset + index * stride) and size, clipped to the image;
the measured one is the bounding box of the non-zero input gradient once the network is a positive
average (tests/oracle.py). No number here comes from the recurrence archspec uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import (
    FieldProbe,
    layer_params,
    layer_shapes,
    make_positive_average,
    positive_image,
    spatial_layers,
    static_box,
)
from torch import nn

import archspec
from archspec.backends.torch import compile_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# torch warns, once per process, that 'same' padding with an even kernel copies the input: a
# performance notice about a legal convolution, nothing to do with what is checked here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)

#: Input sizes other than the spec's own, so that the corner unit's field ends inside the image.
#: MobileNetV2's last field (491 pixels) reaches pixel 245 from the corner. ResNet-101's (971)
#: would need 512x512, seconds of compute; at 224 its fields are clipped on both sides.
ZOO_SIZES = {"mobilenet_v2": 256}


def measured_mismatches(
    report: archspec.Report,
    module: Any,
    layers: list[str],
    units: dict[str, list[tuple[int, int]]],
    dtype: torch.dtype,
) -> list[str]:
    """Compare, unit by unit, the gradient's bounding box with the report's clipped field."""
    make_positive_average(module)
    module.to(dtype)
    probe = FieldProbe(module, layers, positive_image(report.input_shape, dtype))
    spatial = (report.input_shape[1], report.input_shape[2])
    found = []
    for name in layers:
        field = report.layer(name).receptive_field
        assert field is not None
        for row, col in units[name]:
            expected = static_box(field, row, col, spatial)
            measured = probe.box(name, row, col)
            if measured != expected:
                found.append(f"{name} unit ({row}, {col}): static {expected}, measured {measured}")
    return found


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_zoo_fields_match_gradients(path):
    """A middle layer and the last spatial one: their top-left unit and a central one."""
    spec = archspec.load(path)
    size = ZOO_SIZES.get(path.stem)
    report = archspec.analyze(spec, (spec.graph.input_shape[0], size, size) if size else None)
    chosen = spatial_layers(report)
    chosen = [chosen[len(chosen) // 2], chosen[-1]]
    units = {
        layer.name: [(0, 0), (layer.output_shape[1] // 2, layer.output_shape[2] // 2)]
        for layer in chosen
    }
    # float32 keeps the large nets fast; the smallest gradient at a field's edge is a product of
    # one weight per layer, about 3^-34 in ResNet-101, far above float32's smallest number
    module = compile_module(spec, report)
    found = measured_mismatches(report, module, list(units), units, torch.float32)
    assert not found


# -- random networks ------------------------------------------------------------------------------


def _meta(module: nn.Module, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Output shape of `module` by torch's own rules, without computing anything."""
    c, h, w = module(torch.empty(1, *shape, device="meta")).shape[1:]
    return c, h, w


def _pair(draw: st.DrawFn, low: int, high: int) -> tuple[int, int]:
    first = draw(st.integers(low, high))
    return (first, first) if draw(st.booleans()) else (first, draw(st.integers(low, high)))


def _conv(
    name: str, in_channels: int, out: int, kernel: tuple[int, int], **fields: Any
) -> dict[str, Any]:
    """A conv2d layer entry, and the module that torch would build for it (under key `torch`)."""
    stride, padding = fields.get("stride", (1, 1)), fields.get("padding", (0, 0))
    dilation, groups = fields.get("dilation", (1, 1)), fields.get("groups", 1)
    module = nn.Conv2d(in_channels, out, kernel, stride, padding, dilation, groups, device="meta")
    entry = {"name": name, "op": "conv2d", "out_channels": out, "kernel": list(kernel)}
    entry.update(
        {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()}
    )
    return {**entry, "torch": module}


class _Builder:
    """Appends layers while tracking the shape with torch; a block torch rejects is dropped."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.layers: list[dict[str, Any]] = []
        self.last = "input"

    def name(self) -> str:
        return f"l{len(self.layers)}"

    def add(self, entries: list[dict[str, Any]], shapes: dict[str, tuple[int, int, int]]) -> None:
        self.layers += [{k: v for k, v in entry.items() if k != "torch"} for entry in entries]
        self.last = entries[-1]["name"]
        self.shape = shapes[self.last]


def _run(
    entries: list[dict[str, Any]], shape: tuple[int, int, int], last: str
) -> dict[str, tuple[int, int, int]]:
    """Shapes of each entry by torch's rules (add and concat by their definitions)."""
    shapes = {last: shape}
    previous = last
    for entry in entries:
        sources = [shapes[name] for name in entry.get("inputs", [previous])]
        if entry["op"] == "add":
            assert len(set(sources)) == 1, f"the generator built an add of {sources}"
            shapes[entry["name"]] = sources[0]
        elif entry["op"] == "concat":
            assert len({s[1:] for s in sources}) == 1, f"the generator built a concat of {sources}"
            shapes[entry["name"]] = (sum(s[0] for s in sources), *sources[0][1:])
        else:
            shapes[entry["name"]] = _meta(entry["torch"], sources[0])
        previous = entry["name"]
    return shapes


@st.composite
def _conv_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    in_channels = b.shape[0]
    groups = draw(st.sampled_from([g for g in range(1, in_channels + 1) if in_channels % g == 0]))
    fields: dict[str, Any] = {"dilation": _pair(draw, 1, 2), "groups": groups}
    mode = draw(st.sampled_from(["explicit", "explicit", "same", "valid"]))
    if mode == "same":
        fields["padding"] = "same"
    else:
        fields["stride"] = _pair(draw, 1, 2)
        fields["padding"] = _pair(draw, 0, 3) if mode == "explicit" else "valid"
    out = groups * draw(st.integers(1, max(1, 6 // groups)))
    entries = [_conv(b.name(), in_channels, out, _pair(draw, 1, 5), **fields)]
    if draw(st.booleans()):
        entries.append({"name": f"l{len(b.layers) + 1}", "op": "relu", "torch": nn.ReLU()})
    return entries


@st.composite
def _pool_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    kernel = _pair(draw, 1, 3)
    # torch's limit, p <= k // 2 (tests/test_ops.py checks archspec keeps it too)
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    stride = _pair(draw, 1, 2) if draw(st.booleans()) else None
    ceil_mode = draw(st.booleans())
    entry: dict[str, Any] = {
        "name": b.name(),
        "kernel": list(kernel),
        "padding": list(padding),
        "ceil_mode": ceil_mode,
    }
    if stride is not None:
        entry["stride"] = list(stride)
    if draw(st.booleans()):
        dilation = _pair(draw, 1, 2)
        entry.update(op="max_pool2d", dilation=list(dilation))
        entry["torch"] = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    else:
        entry["op"] = "avg_pool2d"
        entry["torch"] = nn.AvgPool2d(kernel, stride, padding, ceil_mode)
    return [entry]


@st.composite
def _residual_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    """Two convs plus a shortcut, joined by `add`: identity, or a strided 1x1 conv (ResNet)."""
    start, channels, n = b.last, b.shape[0], len(b.layers)
    if draw(st.booleans()):  # identity shortcut: 'same'-size convs, odd kernels centred by padding
        entries = []
        for index in range(2):
            kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
            dilation = _pair(draw, 1, 2)
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
            entries.append(
                _conv(
                    f"l{n + index}", channels, channels, kernel, dilation=dilation, padding=padding
                )
            )
        entries.append({"name": f"l{n + 2}", "op": "add", "inputs": [f"l{n + 1}", start]})
    else:  # downsampling: 3x3/2 then 3x3 on the main path, 1x1/2 on the shortcut
        out = draw(st.integers(1, 6))
        entries = [
            _conv(f"l{n}", channels, out, (3, 3), stride=(2, 2), padding=(1, 1)),
            {"name": f"l{n + 1}", "op": "batchnorm2d", "torch": nn.BatchNorm2d(out, device="meta")},
            _conv(f"l{n + 2}", out, out, (3, 3), padding=(1, 1)),
            {**_conv(f"l{n + 3}", channels, out, (1, 1), stride=(2, 2)), "inputs": [start]},
            {"name": f"l{n + 4}", "op": "add", "inputs": [f"l{n + 2}", f"l{n + 3}"]},
        ]
    return [*entries, {"name": f"l{n + len(entries)}", "op": "relu", "torch": nn.ReLU()}]


@st.composite
def _concat_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    """Two convs of one stride on the same input, concatenated; their windows share a centre:
    d(k-1)/2 - p is equal, hence the output sizes too."""
    start, channels, n = b.last, b.shape[0], len(b.layers)
    stride = _pair(draw, 1, 2)
    kernels, dilations, paddings = [], [], []
    for _ in range(2):  # height, then width
        k_a, d_a = draw(st.integers(1, 5)), draw(st.integers(1, 2))
        extent_a = d_a * (k_a - 1) + 1
        d_b = 1 if extent_a % 2 == 0 else draw(st.integers(1, 2))  # even extents need d odd
        k_b = draw(
            st.sampled_from([k for k in range(1, 6) if (d_b * (k - 1) + 1) % 2 == extent_a % 2])
        )
        p_a = draw(st.integers(0, 3))
        p_b = p_a + (d_b * (k_b - 1) + 1 - extent_a) // 2
        shift = max(0, -p_b)
        kernels.append((k_a, k_b))
        dilations.append((d_a, d_b))
        paddings.append((p_a + shift, p_b + shift))
    branches = []
    for index in range(2):
        kernel = (kernels[0][index], kernels[1][index])
        dilation = (dilations[0][index], dilations[1][index])
        padding = (paddings[0][index], paddings[1][index])
        entry = _conv(
            f"l{n + index}",
            channels,
            draw(st.integers(1, 4)),
            kernel,
            stride=stride,
            dilation=dilation,
            padding=padding,
        )
        branches.append({**entry, "inputs": [start]})
    return [*branches, {"name": f"l{n + 2}", "op": "concat", "inputs": [f"l{n}", f"l{n + 1}"]}]


@dataclass(frozen=True)
class Network:
    """A random spec: layers as YAML-ready dicts, at any input size (every block is size-safe)."""

    channels: int
    height: int
    width: int
    layers: tuple[dict[str, Any], ...]

    def text(self, height: int | None = None, width: int | None = None) -> str:
        shape = [self.channels, height or self.height, width or self.width]
        return yaml.safe_dump(
            {"name": "random", "input": shape, "layers": list(self.layers)}, sort_keys=False
        )


@st.composite
def networks(draw: st.DrawFn) -> Network:
    odd = st.integers(8, 32).map(lambda half: 2 * half + 1)  # 17 .. 65
    channels, height, width = draw(st.integers(1, 4)), draw(odd), draw(odd)
    b = _Builder((channels, height, width))
    for _ in range(draw(st.integers(1, 4))):
        block = draw(st.sampled_from([_conv_block, _pool_block, _residual_block, _concat_block]))
        try:
            entries = draw(block(b))
            shapes = _run(entries, b.shape, b.last)
        except RuntimeError:  # torch rejects this block at this size: leave it out
            continue
        b.add(entries, shapes)
    if not b.layers:
        b.add([{"name": "l0", "op": "identity"}], {"l0": b.shape})
    return Network(channels, height, width, tuple(b.layers))


@settings(deadline=None)
@given(network=networks())
def test_random_networks_match_torch(network):
    spec = archspec.load(network.text())
    report = archspec.analyze(spec)
    torch.manual_seed(0)
    module = compile_module(spec, report)
    shapes = layer_shapes(module, torch.randn(2, *report.input_shape))
    assert shapes == {layer.name: layer.output_shape for layer in report.layers}
    assert layer_params(module, report) == {layer.name: layer.params for layer in report.layers}


def _inside(field_axis: tuple[int, int, float], count: int, extent: int) -> int | None:
    """The middle one of the units whose field lies wholly inside the image along one axis."""
    size, stride, offset = field_axis
    half = (size - 1) / 2
    inside = [
        i
        for i in range(count)
        if offset + i * stride - half >= 0 and offset + i * stride + half <= extent - 1
    ]
    return inside[len(inside) // 2] if inside else None


def _fitting_unit(network: Network) -> tuple[archspec.Spec, archspec.Report, int, int]:
    """The spec at the drawn size, or grown (odd sizes, per axis) until a unit of its last layer
    has a field the image holds whole; with that unit's (row, col)."""
    height, width = network.height, network.width
    while True:
        spec = archspec.load(network.text(height, width))
        report = archspec.analyze(spec)
        last = report.layers[-1]
        field = last.receptive_field
        assert field is not None
        row = _inside(
            (field.size[0], field.stride[0], field.offset[0]), last.output_shape[1], height
        )
        col = _inside(
            (field.size[1], field.stride[1], field.offset[1]), last.output_shape[2], width
        )
        if row is not None and col is not None:
            return spec, report, row, col
        assert height + width < 10_000, f"no unit of {last.name} fits whole in {height}x{width}"
        if row is None:
            height = max(height + 2, field.size[0] | 1)
        if col is None:
            width = max(width + 2, field.size[1] | 1)


@settings(deadline=None)
@given(network=networks())
def test_random_network_field_matches_gradients(network):
    """A unit of the last layer whose field the image holds whole, so nothing is clipped.

    Its extreme pixels are then reached along chains of real (not padding) units, so the measured
    box must equal the static one exactly, dilation holes and dropped edges notwithstanding.
    """
    spec, report, row, col = _fitting_unit(network)
    last = report.layers[-1]
    assert last.receptive_field is not None
    assert last.receptive_field.aligned, "the generator joins only paths of one centre and stride"
    module = compile_module(spec, report)
    units = {last.name: [(row, col)]}
    assert not measured_mismatches(report, module, [last.name], units, torch.float64)
