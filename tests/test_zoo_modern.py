"""EfficientNet-B0, MobileNetV3-Large, RegNetY-400MF and ShuffleNet V2: torchvision's figures.

Static analysis only, no torch: the figures were checked against torchvision 0.29.1, whose
weights load into the compiled examples with strict=True and give identical logits in eval mode,
and identical outputs in train mode from the same random stream, stochastic depth and dropout
included (`benchmarks/torchvision_parity.py`). torchvision's meta "_ops" counts the
multiply-accumulates of convolutions and linear layers only, as archspec's MACs do.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

import archspec

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"


class Published(NamedTuple):
    """What torchvision states of a model, and what the example expands to."""

    params: int  # torchvision's parameter total (its meta "num_params")
    macs: int  # exact; torchvision's meta "_ops" is this in G, to 3 decimals
    gflops: float  # torchvision's meta "_ops" of the DEFAULT weights
    layers: int


ZOO = {
    "efficientnet_b0": Published(5_288_548, 385_814_752, 0.386, 249),
    "mobilenet_v3_large": Published(5_483_032, 216_589_760, 0.217, 187),
    "regnet_y_400mf": Published(4_344_144, 401_842_848, 0.402, 270),
    "shufflenet_v2_x1_0": Published(2_278_604, 144_907_992, 0.145, 210),
}


def names(report: archspec.Report) -> list[str]:
    return [layer.name for layer in report.layers]


def analyze(name: str, **load: object) -> tuple[archspec.Spec, archspec.Report]:
    spec = archspec.load(EXAMPLES / f"{name}.yaml", **load)
    return spec, archspec.analyze(spec)


@pytest.mark.parametrize("name", ZOO)
def test_params_and_macs_match_torchvision(name):
    published = ZOO[name]
    totals = analyze(name)[1].totals
    assert (totals.params, totals.trainable_params) == (published.params, published.params)
    assert totals.macs == published.macs
    assert round(totals.macs / 1e9, 3) == published.gflops


@pytest.mark.parametrize("name", ZOO)
def test_input_output_and_layer_count(name):
    spec, report = analyze(name)
    assert report.input_shape == (3, 224, 224)
    (output,) = spec.network.outputs
    assert report.layer(output).output_shape == (1000,)
    assert len(report.layers) == ZOO[name].layers


def test_efficientnet_stochastic_depth_rises_linearly_over_the_residual_blocks():
    spec, _ = analyze("efficientnet_b0")
    found = {
        layer.name.removesuffix(".stochastic_depth"): (layer.op.p, layer.op.mode)
        for layer in spec.network.layers
        if layer.op.op == "stochastic_depth"
    }
    # block k of 16 (counted from 0 over all stages) as torchvision computes it; the first block
    # of each stage strides or widens, so it has no shortcut and nothing to drop
    first_ids = {1: 0, 2: 1, 3: 3, 4: 5, 5: 8, 6: 11, 7: 15}
    counts = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 1}
    expected = {
        f"features.{stage}.{index}": (0.2 * float(first_ids[stage] + index) / 16, "row")
        for stage, count in counts.items()
        for index in range(1, count)
    }
    assert found == expected
    assert found["features.6.3"][0] == 0.17500000000000002  # torchvision's float, bit for bit


def test_mobilenet_v3_squeezes_to_a_quarter_rounded_to_eights_and_uses_tf_batch_norm():
    spec, report = analyze("mobilenet_v3_large")
    # expanded width -> make_divisible(width // 4, 8): 72 -> 24, 120 -> 32, 480 -> 120, ...
    squeezed = {
        name: report.layer(f"features.{name}.block.2.fc1").output_shape[0]
        for name in (4, 5, 11, 12, 13)
    }
    assert squeezed == {4: 24, 5: 32, 11: 120, 12: 168, 13: 168}
    assert report.layer("features.14.block.2.fc1").output_shape == (240, 1, 1)
    norms = [layer.op for layer in spec.network.layers if layer.op.op == "batchnorm2d"]
    assert {(norm.eps, norm.momentum) for norm in norms} == {(0.001, 0.01)}
    # hard-swish from the C3 stage on, relu before it; the first block keeps its width unexpanded
    assert spec.network.layer("features.3.block.0.2").op.op == "relu"
    assert spec.network.layer("features.7.block.0.2").op.op == "hardswish"
    assert spec.network.layer("features.1.block.0.0").op.groups == 16  # depthwise comes first
    assert "features.1.block.2.0" not in names(report)  # then the projection, block.1


def test_regnet_blocks_are_named_with_hyphens_and_grouped_by_eight_channels():
    spec, report = analyze("regnet_y_400mf")
    heads = [name for name in names(report) if name.endswith(".f.b.0")]
    assert len(heads) == 1 + 3 + 6 + 6
    assert heads[-1] == "trunk_output.block4.block4-5.f.b.0"
    groups = {spec.network.layer(name).op.groups for name in heads}
    assert groups == {48 // 8, 104 // 8, 208 // 8, 440 // 8}
    # the squeeze width is a quarter of the block's input width: 208 entering stage 4, then 440
    assert report.layer("trunk_output.block4.block4-0.f.se.fc1").output_shape[0] == 52
    assert report.layer("trunk_output.block4.block4-1.f.se.fc1").output_shape[0] == 110
    # only the first block of each stage projects its shortcut
    projections = [name for name in names(report) if name.endswith(".proj.0")]
    assert projections == [f"trunk_output.block{s}.block{s}-0.proj.0" for s in range(1, 5)]


def test_squeeze_excitation_makes_every_later_field_global():
    report = analyze("efficientnet_b0")[1]
    # every unit after the first gate depends on the whole image through its global mean
    field = report.layer("features.1.0.block.1.scale").receptive_field
    assert field is not None
    assert field.is_global
    first = report.layer("features.1.0.block.0.2").receptive_field
    assert first is not None
    assert (first.size, first.stride) == ((7, 7), (2, 2))


#: torchvision's four ShuffleNet V2 widths: (params, MACs), their "_ops" 0.04, 0.145, 0.296, 0.583.
SHUFFLENET_VARIANTS = {
    "x0_5": (1_366_792, 40_476_448),
    "x1_0": (2_278_604, 144_907_992),
    "x1_5": (3_503_624, 295_759_392),
    "x2_0": (7_393_996, 583_253_464),
}


@pytest.mark.parametrize("variant", SHUFFLENET_VARIANTS)
def test_shufflenet_variants_match_torchvision(variant):
    totals = analyze("shufflenet_v2_x1_0", variant=variant)[1].totals
    assert (totals.params, totals.macs) == SHUFFLENET_VARIANTS[variant]


def test_shufflenet_units_split_the_channels_and_shuffle_them_back():
    spec, report = analyze("shufflenet_v2_x1_0")
    # stride 1: half the channels pass through, half go through branch2
    assert spec.network.layer("stage3.1.cat").inputs == ("stage3.1.x1", "stage3.1.branch2.7")
    assert spec.network.layer("stage3.1.branch2.0").inputs == ("stage3.1.x2",)
    assert report.layer("stage3.1.x1").output_shape == (116, 14, 14)
    # stride 2: both branches read the whole input, and there is nothing to split
    assert spec.network.layer("stage3.0.cat").inputs == ("stage3.0.branch1.4", "stage3.0.branch2.7")
    assert "stage3.0.x1" not in names(report)
    assert report.layer("stage3.0.shuffle").output_shape == (232, 14, 14)
