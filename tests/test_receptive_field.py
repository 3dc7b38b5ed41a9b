"""Receptive fields measured: backpropagate from one output position, see which pixels it reached.

The static field of a unit is its centre (offset + index * stride) and size, clipped to the image;
the measured one is the bounding box of the non-zero input gradient once the network is a positive
average (tests/oracle.py). No number here comes from the recurrence archspec uses. Random networks
(tests/networks.py) are also checked layer by layer against torch's shapes and parameters.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from networks import Network, networks
from oracle import (
    Box,
    FieldProbe,
    Position,
    layer_params,
    layer_shapes,
    make_positive_average,
    position_sizes,
    positive_image,
    spatial_layers,
    static_box,
)

import archspec
from archspec import ops
from archspec.analysis import Axis, ReceptiveField
from archspec.analysis.receptive_field import FIELD_LIMIT, JUMP_FLOOR
from archspec.analysis.report import _field_json
from archspec.backends.torch import compile_module
from archspec.ops import OPS, POINTWISE, Window
from archspec.outputs.render import describe_field

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"

# torch warns, once per process, that 'same' padding with an even kernel copies the input: a
# performance notice about a legal convolution, nothing to do with what is checked here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)

#: Spatial input sizes other than the spec's own: (H, W), or (T, H, W) for a clip.
#: MobileNetV2's last field (491 pixels) reaches pixel 245 from the corner, so at 256 the corner
#: unit's field ends inside the image. ResNet-101's (971) would need 512x512, seconds of compute;
#: at 224 its fields are clipped on both sides. The others only shrink the compute: FCN and
#: DeepLabV3 from 520x520, the video ResNets from 16 frames of 112x112.
ZOO_SIZES: dict[str, tuple[int, ...]] = {
    "mobilenet_v2": (256, 256),
    # smaller inputs for the slowest nets: their fields, clipped on both sides, are still
    # checked against the gradient's box, and each test takes a few seconds instead of 30
    "densenet121": (64, 64),
    "inception_v3": (107, 107),
    "resnet101": (96, 96),
    "csp_pan": (128, 128),
    "googlenet": (96, 96),
    "efficientnet_b0": (96, 96),
    "regnet_y_400mf": (96, 96),
    "fcn_resnet50": (128, 128),
    "deeplabv3_resnet50": (128, 128),
    "convnext_tiny": (64, 64),
    "swin_t": (64, 64),
    "r3d_18": (8, 56, 56),
    "r2plus1d_18": (8, 56, 56),
}
#: Examples where a unit reaches less than its clipped field: a dilated tap that lands wholly in
#: the padding reads nothing, so the pixels beyond it are not reached. There the reached box must
#: lie within the field.
REACH_WITHIN_FIELD = {
    "swin_t": "window attention's field is a bound: 2w - 1 holds the window of any token",
    "deeplabv3_resnet50": "the rate-36 taps of the centre of ASPP's 65x65 map land in the padding",
}


def measured_mismatches(
    report: archspec.Report,
    module: Any,
    layers: list[str],
    units: dict[str, list[Position]],
    dtype: torch.dtype,
    within: bool = False,
) -> list[str]:
    """Compare, unit by unit, the gradient's bounding box with the report's clipped field: equal,
    or `within` it."""
    make_positive_average(module)
    module.to(dtype)
    probe = FieldProbe(module, layers, positive_image(report.input_shape, dtype))
    spatial = report.input_shape[1:]
    found = []
    for name in layers:
        field = report.layer(name).receptive_field
        assert field is not None
        for position in units[name]:
            expected = static_box(field, position, spatial)
            measured = probe.box(name, position, report.layer(name).output_shape)
            if measured != expected and not (within and _inside_box(measured, expected)):
                found.append(f"{name} unit {position}: static {expected}, measured {measured}")
    return found


def _inside_box(inner: Box | None, outer: Box) -> bool:
    return inner is None or all(
        low >= outer_low and high <= outer_high
        for (low, high), (outer_low, outer_high) in zip(inner, outer, strict=True)
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_zoo_fields_match_gradients(path):
    """A middle layer and the last spatial one: their first unit (top-left, of the first frame)
    and a central one."""
    spec = archspec.load(path)
    size = ZOO_SIZES.get(path.stem)
    report = archspec.analyze(spec, (spec.network.input[0], *size) if size else None)
    chosen = spatial_layers(report)
    if not chosen:
        pytest.skip(f"{path.stem} has no layer with a spatial receptive field")
    chosen = [chosen[len(chosen) // 2], chosen[-1]]
    units = {
        layer.name: [
            tuple(0 for _ in position_sizes(layer.output_shape)),
            tuple(extent // 2 for extent in position_sizes(layer.output_shape)),
        ]
        for layer in chosen
    }
    # float32 keeps the large nets fast: the smallest non-zero gradient, at a field's far corner,
    # is about 1e-15 here (ResNet-50, MobileNetV2), far above float32's smallest normal, 1e-38
    module = compile_module(spec, report)
    within = path.stem in REACH_WITHIN_FIELD
    found = measured_mismatches(report, module, list(units), units, torch.float32, within)
    assert not found


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


# -- audio (C, L) and video (C, T, H, W) ---------------------------------------------------------

LayerSpec = tuple[str, str, dict[str, Any]]


def build_network(name: str, input_shape: tuple[int, ...], layers: list[LayerSpec]) -> Any:
    """A Network of ops made from their fields as a spec writes them."""
    made = [archspec.Layer(layer, OPS[op].model_validate(fields)) for layer, op, fields in layers]
    return archspec.Network(name=name, input=input_shape, layers=made)


def _stage(index: int, conv: dict[str, Any], pool: int) -> list[LayerSpec]:
    return [
        (f"conv{index}", "conv1d", {"out_channels": 3, **conv}),
        (f"bn{index}", "batchnorm1d", {}),
        (f"relu{index}", "relu", {}),
        (f"pool{index}", "max_pool1d", {"kernel": pool}),
    ]


#: M5 (Dai et al., 2017), a raw-waveform classifier for 8 kHz audio, with fewer channels: a
#: 80-sample conv of stride 4, then 3-sample convs, each stage pooled by 4.
M5 = [
    *_stage(1, {"kernel": 80, "stride": 4}, 4),
    *_stage(2, {"kernel": 3}, 4),
    *_stage(3, {"kernel": 3}, 4),
    *_stage(4, {"kernel": 3}, 4),
    ("avgpool", "adaptive_avg_pool1d", {"output_size": 1}),
]


def test_m5_audio_fields_in_samples_match_gradients():
    network = build_network("m5", (1, 8000), M5)
    report = archspec.analyze(network)
    # r = 80 (/4), + 3x4 = 92 (/16), + 2x16 = 124, + 3x16 = 172 (/64), + 2x64 = 300,
    # + 3x64 = 492 (/256), + 2x256 = 1004, + 3x256 = 1772 (/1024)
    fields = {
        name: describe_field(report.layer(name).receptive_field) for name in ("conv1", "pool4")
    }
    assert fields == {"conv1": "80 /4", "pool4": "1772 /1024"}
    assert report.layer("pool4").output_shape == (3, 7)
    assert _field_json(report.layer("pool4").receptive_field) == {
        "size": [1772],
        "stride": [1024],
        "offset": [885.5],
        "global": False,
        "aligned": True,
        "constant": False,
    }
    assert describe_field(report.layer("avgpool").receptive_field) == "global"
    # the first, middle and last sample of each: no padding, so every field lies in the input
    lengths = {name: report.layer(name).output_shape[1] for name in ("pool1", "relu3", "pool4")}
    units = {name: [(0,), (length // 2,), (length - 1,)] for name, length in lengths.items()}
    module = compile_module(network, report)
    assert not measured_mismatches(report, module, list(units), units, torch.float64)


#: The stem of torchvision's r3d_18 (conv 3x7x7, stride 1x2x2, padding 1x3x3) and two 3x3x3
#: convolutions, the second of stride 2, then a 2x2x2 max pool, on a clip smaller than its
#: 16 frames of 112x112 so that the probe runs in a second.
R3D_STEM = [
    (
        "stem",
        "conv3d",
        {
            "out_channels": 4,
            "kernel": [3, 7, 7],
            "stride": [1, 2, 2],
            "padding": [1, 3, 3],
            "bias": False,
        },
    ),
    ("stem_bn", "batchnorm3d", {}),
    ("stem_relu", "relu", {}),
    ("conv1", "conv3d", {"out_channels": 4, "kernel": 3, "padding": 1, "bias": False}),
    ("relu1", "relu", {}),
    ("conv2", "conv3d", {"out_channels": 4, "kernel": 3, "stride": 2, "padding": 1, "bias": False}),
    ("relu2", "relu", {}),
    ("pool", "max_pool3d", {"kernel": 2}),
    ("avgpool", "adaptive_avg_pool3d", {"output_size": 1}),
]


def test_r3d_stem_video_fields_match_gradients():
    network = build_network("r3d_stem", (3, 8, 32, 32), R3D_STEM)
    report = archspec.analyze(network)
    # T: 3 (/1), + 2 = 5, + 2 = 7 (/2), + 2 = 9 (/4); H, W: 7 (/2), + 2x2 = 11, + 2x2 = 15 (/4),
    # + 4 = 19 (/8)
    fields = {
        layer.name: describe_field(layer.receptive_field)
        for layer in report.layers
        if layer.name in ("stem", "relu1", "relu2", "pool")
    }
    assert fields == {
        "stem": "3x7x7 /1x2x2",
        "relu1": "5x11x11 /1x2x2",
        "relu2": "7x15x15 /2x4x4",
        "pool": "9x19x19 /4x8x8",
    }
    assert report.layer("stem").output_shape == (4, 8, 16, 16)
    assert report.layer("pool").output_shape == (4, 2, 4, 4)
    assert _field_json(report.layer("stem").receptive_field)["size"] == [3, 7, 7]
    units = {
        layer.name: [(0, 0, 0), tuple(size // 2 for size in layer.output_shape[1:])]
        for layer in report.layers
        if layer.name in ("stem_relu", "relu2", "pool")
    }
    module = compile_module(network, report)
    assert not measured_mismatches(report, module, list(units), units, torch.float64)


def test_a_window_of_another_rank_is_bounded_by_the_whole_input():
    field = ReceptiveField.of_input(2)
    assert field.through(POINTWISE, (8, 8)) is field  # POINTWISE passes a field of any rank
    # a conv1d over tokens flattened from an 8x8 map reaches across rows
    assert field.through(Window((3,)), (8, 8)) == ReceptiveField.whole((8, 8))


def _inside(field: ReceptiveField, axis: int, count: int, extent: int) -> int | None:
    """The middle one of the units whose field lies wholly inside the image along `axis`."""
    half = (field.size[axis] - 1) / 2
    centres = [field.offset[axis] + i * field.stride[axis] for i in range(count)]
    inside = [
        i for i, centre in enumerate(centres) if centre - half >= 0 and centre + half < extent
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
        row = _inside(field, 0, last.output_shape[1], height)
        col = _inside(field, 1, last.output_shape[2], width)
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


# -- rational steps (upsampling) -----------------------------------------------------------------
# torch's upsampling by an integer s (align_corners=False) maps output pixel o to the input
# coordinate (o + 1/2)/s - 1/2 = o/s - (s-1)/(2s): a stride of 1/s with that shift.
# nearest reads pixel floor(o/s), the one whose centre lies within half a pixel of that
# coordinate: kernel 1, stride 1/s, padding (s-1)/(2s) (x2: jump halves, start moves by -1/4).
# bilinear reads the two pixels around the coordinate: kernel 2, stride 1/s, padding
# (2s-1)/(2s) (x2: 3/4), so the field grows by one input pixel's jump.
# A unit then reads the pixels whose centres lie strictly within start + o*jump +- size/2: the
# test below checks this against torch's gradients through chains of both and of convolutions.


def upsampling(mode: str, scale: int) -> tuple[int, Fraction, Fraction]:
    """(kernel, stride, padding) of torch's upsampling by `scale`, derived above."""
    if mode == "nearest":
        return 1, Fraction(1, scale), Fraction(scale - 1, 2 * scale)
    return 2, Fraction(1, scale), Fraction(2 * scale - 1, 2 * scale)


