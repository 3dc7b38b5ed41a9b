"""The zoo compiles to torchvision's state_dict: same keys, same shapes, same parameter total.

The golden files come from torchvision itself (`benchmarks/torchvision_state_dicts.py`, run in an
environment that has torchvision), so this test needs neither torchvision nor its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import archspec
from archspec.backends.torch import compile_module

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "torchvision"
EXAMPLES = ROOT / "archspec" / "zoo"

#: The examples that torchvision has under the same name; lenet5 is not among its models.
MODELS = (
    "alexnet",
    "vgg16",
    "resnet18",
    "resnet50",
    "resnet101",
    "mobilenet_v2",
    "resnext50_32x4d",
    "squeezenet1_1",
    "densenet121",
    "googlenet",
    "inception_v3",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "fcn_resnet50",
    "fcn_resnet50_aux",
    "deeplabv3_resnet50",
    "deeplabv3_resnet50_aux",
    "lraspp_mobilenet_v3_large",
    "r3d_18",
    "r2plus1d_18",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "swin_v2_t",
)
#: Goldens of an example loaded with other parameters: golden name -> (example, overrides), as
#: benchmarks/torchvision_state_dicts.py's SETTINGS builds the torchvision model (its "kwargs"
#: hold the same settings).
SETTINGS = {
    "fcn_resnet50_aux": ("fcn_resnet50", {"aux_loss": True}),
    "deeplabv3_resnet50_aux": ("deeplabv3_resnet50", {"aux_loss": True}),
}


#: Goldens of a torchvision model that is a variant of an example: name -> (example, variant).
VARIANTS = {"swin_v2_t": ("swin_t", "v2_t")}


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def test_every_golden_file_is_checked():
    assert {path.stem for path in GOLDEN.glob("*.json")} == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_matches_torchvision(name):
    expected = golden(name)
    example, overrides = SETTINGS.get(name, (name, {}))
    assert expected["model"] == example
    assert {key: expected["kwargs"][key] for key in overrides} == overrides
    example, variant = VARIANTS.get(example, (example, None))
    spec = archspec.load(EXAMPLES / f"{example}.yaml", overrides, variant=variant)
    module = compile_module(spec, device="meta")  # shapes only: no memory for the weights
    shapes = {key: list(value.shape) for key, value in module.state_dict().items()}
    # Compare the differences first: on failure they name the keys instead of two long dicts.
    missing = sorted(expected["state_dict"].keys() - shapes.keys())
    extra = sorted(shapes.keys() - expected["state_dict"].keys())
    assert (missing, extra) == ([], [])
    wrong = {
        key: (shape, expected["state_dict"][key])
        for key, shape in shapes.items()
        if shape != expected["state_dict"][key]
    }
    assert wrong == {}
    assert sum(parameter.numel() for parameter in module.parameters()) == expected["params"]
