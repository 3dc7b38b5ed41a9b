"""The zoo: published parameter and MAC counts; torch agrees with every layer's static figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from oracle import layer_params, layer_shapes

import archspec
from archspec.backends.torch import compile_module

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"

#: (parameters, MACs at the spec's input), as torchvision and the papers publish them.
PUBLISHED = {
    "lenet5": (61_706, 416_520),
    "alexnet": (61_100_840, 714_188_480),
    "vgg16": (138_357_544, 15_470_264_320),
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "mobilenet_v2": (3_504_872, 300_774_272),
    "resnext50_32x4d": (25_028_904, 4_230_479_872),
    "squeezenet1_1": (1_235_496, 349_151_936),
    "densenet121": (7_978_856, 2_834_161_664),
    "googlenet": (6_624_904, 1_498_376_192),
    "inception_v3": (23_834_568, 5_713_216_096),
    "efficientnet_b0": (5_288_548, 385_814_752),
    "mobilenet_v3_large": (5_483_032, 216_589_760),
    "regnet_y_400mf": (4_344_144, 401_842_848),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992),
    # segmentation without the aux head (with it: torchvision's published figures, tested in
    # test_zoo_dense.py), at torchvision's 520x520
    "fcn_resnet50": (32_957_013, 142_725_772_800),
    "deeplabv3_resnet50": (39_638_869, 168_731_205_888),
    "lraspp_mobilenet_v3_large": (3_221_538, 2_086_219_688),
    "r3d_18": (33_371_472, 40_696_553_472),
    "r2plus1d_18": (31_505_325, 40_519_080_960),
    # the U-Net paper's network (padded, 512x512): the 31.03 M parameters usually quoted
    "unet": (31_030_658, 192_384_335_872),
    # YOLOv5l's published 46,563,709 parameters less its Detect head's 457,725
    "csp_pan": (46_105_984, 53_765_734_400),
    # torchaudio's M5 tutorial network: 26,915 parameters
    "m5": (26_915, 7_675_584),
    # torchvision's meta "_ops" (4.456, 17.564, 4.491 G) counts the attention products too
    "convnext_tiny": (28_589_128, 4_455_531_264),
    "vit_b_16": (86_567_656, 17_563_828_224),
    "swin_t": (28_288_354, 4_490_566_656),
}

#: Receptive fields published for the last convolutional stage (Araujo et al., Distill 2019).
PUBLISHED_FIELDS = [("alexnet", "features.12", 195), ("vgg16", "features.30", 212)]


def zoo() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def test_every_example_has_published_figures():
    assert {path.stem for path in zoo()} == set(PUBLISHED)


@pytest.mark.parametrize("path", zoo(), ids=lambda path: path.stem)
def test_params_and_macs_match_published(path):
    totals = archspec.analyze(archspec.load(path)).totals
    assert (totals.params, totals.macs) == PUBLISHED[path.stem]


@pytest.mark.parametrize(("name", "layer", "size"), PUBLISHED_FIELDS)
def test_receptive_field_matches_published(name, layer, size):
    field = archspec.analyze(archspec.load(EXAMPLES / f"{name}.yaml")).layer(layer).receptive_field
    assert field is not None
    assert field.size == (size, size)


@pytest.mark.parametrize("path", zoo(), ids=lambda path: path.stem)
def test_torch_agrees_with_every_layer(path):
    # the same layers at a smaller input where the spec has one: the 520x520 segmentation
    # nets, a 16-frame video and a 640x640 detector would take seconds each
    params = archspec.load(path).params
    smaller = {"size": 128, "frames": 8, "image_size": 64, "num_layers": 2}
    spec = archspec.load(path, {k: v for k, v in smaller.items() if params.get(k, 0) > v})
    report = archspec.analyze(spec)
    torch.manual_seed(0)
    module = compile_module(spec, report)
    shapes = layer_shapes(module, torch.randn(2, *report.input_shape))
    assert shapes == {layer.name: layer.output_shape for layer in report.layers}
    assert layer_params(module, report) == {layer.name: layer.params for layer in report.layers}
    assert sum(p.numel() for p in module.parameters()) == report.totals.params