def test_nearest_upsampling_step_by_hand():
    # k = 1 adds nothing to the size; j = 1 x 1/2; x = 0 + (0 - 1/4) x 1 = -1/4
    up = Axis(1, 1, 0).step(*upsampling("nearest", 2), 1)
    assert up == Axis(1, Fraction(1, 2), Fraction(-1, 4))
    # a 3-tap conv (padding 1) on it: r = 1 + 2 x 1/2 = 2, x = -1/4 + (1 - 1) x 1/2 = -1/4
    assert up.step(3, 1, 1, 1) == Axis(2, Fraction(1, 2), Fraction(-1, 4))
    # a 2-tap conv: r = 1 + 1/2 = 3/2, a fraction of a pixel; x = -1/4 + 1/2 x 1/2 = 0
    assert up.step(2, 1, 0, 1) == Axis(Fraction(3, 2), Fraction(1, 2), 0)
    # x2 bilinear: r = 1 + 1 = 2, x = 0 + (1/2 - 3/4) x 1 = -1/4
    assert Axis(1, 1, 0).step(*upsampling("bilinear", 2), 1) == Axis(
        2, Fraction(1, 2), Fraction(-1, 4)
    )


def test_whole_values_stay_ints():
    field = ReceptiveField.of_input(2).through(Window((3, 2), (2, 1), (1, 0)), (8, 8))
    assert all(type(value) is int for value in (*field.size, *field.stride, field.offset[0]))
    assert field.offset == (0, Fraction(1, 2))
    assert Axis(Fraction(4, 2), Fraction(2), Fraction(0)) == Axis(2, 2, 0)
    assert type(Axis(Fraction(4, 2), 1, 0).size) is int


