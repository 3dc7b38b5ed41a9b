"""Resampling ops: their fields and shape rules against torch's, their windows swept against
torch's reads, and U-Net and FPN steps analysed, measured, compiled and exported."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from oracle import FieldProbe, layer_params, layer_shapes, make_positive_average, positive_image
from pydantic import ValidationError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.backends.torch import compile_module
from archspec.errors import ShapeError
from archspec.ops import OPS, Window
from archspec.ops.base import SHAPE_ONLY
from archspec.ops.resample import Upsample
from archspec.ops.transposed import ConvTranspose2d

# -- fields and shape rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "match"),
    [
        ("upsample", {"scale_factor": 2, "size": 4}, "scale_factor or size, not both"),
        ("upsample", {"align_corners": True}, "align_corners applies to bilinear only"),
        ("upsample", {"scale_factor": 0}, "above 0 and at most"),
        ("upsample", {"scale_factor": [2, -1.5]}, "above 0 and at most"),
        ("upsample", {"scale_factor": True}, "expected a number, got true"),
        ("upsample", {"scale_factor": [2, 2, 2]}, "at most 2 items"),
        ("upsample", {"mode": "bicubic", "scale_factor": 2}, "'nearest' or 'bilinear'"),
        (
            "conv_transpose2d",
            {"out_channels": 4, "kernel": 3, "stride": [1, 2], "output_padding": [0, 2]},
            r"output_padding \(=2\) must be smaller than stride \(=2\) or dilation \(=1\) along W",
        ),
        (
            "conv_transpose2d",
            {"out_channels": 3, "kernel": 3, "groups": 2},
            r"groups \(=2\) must divide out_channels \(=3\)",
        ),
        ("pixel_shuffle", {"upscale_factor": 0}, "greater than or equal to 1"),
        ("pixel_unshuffle", {}, "downscale_factor"),
    ],
)
def test_fields_are_checked(name, fields, match):
    with pytest.raises(ValidationError, match=match):
        OPS[name].model_validate(fields)


def test_a_whole_float_scale_factor_is_the_integer_one():
    assert Upsample(scale_factor=[2.0, 1.5]).scale_factor == (2, 1.5)
    assert type(Upsample(scale_factor=2.0).scale_factor[0]) is int


@pytest.mark.parametrize(
    ("name", "fields", "inputs", "match"),
    [
        ("upsample", {}, [(3, 4, 4)], "needs scale_factor, size, or a second input"),
        ("upsample", {"size": 8}, [(3, 4, 4), (3, 8, 8)], "takes size or a second input"),
        ("upsample", {}, [(3, 4, 4), (8,)], r"input 1 of shape \(C, H, W\).* got \(8,\)"),
        ("upsample", {"scale_factor": 0.1}, [(3, 5, 20)], "takes H from 5 to 0.5"),
        ("upsample", {"scale_factor": 2}, [(16,)], r"expects an input of shape \(C, H, W\)"),
        (
            "conv_transpose2d",
            {"out_channels": 4, "kernel": 1, "padding": [3, 0]},
            [(2, 4, 9)],
            r"padding 3 crops away its whole output along H: "
            r"\(4 - 1\)\*1 - 2\*3 \+ 1\*\(1 - 1\) \+ 0 \+ 1 = -2",
        ),
        (
            "conv_transpose2d",
            {"out_channels": 4, "kernel": 3, "groups": 2},
            [(3, 4, 4)],
            r"groups \(=2\) to divide in_channels \(=3\)",
        ),
        (
            "pixel_shuffle",
            {"upscale_factor": 2},
            [(6, 3, 3)],
            r"upscale_factor\^2 \(=4\) to divide the channels \(=6\)",
        ),
        (
            "pixel_unshuffle",
            {"downscale_factor": 3},
            [(1, 6, 7)],
            r"downscale_factor \(=3\) to divide H \(=6\) and W \(=7\)",
        ),
    ],
)
def test_shapes_are_checked(name, fields, inputs, match):
    with pytest.raises(ShapeError, match=match):
        OPS[name].model_validate(fields).output_shape(inputs)


def test_conv_transpose2d_accepts_and_shapes_as_torch_does():
    """Exhaustive over a small grid (along H), so the verdict never depends on a draw."""
    found = []
    grid = itertools.product(range(1, 4), range(1, 4), range(1, 3), range(4), range(3), range(1, 5))
    for kernel, stride, dilation, padding, extra, size in grid:
        fields = {
            "out_channels": 1,
            "kernel": [kernel, 1],
            "stride": [stride, 1],
            "dilation": [dilation, 1],
            "padding": [padding, 0],
            "output_padding": [extra, 0],
        }
        try:
            ours = ConvTranspose2d.model_validate(fields).output_shape([(1, size, 1)])[1:]
        except (ValidationError, ShapeError):
            ours = None
        try:
            theirs = F.conv_transpose2d(
                torch.zeros(1, 1, size, 1),
                torch.zeros(1, 1, kernel, 1),
                stride=(stride, 1),
                padding=(padding, 0),
                output_padding=(extra, 0),
                dilation=(dilation, 1),
            ).shape[2:]
        except RuntimeError:
            theirs = None
        if ours != (None if theirs is None else tuple(theirs)):
            found.append(f"{fields} at {size}: archspec {ours}, torch {theirs}")
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"


@pytest.mark.parametrize("factor", [0.3, 0.5, 0.75, 1.3, 1.5, 2.5, 3.7])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_a_fractional_scale_factor_samples_as_its_size_does(mode, factor):
    """floor(H * s) rows, as nn.Upsample makes, sampled by the sizes' ratio like `size`."""
    op = Upsample(mode=mode, scale_factor=factor)
    for size in range(1, 13):
        if math.floor(size * factor) < 1:
            with pytest.raises(ShapeError, match="the output would be empty"):
                op.output_shape([(1, size, size)])
            continue
        shape = op.output_shape([(1, size, size)])
        x = torch.rand(1, 1, size, size, dtype=torch.float64)
        torch.testing.assert_close(
            op.to_torch([(1, size, size)])(x), F.interpolate(x, size=shape[1:], mode=mode)
        )
        assert nn.Upsample(scale_factor=factor)(x).shape[2:] == shape[1:]


