"""Segmentation (FCN, DeepLabV3, LR-ASPP) and video (R3D, R(2+1)D): torchvision's figures.

Static analysis only, no torch: the figures were checked against
torchvision 0.29.1, whose weights load into the compiled examples with strict=True and give
identical outputs in eval mode, dict outputs key by key (`benchmarks/torchvision_parity.py`).
torchvision publishes its segmentation figures ("num_params", "_ops") for the weights it ships,
which carry the auxiliary head (aux_loss=True), at 520x520; its "_ops" counts the
multiply-accumulates of convolutions and linear layers only, as archspec's MACs do.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest

import archspec
from archspec.errors import UsageError
from archspec.outputs.render import describe_field

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"


class Published(NamedTuple):
    """What torchvision states of a model, and what the example expands to."""

    params: int  # exact; torchvision's meta "num_params" for the published setting
    macs: int  # exact; torchvision's meta "_ops" is this in G, to 3 decimals
    gflops: float  # torchvision's meta "_ops" of the DEFAULT weights
    layers: int
    outputs: dict[str, tuple[int, ...]]  # the returned outputs by name, shapes without batch


SEGMENTED = {"out": (21, 520, 520)}
WITH_AUX = {"out": (21, 520, 520), "aux": (21, 520, 520)}
CLASSES = {"fc": (400,)}

#: (example, overrides) -> its figures at the spec's input; aux_loss=True is what torchvision
#: publishes for FCN and DeepLabV3, aux_loss=False (the default) drops the auxiliary head.
ZOO = {
    ("fcn_resnet50", True): Published(35_322_218, 152_716_512_000, 152.717, 184, WITH_AUX),
    ("fcn_resnet50", False): Published(32_957_013, 142_725_772_800, 142.726, 178, SEGMENTED),
    ("deeplabv3_resnet50", True): Published(42_004_074, 178_721_945_088, 178.722, 205, WITH_AUX),
    ("deeplabv3_resnet50", False): Published(39_638_869, 168_731_205_888, 168.731, 199, SEGMENTED),
    ("lraspp_mobilenet_v3_large", None): Published(3_221_538, 2_086_219_688, 2.086, 193, SEGMENTED),
    ("r3d_18", None): Published(33_371_472, 40_696_553_472, 40.697, 68, CLASSES),
    ("r2plus1d_18", None): Published(31_505_325, 40_519_080_960, 40.519, 119, CLASSES),
}
#: torchvision's meta for its DEFAULT weights; for FCN and DeepLabV3 those carry the aux head.
PUBLISHED = [key for key in ZOO if key[1] is not False]


def analyze(name: str, aux_loss: bool | None = None, **overrides: object) -> archspec.Report:
    if aux_loss is not None:
        overrides["aux_loss"] = aux_loss
    return archspec.analyze(archspec.load(EXAMPLES / f"{name}.yaml", overrides))


def ids(key: tuple[str, bool | None]) -> str:
    name, aux_loss = key
    return name if aux_loss is None else f"{name}-aux_loss={aux_loss}"


@pytest.mark.parametrize("key", ZOO, ids=ids)
def test_params_and_macs(key):
    published = ZOO[key]
    totals = analyze(*key).totals
    assert (totals.params, totals.trainable_params) == (published.params, published.params)
    assert totals.macs == published.macs
    assert round(totals.macs / 1e9, 3) == published.gflops


@pytest.mark.parametrize("key", PUBLISHED, ids=ids)
def test_the_published_setting_matches_torchvision_meta(key):
    # torchvision's meta "_ops" and "num_params" of the DEFAULT weights, at 520x520 and 16x112x112
    meta = {
        "fcn_resnet50": (35_322_218, 152.717),
        "deeplabv3_resnet50": (42_004_074, 178.722),
        "lraspp_mobilenet_v3_large": (3_221_538, 2.086),
        "r3d_18": (33_371_472, 40.697),
        "r2plus1d_18": (31_505_325, 40.519),
    }
    totals = analyze(*key).totals
    assert (totals.params, round(totals.macs / 1e9, 3)) == meta[key[0]]


@pytest.mark.parametrize("key", ZOO, ids=ids)
def test_layer_count_and_named_outputs(key):
    published = ZOO[key]
    spec = archspec.load(
        EXAMPLES / f"{key[0]}.yaml", {} if key[1] is None else {"aux_loss": key[1]}
    )
    report = archspec.analyze(spec)
    assert len(report.layers) == published.layers
    keys = spec.network.output_keys or spec.network.outputs
    shapes = {
        key: report.layer(layer).output_shape
        for key, layer in zip(keys, spec.network.outputs, strict=True)
    }
    assert shapes == published.outputs
    assert list(shapes) == list(published.outputs)  # torchvision's order: out, then aux


def test_inputs_are_torchvision_eval_sizes_and_shrink_with_size():
    assert analyze("fcn_resnet50").input_shape == (3, 520, 520)
    assert analyze("r3d_18").input_shape == (3, 16, 112, 112)
    # the scores are resized to the input whatever its size, as torchvision's F.interpolate does
    small = analyze("deeplabv3_resnet50", True, size=97)
    assert small.layer("resize").output_shape == small.layer("aux_resize").output_shape
    assert small.layer("resize").output_shape == (21, 97, 97)
    assert small.layer("backbone.layer4.2.relu3").output_shape == (2048, 13, 13)  # 1/8, rounded up
    clip = analyze("r2plus1d_18", frames=8, size=64)
    assert clip.layer("layer4.1.relu").output_shape == (512, 1, 4, 4)


def test_lraspp_has_no_auxiliary_head():
    # torchvision raises NotImplementedError for lraspp_mobilenet_v3_large(aux_loss=True)
    with pytest.raises(UsageError, match=r"no parameter 'aux_loss'"):
        archspec.load(EXAMPLES / "lraspp_mobilenet_v3_large.yaml", {"aux_loss": True})


@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_resnet_backbone_trades_stride_for_dilation(name):
    report = analyze(name)
    dilated = {
        layer.name: layer.op.dilation
        for layer in report.layers
        if layer.name.startswith("backbone.") and getattr(layer.op, "dilation", (1, 1)) != (1, 1)
    }
    # torchvision's replace_stride_with_dilation [False, True, True]: a stage's first block keeps
    # the dilation before it
    assert dilated == {
        **{f"backbone.layer3.{i}.conv2": (2, 2) for i in range(1, 6)},
        "backbone.layer4.0.conv2": (2, 2),
        "backbone.layer4.1.conv2": (4, 4),
        "backbone.layer4.2.conv2": (4, 4),
    }
    assert report.layer("backbone.layer4.2.relu3").output_shape == (2048, 65, 65)


def test_deeplab_aspp_rates():
    report = analyze("deeplabv3_resnet50")
    rates = [report.layer(f"classifier.0.convs.{i}.0").op.dilation for i in (1, 2, 3)]
    assert rates == [(12, 12), (24, 24), (36, 36)]
    assert report.layer("classifier.0.cat").output_shape == (1280, 65, 65)


def test_lraspp_activations_match_torchvision_modules():
    # torchvision's lraspp_mobilenet_v3_large holds these modules, each used once; a block that
    # dropped its activation argument would keep every key and shape but compute otherwise
    ops = Counter(layer.op_name for layer in analyze("lraspp_mobilenet_v3_large").layers)
    found = {op: ops[op] for op in ("conv2d", "batchnorm2d", "hardswish", "relu", "hardsigmoid")}
    assert found == {"conv2d": 66, "batchnorm2d": 47, "hardswish": 20, "relu": 20, "hardsigmoid": 8}
    assert ops["sigmoid"] == 1
    report = analyze("lraspp_mobilenet_v3_large")
    assert report.layer("backbone.4.block.3.1").output_shape == (40, 65, 65)  # low: 1/8
    assert report.layer("backbone.16.2").output_shape == (960, 33, 33)  # high: 1/16, dilated


def test_r2plus1d_midplanes_follow_each_block_input():
    report = analyze("r2plus1d_18")
    # (in * out * 27) // (9 * in + 3 * out), from the block's input, for both of its convs
    widths = {
        name: report.layer(name).output_shape[0]
        for name in (
            "stem.0",
            "layer1.0.conv1.0.0",
            "layer2.0.conv1.0.0",
            "layer2.0.conv2.0.0",
            "layer2.1.conv1.0.0",
            "layer4.0.conv1.0.0",
        )
    }
    assert widths == {
        "stem.0": 45,
        "layer1.0.conv1.0.0": 144,
        "layer2.0.conv1.0.0": 230,
        "layer2.0.conv2.0.0": 230,
        "layer2.1.conv1.0.0": 288,
        "layer4.0.conv1.0.0": 921,
    }


@pytest.mark.parametrize("name", ["r3d_18", "r2plus1d_18"])
def test_video_fields_are_per_axis(name):
    report = analyze(name)
    # T: 3, + 2 x 4 (layer1), + 2 + 4 x 3 (layer2, /2), + 4 + 8 x 3 (/4), + 8 + 16 x 3 (/8) = 109;
    # H, W: 7 /2, + 4 x 4, + 4 + 8 x 3 (/4), + 8 + 16 x 3 (/8), + 16 + 32 x 3 (/16) = 219
    assert describe_field(report.layer("layer4.1.relu").receptive_field) == "109x219x219 /8x16x16"
    assert describe_field(report.layer("avgpool").receptive_field) == "global"