def test_rational_steps_saturate():
    down = up = Axis(1, 1, 0)
    for _ in range(200):
        down = down.step(3, 2, 0, 1)
        up = up.step(2, Fraction(1, 2), Fraction(3, 4), 1)
    assert (down.size, down.jump, down.start) == (FIELD_LIMIT, FIELD_LIMIT, FIELD_LIMIT)
    assert up.jump == JUMP_FLOOR
    assert all(math.isfinite(float(value)) for value in (up.size, up.jump, up.start))


def test_adaptive_pooling_that_does_not_divide_steps_by_a_fraction():
    # 10 -> 4 rows: windows [0, 3), [2, 5), [5, 8), [7, 10), centred on o * 5/2 + 3/4
    network = archspec.Network(
        name="pooled",
        input=(1, 10, 8),
        layers=[archspec.Layer("pool", ops.AdaptiveAvgPool2d(output_size=(4, 4)))],
        outputs=("pool",),
    )
    field = archspec.analyze(network).layer("pool").receptive_field
    assert field is not None
    assert (field.size, field.stride, field.offset) == (
        (3, 2),
        (Fraction(5, 2), 2),
        (Fraction(3, 4), Fraction(1, 2)),
    )
    assert _field_json(field)["stride"] == [2.5, 2]


def test_concat_along_height_shifts_the_later_input():
    # the second input's rows start at row 4 of the output: its units are centred 4 rows lower
    network = archspec.Network(
        name="stacked",
        input=(1, 4, 4),
        layers=[
            archspec.Layer("wide", ops.Conv2d(out_channels=1, kernel=3, padding=1)),
            archspec.Layer("narrow", ops.Conv2d(out_channels=1, kernel=1), inputs=("input",)),
            archspec.Layer("stacked", ops.Concat(dim=2), inputs=("wide", "narrow")),
        ],
        outputs=("stacked",),
    )
    field = archspec.analyze(network).layer("stacked").receptive_field
    assert field is not None
    assert field.size == (3, 3)
    assert not field.aligned