def test_counts_by_hand():
    shape = (3, 4, 5)
    assert Upsample(scale_factor=2).flops([shape], (3, 8, 10)) == 0
    assert Upsample(scale_factor=2, mode="bilinear").flops([shape], (3, 8, 10)) == 7 * 240
    op = ConvTranspose2d(out_channels=4, kernel=[3, 2], stride=2, groups=1)
    output = op.output_shape([shape])
    assert output == (4, 9, 10)
    assert op.param_count([shape]) == 3 * 4 * 6 + 4
    assert op.macs([shape], output) == 3 * 20 * 4 * 6  # every input element times 4 x 6 weights
    assert op.flops([shape], output) == 2 * op.macs([shape], output) + 4 * 90


@pytest.mark.parametrize(
    ("fields", "warned"),
    [
        ({"kernel": 1, "stride": [2, 1]}, True),
        ({"kernel": 3, "stride": [2, 1], "dilation": [2, 1]}, True),  # taps 0, 2, 4: all even
        ({"kernel": 2, "stride": [2, 1]}, False),
        ({"kernel": 3, "stride": [3, 1], "dilation": 2}, False),  # taps 0, 2, 4: all residues
    ],
)
def test_transposed_convolution_warns_of_outputs_no_input_reaches(fields, warned):
    warnings = ConvTranspose2d(out_channels=1, **fields).warnings([(1, 4, 4)])
    reached = ["some output rows receive no input, only the bias" in w for w in warnings]
    assert reached == ([True] if warned else [])


# -- windows against torch's reads, along one axis -----------------------------------------------


