"""Analysis stage: JSON contract, counting conventions, receptive field, input shapes, warnings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest

import archspec
from archspec import Report
from archspec.errors import SpecError, UsageError

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"


def analyze_text(text: str, input_shape: tuple[int, ...] | None = None) -> Report:
    return archspec.analyze(archspec.load(dedent(text)), input_shape)


def analyze_example(name: str, input_shape: tuple[int, ...] | None = None) -> Report:
    return archspec.analyze(archspec.load(EXAMPLES / f"{name}.yaml"), input_shape)


def warning_messages(report: Report, containing: str = "") -> list[str]:
    return [w.message for w in report.warnings if containing in w.message]


@pytest.fixture(scope="module")
def resnet18() -> Report:
    return analyze_example("resnet18")


@pytest.fixture(scope="module")
def lenet5() -> Report:
    return analyze_example("lenet5")


# -- the JSON contract --------------------------------------------------------------------------


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return is_int(value) or isinstance(value, float)


def check_pair(value: object, check: Callable[[object], bool] = is_int) -> None:
    assert isinstance(value, list)
    assert len(value) == 2
    assert all(check(item) for item in value), value


def check_layer_json(layer: dict[str, object]) -> None:
    assert {
        "name",
        "op",
        "inputs",
        "output_shape",
        "params",
        "trainable_params",
        "macs",
        "flops",
        "receptive_field",
    } <= layer.keys()
    assert isinstance(layer["name"], str)
    assert isinstance(layer["op"], str)
    inputs = layer["inputs"]
    assert isinstance(inputs, list)
    assert inputs
    assert all(isinstance(name, str) for name in inputs)
    shape = layer["output_shape"]
    assert isinstance(shape, list)
    assert shape[0] == "N"
    assert all(is_int(dim) and dim >= 1 for dim in shape[1:])
    for key in ("params", "trainable_params", "macs", "flops"):
        assert is_int(layer[key]), (key, layer[key])
        assert layer[key] >= 0
    assert layer["trainable_params"] <= layer["params"]
    field = layer["receptive_field"]
    if field is not None:
        assert isinstance(field, dict)
        assert {"size", "stride", "offset"} <= field.keys()
        check_pair(field["size"])
        check_pair(field["stride"])
        check_pair(field["offset"], is_number)


def test_json_contract_keys_and_types(resnet18):
    data = resnet18.to_json()
    assert {"name", "input_shape", "layers", "outputs", "totals"} <= data.keys()
    assert data["name"] == "resnet18"
    assert data["input_shape"] == ["N", 3, 224, 224]
    assert isinstance(data["layers"], list)
    assert len(data["layers"]) == 69
    for layer in data["layers"]:
        check_layer_json(layer)
    assert data["outputs"] == ["fc"]
    totals = data["totals"]
    assert isinstance(totals, dict)
    assert {"params", "trainable_params", "macs", "flops", "activation_bytes"} <= totals.keys()
    assert all(is_int(value) for value in totals.values())


def test_json_round_trips_through_json_dumps(resnet18):
    data = resnet18.to_json()
    assert json.loads(json.dumps(data)) == data


def test_json_first_layer_matches_the_readme_example(resnet18):
    conv1 = resnet18.to_json()["layers"][0]
    # 64 x (3 x 7 x 7) = 9,408 weights (no bias); 64 x 112 x 112 outputs x 147 MACs = 118,013,952
    assert {
        key: conv1[key]
        for key in (
            "name",
            "op",
            "inputs",
            "output_shape",
            "params",
            "trainable_params",
            "macs",
            "flops",
        )
    } == {
        "name": "conv1",
        "op": "conv2d",
        "inputs": ["input"],
        "output_shape": ["N", 64, 112, 112],
        "params": 9408,
        "trainable_params": 9408,
        "macs": 118_013_952,
        "flops": 236_027_904,
    }
    # 7x7 stride 2 padding 3: the first unit is centred on input pixel 0: 0 + ((7-1)/2 - 3) x 1
    assert conv1["receptive_field"] == {
        "size": [7, 7],
        "stride": [2, 2],
        "offset": [0, 0],
        "global": False,
        "aligned": True,
        "constant": False,
    }


def test_json_totals_match_published_resnet18(resnet18):
    totals = resnet18.to_json()["totals"]
    assert totals["params"] == 11_689_512
    assert totals["trainable_params"] == 11_689_512
    assert totals["macs"] == 1_814_073_344
    assert totals["params"] == sum(layer.params for layer in resnet18.layers)
    assert totals["flops"] == sum(layer.flops for layer in resnet18.layers)
    assert totals["activation_bytes"] == sum(layer.activation_bytes for layer in resnet18.layers)


def test_json_receptive_field_is_null_without_spatial_axes():
    report = analyze_text("""
        name: mlp
        input: [16]
        layers:
          - {name: fc1, op: linear, out_features: 8}
          - {name: act, op: relu}
          - {name: fc2, op: linear, out_features: 2}
    """)
    data = report.to_json()
    assert data["input_shape"] == ["N", 16]
    assert [layer["receptive_field"] for layer in data["layers"]] == [None, None, None]
    assert [layer["output_shape"] for layer in data["layers"]] == [["N", 8], ["N", 8], ["N", 2]]
    assert json.loads(json.dumps(data)) == data


# -- counting conventions -----------------------------------------------------------------------

TINY = """
    name: tiny
    input: [2, 6, 6]
    layers:
      - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
      - {name: bn, op: batchnorm2d}
      - {name: relu, op: relu}
      - {name: conv_nobias, op: conv2d, out_channels: 4, kernel: 3, padding: 1, bias: false}
      - {name: sum, op: add, inputs: [relu, conv_nobias, bn]}
      - {name: maxpool, op: max_pool2d, kernel: 2}
      - {name: avgpool, op: avg_pool2d, kernel: 3}
      - {name: flatten, op: flatten}
      - {name: fc, op: linear, out_features: 3}