def test_fractional_fields_print_and_serialise_as_decimals():
    half = Axis(Fraction(3, 2), Fraction(1, 2), Fraction(-1, 4))
    field = ReceptiveField((half, Axis(5, 1, 2)))
    assert describe_field(field) == "1.5x5 /0.5x1"
    assert _field_json(field) == {
        "size": [1.5, 5],
        "stride": [0.5, 1],
        "offset": [-0.25, 2],
        "global": False,
        "aligned": True,
        "constant": False,
    }
    assert [type(value) for value in _field_json(field)["size"]] == [float, int]


Step = tuple[str, int, int, int, int]


def _convs(strides: st.SearchStrategy[int]) -> st.SearchStrategy[list[Step]]:
    step = st.tuples(
        st.just("conv"), st.integers(1, 4), strides, st.integers(0, 2), st.integers(1, 2)
    )
    return st.lists(step, max_size=2)


UPSAMPLINGS = st.tuples(
    st.sampled_from(["nearest", "bilinear"]), st.integers(2, 3), st.just(0), st.just(0), st.just(0)
)


def _apply(x: torch.Tensor, step: Step) -> torch.Tensor:
    """(1, 1, H, 1) -> (1, 1, H', 1) through one step of the chain, weights positive."""
    kind, a, stride, padding, dilation = step
    if kind == "conv":
        weight = x.new_ones(1, 1, a, 1)
        return F.conv2d(x, weight, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
    return F.interpolate(x, scale_factor=(a, 1), mode=kind)


@settings(deadline=None)
@given(
    height=st.integers(1, 12),
    before=_convs(st.just(1)),
    upsample=UPSAMPLINGS,
    after=_convs(st.integers(1, 2)),
    data=st.data(),
)
def test_upsampling_fields_match_gradients(height, before, upsample, after, data):
    """Along H, through upsampling of a jump-1 map and convolutions around it: the pixels a
    unit's gradient reaches span those whose centres lie strictly within centre +- size/2.

    Upsampling a map of jump J > 1 is not exact: nearest's centres are a staircase (unit o is
    parent floor(o/s)), which the affine start + o*jump misses by up to J/2 pixels.
    """
    steps = [*before, upsample, *after]
    image = (1 + torch.rand(1, 1, height, 1, dtype=torch.float64)).requires_grad_(True)
    x, axis = image, Axis(1, 1, 0)
    for step in steps:
        kind, a, stride, padding, dilation = step
        assume(kind != "conv" or x.shape[2] + 2 * padding > dilation * (a - 1))
        x = _apply(x, step)
        if kind == "conv":
            axis = axis.step(a, stride, padding, dilation)
        else:
            axis = axis.step(*upsampling(kind, a), 1)
    # as above, a unit whose field the image holds whole: at the border, padding and dilation
    # holes make the clipped field and the reached pixels differ (tested on the zoo instead)
    half = Fraction(axis.size) / 2
    whole = [
        unit
        for unit in range(x.shape[2])
        if axis.start + unit * axis.jump - half >= Fraction(-1, 2)
        and axis.start + unit * axis.jump + half <= height - Fraction(1, 2)
    ]
    assume(whole)
    unit = data.draw(st.sampled_from(whole), label="unit")
    (grad,) = torch.autograd.grad(x[0, 0, unit, 0], image)
    reached = torch.nonzero(grad[0, 0, :, 0]).flatten().tolist()
    centre = axis.start + unit * axis.jump
    inside = [m for m in range(height) if abs(m - centre) < half]
    assert (min(reached), max(reached)) == (min(inside), max(inside)), (axis, centre)