@pytest.fixture
def one_thread():
    """Thousands of calls on a few rows each: a second thread only adds waiting for it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def declared_rows(unit: int, kernel: int, stride: Any, padding: Any, dilation: int, size: int):
    """Rows unit `unit` reads by the step: its taps when whole, else the rows whose centres lie
    strictly within the window's span (as receptive_field.Axis counts them); clipped."""
    if isinstance(stride, int) and isinstance(padding, int):
        rows = {unit * stride - padding + i * dilation for i in range(kernel)}
    else:
        centre = unit * Fraction(stride) - Fraction(padding) + Fraction(kernel - 1, 2)
        first = math.floor(centre - Fraction(kernel, 2)) + 1
        rows = set(range(first, math.ceil(centre + Fraction(kernel, 2))))
    return {row for row in rows if 0 <= row < size}


def window_disagreements(op: Any, size: int, weights: torch.Tensor) -> list[str]:
    """Units whose rows read (non-zero `weights[o]`, over input rows) are not what the op's
    window declares along H: equal when it claims exactness, contained otherwise."""
    window = op.window([(1, size, 1)])
    assert isinstance(window, Window)
    step = (window.kernel[0], window.stride[0], window.padding[0], window.dilation[0])
    exact = op.window_is_exact([(1, size, 1)])
    found = []
    for unit, row in enumerate(weights):
        read = set(torch.nonzero(row).flatten().tolist())
        declared = declared_rows(unit, *step, size)
        if (read != declared) if exact else not read <= declared:
            found.append(f"{op!r} at {size}, unit {unit}: reads {read}, declares {declared}")
    return found


def interpolation_weights(op: Upsample, size: int, dtype: torch.dtype) -> torch.Tensor:
    """(out, size): the lowering run on every one-hot column, weight of row i in output o."""
    one_hot = torch.eye(size, dtype=dtype).reshape(size, 1, size, 1)
    return op.to_torch([(1, size, 1)])(one_hot)[:, 0, :, 0].T