"""

# Every map before the pools is 4 x 6 x 6 = 144 elements.
TINY_EXPECTED = {
    #              (shape, params, MACs, FLOPs)
    # params 4 x (2 x 3 x 3 + 1) = 76; MACs 144 outputs x 18 = 2,592; FLOPs 2 x 2,592 + 144 bias
    "conv": ((4, 6, 6), 76, 2592, 5328),
    # params 2 per channel = 8; FLOPs 2 per element (scale, shift) = 288
    "bn": ((4, 6, 6), 8, 0, 288),
    # FLOPs 1 per element
    "relu": ((4, 6, 6), 0, 0, 144),
    # params 4 x (4 x 3 x 3) = 144, no bias; MACs 144 x 36 = 5,184; FLOPs 2 x 5,184, no bias adds
    "conv_nobias": ((4, 6, 6), 144, 5184, 10368),
    # three inputs: (3 - 1) adds per element = 288
    "sum": ((4, 6, 6), 0, 0, 288),
    # 2x2 windows: 4 x 3 x 3 = 36 outputs x 4 compares = 144
    "maxpool": ((4, 3, 3), 0, 0, 144),
    # 3x3 windows: 4 x 1 x 1 = 4 outputs x 9 adds = 36
    "avgpool": ((4, 1, 1), 0, 0, 36),
    "flatten": ((4,), 0, 0, 0),
    # params 3 x (4 + 1) = 15; MACs 4 x 3 = 12; FLOPs 2 x 12 + 3 bias adds = 27
    "fc": ((3,), 15, 12, 27),
}


@pytest.fixture(scope="module")
def tiny() -> Report:
    return analyze_text(TINY)


@pytest.mark.parametrize("name", TINY_EXPECTED)
def test_counts_per_layer_by_hand(tiny, name):
    layer = tiny.layer(name)
    assert (layer.output_shape, layer.params, layer.macs, layer.flops) == TINY_EXPECTED[name]
    assert layer.trainable_params == layer.params


def test_counts_totals_by_hand(tiny):
    # 76 + 8 + 144 + 15
    assert tiny.totals.params == 243
    # 2,592 + 5,184 + 12: only conv and linear count MACs
    assert tiny.totals.macs == 7788
    # 5,328 + 288 + 144 + 10,368 + 288 + 144 + 36 + 0 + 27
    assert tiny.totals.flops == 16623
    # elements: 5 maps of 144, then 36, 4, 4, 3 = 767, at 4 bytes each
    assert tiny.totals.activation_bytes == 767 * 4
    assert [layer.activation_bytes for layer in tiny.layers] == [576] * 5 + [144, 16, 16, 12]


def test_counts_grouped_and_depthwise_convs():
    report = analyze_text("""
        name: grouped
        input: [8, 5, 5]
        layers:
          - {name: grouped, op: conv2d, out_channels: 12, kernel: 3, groups: 4}
          - {name: depthwise, op: conv2d, out_channels: 12, kernel: 3, padding: 1, groups: 12,
             bias: false}
          - {name: multiplier, op: conv2d, out_channels: 24, kernel: [1, 3], padding: [0, 1],
             groups: 12}
    """)
    counts = {
        layer.name: (layer.output_shape, layer.params, layer.macs, layer.flops)
        for layer in report.layers
    }
    assert counts == {
        # 12 x (8/4 x 3 x 3 + 1) = 228; MACs 12 x 3 x 3 = 108 outputs x 18 = 1,944; + 108 bias adds
        "grouped": ((12, 3, 3), 228, 1944, 2 * 1944 + 108),
        # one 3x3 filter per channel: 12 x (12/12 x 9) = 108; MACs 108 outputs x 9 = 972
        "depthwise": ((12, 3, 3), 108, 972, 2 * 972),
        # two 1x3 filters per input channel: 24 x (1 x 1 x 3 + 1) = 96; MACs 216 outputs x 3 = 648
        "multiplier": ((24, 3, 3), 96, 648, 2 * 648 + 216),
    }


def test_counts_linear_with_and_without_bias():
    report = analyze_text("""
        name: heads
        input: [10]
        layers:
          - {name: with_bias, op: linear, out_features: 7}
          - {name: without_bias, op: linear, out_features: 5, bias: false}
    """)
    # 7 x (10 + 1) = 77; MACs 10 x 7 = 70; FLOPs 2 x 70 + 7
    assert (report.layer("with_bias").params, report.layer("with_bias").macs) == (77, 70)
    assert report.layer("with_bias").flops == 147
    # 5 x 7 = 35; MACs 35; FLOPs 2 x 35
    assert (report.layer("without_bias").params, report.layer("without_bias").macs) == (35, 35)
    assert report.layer("without_bias").flops == 70


def test_counts_lenet5_published(lenet5):
    assert lenet5.totals.params == 61_706
    assert lenet5.totals.macs == 416_520
    # conv1: 6 x (1 x 5 x 5 + 1) = 156; conv2: 16 x (6 x 25 + 1) = 2,416; fc1: 120 x (400 + 1)
    assert [lenet5.layer(name).params for name in ("conv1", "conv2", "fc1", "fc2", "fc3")] == [
        156,
        2416,
        48_120,
        10_164,
        850,
    ]


def test_counts_batchnorm_without_affine_has_no_params():
    report = analyze_text("""
        name: plain_bn
        input: [5, 4, 4]
        layers:
          - {name: bn, op: batchnorm2d, affine: false}
    """)
    # running mean and variance are buffers; without affine there is no weight or bias
    assert report.layer("bn").params == 0
    assert report.layer("bn").flops == 2 * 5 * 4 * 4


# -- receptive field ----------------------------------------------------------------------------

CHAIN = """
    name: chain
    input: [3, 32, 32]
    layers:
      - {name: conv_a, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
      - {name: conv_b, op: conv2d, out_channels: 4, kernel: 3, stride: 2, padding: 1}
      - {name: pool, op: max_pool2d, kernel: 2, stride: 2}
      - {name: dilated, op: conv2d, out_channels: 4, kernel: 3, dilation: 2, padding: 2}
      - {name: gap, op: adaptive_avg_pool2d, output_size: 1}
      - {name: flatten, op: flatten}
      - {name: fc, op: linear, out_features: 2}
"""

# Recurrence per axis: size r' = r + d(k-1) j, jump j' = j s, start x' = x + (d(k-1)/2 - p) j,
# from the input's r = 1, j = 1, x = 0.
CHAIN_EXPECTED = {
    # r = 1 + 2 x 1 = 3; j = 1; x = 0 + (1 - 1) x 1 = 0
    "conv_a": ((3, 3), (1, 1), (0, 0)),
    # r = 3 + 2 x 1 = 5; j = 1 x 2 = 2; x = 0 + (1 - 1) x 1 = 0
    "conv_b": ((5, 5), (2, 2), (0, 0)),
    # r = 5 + 1 x 2 = 7; j = 2 x 2 = 4; x = 0 + (0.5 - 0) x 2 = 1
    "pool": ((7, 7), (4, 4), (1, 1)),
    # dilation 2 spans 2 x (3 - 1) + 1 = 5: r = 7 + 4 x 4 = 23; j = 4; x = 1 + (2 - 2) x 4 = 1
    "dilated": ((23, 23), (4, 4), (1, 1)),
}


@pytest.fixture(scope="module")
def chain() -> Report:
    return analyze_text(CHAIN)


@pytest.mark.parametrize("name", CHAIN_EXPECTED)
def test_receptive_field_chain_by_hand(chain, name):
    field = chain.layer(name).receptive_field
    assert field is not None
    assert (field.size, field.stride, field.offset) == CHAIN_EXPECTED[name]
    assert not field.is_global
    assert field.aligned


@pytest.mark.parametrize("name", ["gap", "flatten", "fc"])
def test_receptive_field_global_after_global_pooling(chain, name):
    field = chain.layer(name).receptive_field
    assert field is not None
    assert field.is_global
    # the whole 32 x 32 input, centred on pixel 15.5
    assert (field.size, field.stride, field.offset) == ((32, 32), (32, 32), (15.5, 15.5))
    assert chain.layer(name).to_json()["receptive_field"] == {
        "size": [32, 32],
        "stride": [32, 32],
        "offset": [15.5, 15.5],
        "global": True,
        "aligned": True,
        "constant": False,
    }


def test_receptive_field_global_after_flatten_without_pooling(lenet5):
    # pool2 is a 16/4 window; flattening it mixes every position, so each unit sees all 32 x 32
    pool2 = lenet5.layer("pool2").receptive_field
    assert pool2 is not None
    assert (pool2.size, pool2.stride, pool2.is_global) == ((16, 16), (4, 4), False)
    for name in ("flatten", "fc1", "fc3"):
        field = lenet5.layer(name).receptive_field
        assert field is not None
        assert field.is_global
        assert field.size == (32, 32)


def test_receptive_field_axes_are_independent():
    report = analyze_text("""
        name: tall
        input: [1, 20, 20]
        layers:
          - {name: tall, op: conv2d, out_channels: 2, kernel: [5, 1], stride: [1, 2],
             padding: [2, 0]}
          - {name: square, op: conv2d, out_channels: 2, kernel: 3}
    """)
    tall = report.layer("tall").receptive_field
    square = report.layer("square").receptive_field
    assert tall is not None
    assert square is not None
    # H: r = 5, j = 1, x = 0 + (2 - 2) = 0; W: r = 1, j = 2, x = 0
    assert (tall.size, tall.stride, tall.offset) == ((5, 1), (1, 2), (0, 0))
    # H: r = 5 + 2 x 1 = 7, x = 0 + 1 x 1 = 1; W: r = 1 + 2 x 2 = 5, x = 0 + 1 x 2 = 2
    assert (square.size, square.stride, square.offset) == ((7, 5), (1, 2), (1, 2))


def test_receptive_field_resnet18_last_feature_map(resnet18):
    field = resnet18.layer("layer4.1.relu2").receptive_field
    assert field is not None
    assert (field.size, field.stride) == ((435, 435), (32, 32))
    assert resnet18.layer("avgpool").receptive_field.is_global


RESIDUAL = """
    name: residual
    input: [4, 16, 16]
    layers:
      - {name: conv1, op: conv2d, out_channels: 8, kernel: 3, stride: 2, padding: 1}
      - {name: conv2, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
      - {name: shortcut, op: conv2d, out_channels: 8, kernel: SHORTCUT_KERNEL, stride: 2,
         inputs: input}
      - {name: add, op: add, inputs: [conv2, shortcut]}
      - {name: relu, op: relu}
"""


def test_receptive_field_residual_with_aligned_paths():
    report = analyze_text(RESIDUAL.replace("SHORTCUT_KERNEL", "1"))
    # main path: 3/2 at x = 0, then r = 3 + 2 x 2 = 7, x = 0 + (1 - 1) x 2 = 0
    # shortcut: 1x1 stride 2: r = 1, j = 2, x = 0: same stride and centre, so aligned
    field = report.layer("add").receptive_field
    assert field is not None
    assert (field.size, field.stride, field.offset, field.aligned) == ((7, 7), (2, 2), (0, 0), True)
    assert warning_messages(report, "paths") == []


def test_receptive_field_residual_with_misaligned_centres():
    report = analyze_text(RESIDUAL.replace("SHORTCUT_KERNEL", "2"))
    # shortcut 2x2 stride 2 no padding: x = 0 + (1/2 - 0) x 1 = 0.5, while the main path is at 0
    shortcut = report.layer("shortcut").receptive_field
    assert shortcut is not None
    assert shortcut.offset == (0.5, 0.5)
    field = report.layer("add").receptive_field
    assert field is not None
    assert field.size == (7, 7)  # the larger of the two
    assert not field.aligned
    assert report.layer("add").to_json()["receptive_field"]["aligned"] is False
    assert not report.layer("relu").receptive_field.aligned  # carried downstream
    assert warning_messages(report, "paths") == [
        "layer 'add': paths with different receptive-field centres meet here (centre 0x0 from "
        "'conv2' (8, 8, 8), centre 0.5x0.5 from 'shortcut' (8, 8, 8)); the larger receptive "
        "field is reported"
    ]


def test_receptive_field_merge_with_misaligned_strides():
    report = analyze_text("""
        name: strides
        input: [4, 8, 8]
        layers:
          - {name: subsample, op: conv2d, out_channels: 4, kernel: 1, stride: 2}
          - {name: wide, op: conv2d, out_channels: 4, kernel: 5, inputs: input}
          - {name: add, op: add, inputs: [subsample, wide]}
    """)
    # both give 4 x 4 maps, but one steps 2 input pixels per unit and the other 1
    field = report.layer("add").receptive_field
    assert field is not None
    assert not field.aligned
    (message,) = warning_messages(report, "paths")
    assert message.startswith(
        "layer 'add': paths with different effective strides meet here (stride 2x2 from "
        "'subsample' (4, 4, 4), stride 1x1 from 'wide' (4, 4, 4))"
    )


# -- input shape --------------------------------------------------------------------------------


def test_input_shape_changes_every_shape(resnet18):
    wide = analyze_example("resnet18", (3, 320, 320))
    assert wide.input_shape == (3, 320, 320)
    assert wide.to_json()["input_shape"] == ["N", 3, 320, 320]
    expected = {
        "conv1": (64, 160, 160),
        "maxpool": (64, 80, 80),
        "layer1.1.relu2": (64, 80, 80),
        "layer2.1.relu2": (128, 40, 40),
        "layer3.1.relu2": (256, 20, 20),
        "layer4.1.relu2": (512, 10, 10),
        "avgpool": (512, 1, 1),
        "fc": (1000,),
    }
    assert {name: wide.layer(name).output_shape for name in expected} == expected
    for small, large in zip(resnet18.layers, wide.layers, strict=True):
        if len(small.output_shape) == 3 and small.output_shape[1] > 1:
            # 224 / 32 = 7 and 320 / 32 = 10: every spatial size scales by 10/7
            assert large.output_shape[1] * 7 == small.output_shape[1] * 10, small.name
        assert large.params == small.params
    # conv MACs scale with the area, (10/7)^2; the fc's 512,000 do not
    fc_macs = 512 * 1000
    assert (wide.totals.macs - fc_macs) * 49 == (resnet18.totals.macs - fc_macs) * 100


def test_input_shape_need_not_be_square():
    report = analyze_example("resnet18", (3, 224, 320))
    assert report.layer("layer4.1.relu2").output_shape == (512, 7, 10)


def test_input_shape_too_small_is_a_positioned_error():
    # 8 -> conv 5 -> 4 -> pool 2 -> 2: conv2's 5x5 kernel no longer fits
    with pytest.raises(
        SpecError,
        match=r"layer 'conv2': conv2d kernel 5 .*larger than the padded "
        r"input along H \(2 \+ 2\*0 = 2\)",
    ) as caught:
        analyze_example("lenet5", (1, 8, 8))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.position is not None
    assert diagnostic.position.file.endswith("lenet5.yaml")
    assert (diagnostic.position.line, diagnostic.position.column) == (11, 5)


def test_input_shape_of_a_rank_the_network_refuses_says_so_before_its_errors():
    message = r"^error: the input shape 400 has 1 sizes, and the spec's input 1x32x32 has 3"
    with pytest.raises(SpecError, match=message) as caught:
        analyze_example("lenet5", (400,))
    # the errors it led to follow, positioned
    assert "lenet5.yaml:8:5: error: layer 'conv1': conv2d expects an input" in str(caught.value)


def test_a_network_of_features_takes_an_input_of_another_rank():
    spec = archspec.load(
        "name: mlp\ninput: [784]\nlayers:\n  - {op: flatten}\n  - {op: linear, out_features: 10}\n"
    )
    assert archspec.analyze(spec, (1, 28, 28)).layer("1").output_shape == (10,)


@pytest.mark.parametrize("shape", [(1, 0, 32), (1, 2, 3, 4, 5), (), (1, 2_000_000, 32)])
def test_input_shape_out_of_range_is_a_usage_error(shape):
    with pytest.raises(UsageError, match=r"input shape must be 1 to 4 sizes from 1 to 1000000"):
        analyze_example("lenet5", shape)


def test_input_shape_rejects_fractional_sizes():
    with pytest.raises(UsageError, match=r"input shape"):
        analyze_example("lenet5", (1, 32.5, 32))


# -- frozen layers ------------------------------------------------------------------------------


def test_freeze_subtracts_exactly_the_frozen_layers():
    text = (EXAMPLES / "resnet18.yaml").read_text() + "freeze: [conv1, layer1.*]\n"
    report = archspec.analyze(archspec.load(text))
    frozen = {layer.name for layer in report.layers if layer.trainable_params == 0 and layer.params}
    assert frozen == {"conv1"} | {
        f"layer1.{block}.{name}" for block in (0, 1) for name in ("conv1", "bn1", "conv2", "bn2")
    }
    assert report.layer("bn1").trainable_params == 128  # the top-level bn1 is not matched
    # conv1: 64 x 3 x 7 x 7 = 9,408; layer1: 2 blocks x (2 convs x 64 x 64 x 9 + 2 BNs x 128)
    frozen_params = 9408 + 2 * (2 * 36_864 + 2 * 128)
    assert frozen_params == 157_376
    assert report.totals.params == 11_689_512
    assert report.totals.trainable_params == 11_689_512 - frozen_params
    assert report.totals.frozen_params == frozen_params
    assert report.to_json()["totals"]["trainable_params"] == 11_532_136
    # freezing changes no other count
    assert report.totals.macs == 1_814_073_344


# -- warnings -----------------------------------------------------------------------------------


def test_warning_linear_holding_most_params(lenet5):
    (warning,) = lenet5.warnings
    assert warning.severity == "warning"
    # 48,120 / 61,706 = 78%
    assert warning.message.startswith("layer 'fc1': holds 78% of all parameters (48,120 of 61,706)")
    assert warning.position is not None
    assert (warning.position.line, warning.position.column) == (15, 5)


def test_no_warnings_for_resnet18(resnet18):
    assert resnet18.warnings == ()


STRIDED = """
    name: strided
    input: [1, 8, WIDTH]
    layers:
      - {name: conv, op: conv2d, out_channels: 2, kernel: 3, stride: 2, padding: PADDING}
      - {name: conv2, op: conv2d, out_channels: 2, kernel: 1}
"""


def test_warning_strided_conv_drops_last_rows_and_columns():
    report = analyze_text(STRIDED.replace("WIDTH", "8").replace("PADDING", "0"))
    # (8 - 3) % 2 = 1: the three windows cover rows 0-6, row 7 is never read; same for columns
    assert report.layer("conv").output_shape == (2, 3, 3)
    (message,) = warning_messages(report, "never reads")
    # "1 rows" or "1 row": the count is what matters
    pattern = r"layer 'conv': stride 2x2 never reads the last row and the last column"
    assert re.fullmatch(pattern + " of its input", message)


def test_warning_strided_conv_drops_only_rows():
    report = analyze_text(STRIDED.replace("WIDTH", "9").replace("PADDING", "0"))
    # rows: (8 - 3) % 2 = 1 dropped; columns: (9 - 3) % 2 = 0, all read
    (message,) = warning_messages(report, "never reads")
    assert re.fullmatch(r"layer 'conv': stride 2x2 never reads the last row of its input", message)


def test_no_warning_when_padding_covers_the_last_row():
    report = analyze_text(STRIDED.replace("WIDTH", "8").replace("PADDING", "1"))
    # (8 + 2 - 3) % 2 = 1 padded row left over, and it is padding: every real row is read
    assert warning_messages(report, "never reads") == []


UNUSED = """
    name: unused
    input: [3, 8, 8]
    layers:
      - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
      - {name: side, op: relu, inputs: input}
      - {name: head, op: relu, inputs: conv}
"""


def test_warning_unused_layer():
    report = analyze_text(UNUSED)
    assert report.outputs == ("head",)
    assert warning_messages(report, "never used") == [
        "layer 'side': its output is never used (not read by a layer, not an output)"
    ]


def test_no_unused_warning_for_a_declared_output():
    report = analyze_text(UNUSED + "    outputs: [head, side]\n")
    assert report.outputs == ("head", "side")
    assert report.to_json()["outputs"] == ["head", "side"]
    assert warning_messages(report, "never used") == []


# -- late-bound in_channels ---------------------------------------------------------------------


def test_in_channels_expressions_resolve_per_layer():
    report = analyze_text("""
        name: inverted
        input: [8, 16, 16]
        params: {expand: 6}
        blocks:
          inverted_residual:
            params: {out: null}
            layers:
              - {name: expand, op: conv2d, out_channels: in_channels * expand, kernel: 1,
                 bias: false}
              - {name: dw, op: conv2d, out_channels: in_channels, kernel: 3, padding: 1,
                 groups: in_channels, bias: false}
              - {name: project, op: conv2d, out_channels: out, kernel: 1, bias: false}
        layers:
          - {name: b1, block: inverted_residual, args: {out: 16}}
          - {name: b2, block: inverted_residual, args: {out: 24}}
    """)
    counts = {
        layer.name: (layer.output_shape[0], layer.op.groups, layer.params)
        for layer in report.layers
    }
    assert counts == {
        # in 8: expand to 8 x 6 = 48 channels, 48 x 8 weights
        "b1.expand": (48, 1, 384),
        # in 48: one 3x3 filter per channel, 48 x 9
        "b1.dw": (48, 48, 432),
        "b1.project": (16, 1, 768),
        # the same block now reads 16 channels: 96 = 16 x 6
        "b2.expand": (96, 1, 1536),
        "b2.dw": (96, 96, 864),
        "b2.project": (24, 1, 2304),
    }


def test_in_channels_mobilenet_v2_published():
    report = analyze_example("mobilenet_v2")
    assert report.totals.params == 3_504_872
    assert report.totals.macs == 300_774_272
    depthwise = report.layer("features.2.conv.1.0")
    assert (depthwise.op.groups, depthwise.output_shape) == (96, (96, 56, 56))


def test_a_warning_inside_a_block_is_reported_once_for_all_instances():
    spec = archspec.load(
        """
name: net
input: [3, 16, 16]
blocks:
  twin:
    layers:
      - {name: left, op: conv2d, out_channels: 3, kernel: 1}
      - {name: right, op: conv2d, out_channels: 3, kernel: 1, inputs: input}
layers:
  - {name: body, block: twin, repeat: 3}
"""
    )
    report = archspec.analyze(spec)
    (message,) = warning_messages(report, "never used")
    assert message == (
        "layer 'body.0.left': its output is never used (not read by a layer, not an output) "
        "(and 2 more instances)"
    )


def test_warning_when_a_left_out_entry_makes_a_merge_read_one_layer_twice():
    text = """
name: left_out_gate
input: [3, 8, 8]
params: {gated: false}
layers:
  - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: gate, op: sigmoid, when: gated}
  - {name: scaled, op: mul, inputs: [conv, gate]}
"""
    # the gate left out, `scaled` reads conv in its place: conv * conv
    (message,) = warning_messages(analyze_text(text), "as inputs")
    assert message.startswith("layer 'scaled': reads 'conv' as inputs 0, 1: an entry it names")
    gated = analyze_text(text.replace("gated: false", "gated: true"))
    assert not warning_messages(gated, "as inputs")


@pytest.mark.parametrize(
    ("head", "advised"),
    [
        ("{op: flatten}", True),  # 16 x 4 x 4 positions become features: pooling would shrink fc
        ("{op: mean, dims: [2, 3]}", False),  # pooled already
        ("{op: adaptive_avg_pool2d, output_size: 1}\n  - {op: flatten}", False),
    ],
)
def test_pooling_is_advised_only_for_a_head_on_a_flattened_map(head, advised):
    report = analyze_text(
        f"""
name: head
input: [3, 4, 4]
layers:
  - {{op: conv2d, out_channels: 16, kernel: 1}}
  - {head}
  - {{name: fc, op: linear, out_features: 100}}
"""
    )
    (message,) = warning_messages(report, "holds")
    assert message.endswith("a global pooling before the head would shrink it") == advised