UPSAMPLINGS = [
    {"mode": "nearest"},
    {"mode": "bilinear"},
    {"mode": "bilinear", "align_corners": True},
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fields", UPSAMPLINGS, ids=["nearest", "bilinear", "align_corners"])
@pytest.mark.usefixtures("one_thread")
def test_upsampling_windows_match_torch_reads(fields, dtype):
    """Every size from 1 to 20 to every size up to 40, by `size` and by integer scale factors:
    exact where the op says so, bounds elsewhere (float rounding at whole coordinates)."""
    found = []
    for size, out in itertools.product(range(1, 21), range(1, 41)):
        ops = [Upsample(**fields, size=[out, 1])]
        if out % size == 0:
            ops.append(Upsample(**fields, scale_factor=[out // size, 1]))
        for op in ops:
            found += window_disagreements(op, size, interpolation_weights(op, size, dtype))
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"


@pytest.mark.parametrize(
    ("fields", "size", "out", "exact"),
    [
        ({"mode": "nearest"}, 1500, 3000, True),  # torch shifts for x2, whatever the size
        ({"mode": "nearest"}, 700, 2800, True),  # x4: float32 holds 1/4 and its multiples
        ({"mode": "nearest"}, 300, 900, True),  # float32(1/3) is above 1/3
        ({"mode": "bilinear"}, 1000, 2000, True),
        ({"mode": "bilinear"}, 400, 1200, False),  # x3: whole coordinates, rounded
        ({"mode": "bilinear", "align_corners": True}, 513, 1025, True),  # steps of 1/2
        ({"mode": "bilinear", "align_corners": True}, 600, 1000, False),
    ],
)
def test_upsampling_windows_hold_at_large_sizes(fields, size, out, exact):
    op = Upsample(**fields, size=[out, 1])
    assert op.window_is_exact([(1, size, 1)]) == exact
    weights = interpolation_weights(op, size, torch.float32)
    assert not window_disagreements(op, size, weights)


def test_nearest_is_a_bound_where_float32_rounds_the_ratio_down():
    """14 -> 46 rows: unit 23 is at 23 * 14/46 = 7 exactly, but float32(7/23) is below 7/23 and
    torch reads row 6: the declared window holds both."""
    op = Upsample(size=[46, 1])
    weights = interpolation_weights(op, 14, torch.float64)
    assert torch.nonzero(weights[23]).flatten().tolist() == [6]
    assert not op.window_is_exact([(1, 14, 1)])
    assert {6, 7} <= declared_rows(23, *_step(op, 14), 14)


def _step(op: Any, size: int) -> tuple[Any, ...]:
    window = op.window([(1, size, 1)])
    return window.kernel[0], window.stride[0], window.padding[0], window.dilation[0]


@pytest.mark.usefixtures("one_thread")
def test_transposed_convolution_windows_match_torch_reads():
    """Kernel 1 to 5, stride 1 to 4, dilation 1 to 3, padding up to 5, output_padding within
    torch's rule, inputs of 1 to 6 rows: each unit's rows are those of positive taps."""
    found = []
    exact_configs = 0
    for kernel, stride, dilation, padding in itertools.product(
        range(1, 6), range(1, 5), range(1, 4), range(6)
    ):
        for extra, size in itertools.product(range(max(stride, dilation)), range(1, 7)):
            full = (size - 1) * stride + dilation * (kernel - 1) + extra + 1
            if full - 2 * padding < 1:
                continue
            op = ConvTranspose2d(
                out_channels=1,
                kernel=[kernel, 1],
                stride=[stride, 1],
                padding=[padding, 0],
                output_padding=[extra, 0],
                dilation=[dilation, 1],
            )
            exact_configs += op.window_is_exact([(1, size, 1)])
            one_hot = torch.eye(size, dtype=torch.float64).reshape(size, 1, size, 1)
            weights = F.conv_transpose2d(
                one_hot,
                torch.ones(1, 1, kernel, 1, dtype=torch.float64),
                stride=(stride, 1),
                padding=(padding, 0),
                output_padding=(extra, 0),
                dilation=(dilation, 1),
            )[:, 0, :, 0].T
            found += window_disagreements(op, size, weights)
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"
    assert exact_configs > 1000  # the exact cases are the common ones, not a corner


@pytest.mark.parametrize(
    ("fields", "step"),
    [
        # U-Net's x2: each output reads one input, as nearest x2 does
        ({"kernel": 2, "stride": 2}, (1, Fraction(1, 2), Fraction(1, 4), 1)),
        # the "same" x2 (kernel 3, padding 1, output_padding 1) and DCGAN's kernel 4, padding 1
        (
            {"kernel": 3, "stride": 2, "padding": 1, "output_padding": 1},
            (2, Fraction(1, 2), Fraction(1, 2), 1),
        ),
        ({"kernel": 4, "stride": 2, "padding": 1}, (2, Fraction(1, 2), Fraction(3, 4), 1)),
        # stride 1: a convolution with the flipped kernel, padded by d(k - 1) - p
        ({"kernel": 3, "padding": 1}, (3, 1, 1, 1)),
        ({"kernel": 3, "padding": 1, "dilation": 2}, (3, 1, 3, 2)),
    ],
)
def test_common_transposed_convolutions_have_exact_windows(fields, step):
    op = ConvTranspose2d(out_channels=1, **fields)
    assert op.window_is_exact([(1, 8, 8)])
    assert _step(op, 8) == step


def test_the_input_matched_for_its_size_is_read_for_its_shape_only():
    op = Upsample()
    inputs = [(2, 3, 3), (5, 6, 6)]
    step = Upsample(size=6).window([inputs[0]])  # nearest x2, as `size` would give
    assert op.window(inputs) == (step, SHAPE_ONLY)
    assert op.window_is_exact(inputs)


def test_pixel_shuffle_steps_like_nearest_and_unshuffle_like_pooling():
    assert OPS["pixel_shuffle"](upscale_factor=3).window([(9, 4, 4)]) == Window(
        (1, 1), (Fraction(1, 3),) * 2, (Fraction(1, 3),) * 2
    )
    assert OPS["pixel_unshuffle"](downscale_factor=2).window([(1, 4, 4)]) == Window((2, 2), (2, 2))


# -- networks: a U-Net decoder step and an FPN top-down step ------------------------------------

UNET_STEP = """
name: unet_step
input: [3, 16, 14]
layers:
  - {name: enc, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {name: down, op: max_pool2d, kernel: 2}
  - {name: bottom, op: conv2d, out_channels: 16, kernel: 3, padding: 1}
  - {name: up, op: conv_transpose2d, out_channels: 8, kernel: 2, stride: 2}
  - {name: merge, op: concat, inputs: [up, enc]}
  - {name: dec, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
"""

FPN_STEP = """
name: fpn_step
input: [3, 32, 28]
layers:
  - {name: c4, op: conv2d, out_channels: 16, kernel: 3, stride: 2, padding: 1}
  - {name: c5, op: conv2d, out_channels: 32, kernel: 3, stride: 2, padding: 1}
  - {name: p5, op: conv2d, out_channels: 8, kernel: 1}
  - {name: lateral, op: conv2d, out_channels: 8, kernel: 1, inputs: c4}
  - {name: top_down, op: upsample, mode: MODE, inputs: [p5, lateral]}
  - {name: p4, op: add, inputs: [top_down, lateral]}
  - {name: smooth, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
"""

#: Per network, the layers after an upsampling of a map of jump J > 1, and J: there the affine
#: field misses nearest's staircase of centres by up to J/2 pixels (receptive_field.Axis).
STAIRCASES = {
    "unet_step": (("up", "merge", "dec"), 2),
    "fpn_step": (("top_down", "p4", "smooth"), 4),
}


def _span(centre: Fraction, size: Fraction, extent: int) -> tuple[tuple[int, int], bool]:
    """Pixels whose centres lie strictly within centre +- size/2, clipped; and whether the
    field lies wholly inside the image."""
    first = math.floor(centre - Fraction(size) / 2) + 1
    last = math.ceil(centre + Fraction(size) / 2) - 1
    return (max(first, 0), min(last, extent - 1)), first >= 0 and last < extent


def field_disagreements(spec: archspec.Spec, report: archspec.Report) -> list[str]:
    """Every unit whose field the image holds whole: the gradient's box against the report's
    field, exactly, or within J/2 past an upsampling of jump J."""
    module = compile_module(spec, report)
    make_positive_average(module)
    for child in module.modules():
        if isinstance(child, nn.ConvTranspose2d):  # a positive mean, as the convolutions are
            nn.init.constant_(child.weight, 1 / child.weight[0].numel())
            nn.init.zeros_(child.bias)
    module.to(torch.float64)
    names = [layer.name for layer in report.layers]
    probe = FieldProbe(module, names, positive_image(report.input_shape, torch.float64))
    staircase, jump = STAIRCASES.get(report.name, ((), 0))
    found = []
    for layer in report.layers:
        field = layer.receptive_field
        assert field is not None
        slack = jump // 2 if layer.name in staircase else 0
        for position in itertools.product(*map(range, layer.output_shape[1:])):
            spans = [
                _span(offset + index * stride, size, extent)
                for offset, index, stride, size, extent in zip(
                    field.offset,
                    position,
                    field.stride,
                    field.size,
                    report.input_shape[1:],
                    strict=True,
                )
            ]
            if not all(inside for _, inside in spans):
                continue
            measured = probe.box(layer.name, position)
            assert measured is not None
            for (low, high), ((first, last), _) in zip(measured, spans, strict=True):
                if abs(low - first) > slack or abs(high - last) > slack:
                    found.append(f"{layer.name} {position}: measured {measured}, static {spans}")
    return found


def _networks() -> list[Any]:
    return [
        pytest.param(UNET_STEP, id="unet"),
        pytest.param(FPN_STEP.replace("MODE", "nearest"), id="fpn-nearest"),
        pytest.param(FPN_STEP.replace("MODE", "bilinear"), id="fpn-bilinear"),
    ]


@pytest.mark.parametrize("text", _networks())
def test_network_analysis_matches_torch(text):
    """Shapes, parameters and MACs per layer against the compiled module, and the fields
    against the gradients."""
    spec = archspec.load(text)
    report = archspec.analyze(spec)
    module = archspec.compile(spec).eval()
    batch = torch.randn(2, *report.input_shape)
    assert layer_shapes(module, batch) == {
        layer.name: layer.output_shape for layer in report.layers
    }
    assert layer_params(module, report) == {layer.name: layer.params for layer in report.layers}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(batch)
    assert counter.get_total_flops() == 2 * 2 * report.totals.macs
    assert not field_disagreements(spec, report)


CHAIN = """
name: chain
input: [2, 10, 8]
layers:
  - {op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - MIDDLE
  - {op: conv2d, out_channels: 2, kernel: 2}
"""


@pytest.mark.parametrize(
    "middle",
    [
        "{op: upsample, scale_factor: [2, 3]}",
        "{op: upsample, size: [15, 12], mode: bilinear}",  # ratios 2/3: no whole coordinate
        "{op: upsample, size: [17, 15], mode: bilinear, align_corners: true}",
        "{op: conv_transpose2d, out_channels: 3, kernel: 3, stride: 2, padding: 1}",
        "{op: conv_transpose2d, out_channels: 3, kernel: [5, 3], stride: [3, 2], padding: [1, 0]}",
        "{op: conv_transpose2d, out_channels: 3, kernel: 3, padding: 2, dilation: 2}",
        "{op: pixel_shuffle, upscale_factor: 2}",
        "{op: pixel_unshuffle, downscale_factor: 2}",
    ],
)
def test_exact_windows_give_exact_fields_between_convolutions(middle):
    """A resampling of a jump-1 map, between convolutions: every unit the image holds whole
    reads exactly the pixels its field says (fractional sizes and centres included)."""
    spec = archspec.load(CHAIN.replace("MIDDLE", middle))
    report = archspec.analyze(spec)
    assert not field_disagreements(spec, report)


def test_unet_step_by_hand():
    report = archspec.analyze(archspec.load(UNET_STEP))
    up = report.layer("up")
    assert up.output_shape == (8, 16, 14)
    assert up.params == 16 * 8 * 4 + 8
    # bottom: field 8, jump 2, start 1/2; through (1, 1/2, 1/4): jump 1, start 1/2 - 1/4 * 2
    assert up.receptive_field is not None
    assert (up.receptive_field.size, up.receptive_field.stride, up.receptive_field.offset) == (
        (8, 8),
        (1, 1),
        (0, 0),
    )


def test_fpn_step_takes_the_lateral_size():
    report = archspec.analyze(archspec.load(FPN_STEP.replace("MODE", "nearest")))
    assert report.layer("top_down").output_shape == (8, 16, 14)
    assert report.layer("p4").output_shape == (8, 16, 14)


@pytest.mark.parametrize("text", _networks())
def test_network_compiles_traces_and_exports(text, tmp_path):
    spec = archspec.load(text)
    model = archspec.compile(spec).eval()
    x = torch.randn(3, *spec.network.input)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), expected)
    exported = archspec.export_onnx(spec, tmp_path / "step.onnx")
    assert len(exported.batches) == 2  # the batch stayed dynamic: checked at two sizes
    assert exported.worst_difference is not None
    assert exported.worst_difference < 1e-4


def test_fpn_upsampling_by_hand():
    """Nearest from p5's 8 x 7 to the lateral's 16 x 14: each output reads p5 at (y // 2,
    x // 2), and the lateral's values are never read."""
    spec = archspec.load(FPN_STEP.replace("MODE", "nearest"))
    model = archspec.compile(spec).eval()
    x = torch.randn(2, 3, 32, 28)
    with torch.no_grad():
        p5 = model.p5(model.c5(model.c4(x)))
        lateral = model.lateral(model.c4(x))
        expected = model.smooth(p5.repeat_interleave(2, 2).repeat_interleave(2, 3) + lateral)
        torch.testing.assert_close(model(x), expected)
