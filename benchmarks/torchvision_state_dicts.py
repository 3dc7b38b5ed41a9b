"""Write torchvision's state_dict keys and shapes for the zoo to tests/golden/torchvision/.

torchvision is not a dependency of archspec, so this runs in a separate environment that has it:

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch torchvision pydantic pyyaml networkx onnx
    /tmp/tvenv/bin/pip install -e . --no-deps
    /tmp/tvenv/bin/python benchmarks/torchvision_state_dicts.py

tests/test_torchvision_keys.py then checks, without torchvision, that every compiled example has
the same keys, shapes and parameter total as the torchvision model of the same name, built with
the keyword arguments of KWARGS (recorded in the golden file as "kwargs"). A golden of SETTINGS
(fcn_resnet50_aux.json) holds a model built with more arguments; its "model" names the
torchvision model and the example, and its "kwargs" include the settings the example takes as
overrides.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torchvision import models

#: The examples whose torchvision model has the same name (lenet5 has none).
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
    "fcn_resnet50",
    "fcn_resnet50_aux",
    "deeplabv3_resnet50",
    "deeplabv3_resnet50_aux",
    "lraspp_mobilenet_v3_large",
    "r3d_18",
    "r2plus1d_18",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "swin_v2_t",
)
#: Keyword arguments for the models whose defaults differ from the example: the examples leave out
#: the auxiliary classifiers (used in training only) and the input transform of the TensorFlow
#: ports; init_weights=False keeps torch's default initialisation and silences the warning. The
#: segmentation models would download ImageNet weights for their backbone unless told not to.
KWARGS: dict[str, dict[str, object]] = {
    "googlenet": {"aux_logits": False, "transform_input": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": False},
    "fcn_resnet50": {"weights_backbone": None},
    "deeplabv3_resnet50": {"weights_backbone": None},
    "lraspp_mobilenet_v3_large": {"weights_backbone": None},
}
#: Goldens of a model built with other arguments: golden name -> (torchvision model, arguments on
#: top of its KWARGS). Each argument is also a parameter of the example, which is loaded with it
#: as an override (aux_loss=True adds the auxiliary head and its keys to both).
SETTINGS: dict[str, tuple[str, dict[str, object]]] = {
    "fcn_resnet50_aux": ("fcn_resnet50", {"aux_loss": True}),
    "deeplabv3_resnet50_aux": ("deeplabv3_resnet50", {"aux_loss": True}),
}
#: torchvision models that are a variant of an example: name -> (example, variant).
VARIANTS: dict[str, tuple[str, str]] = {
    "swin_s": ("swin_t", "s"),
    "swin_b": ("swin_t", "b"),
    "swin_v2_t": ("swin_t", "v2_t"),
    "swin_v2_s": ("swin_t", "v2_s"),
    "convnext_small": ("convnext_tiny", "small"),
    "vit_b_32": ("vit_b_16", "b_32"),
    "vit_l_16": ("vit_b_16", "l_16"),
}
GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden" / "torchvision"


def example_of(name: str) -> tuple[str, str | None]:
    """(the example that builds a golden's model, its variant or None)."""
    model, _ = SETTINGS.get(name, (name, {}))
    example, variant = VARIANTS.get(model, (model, None))
    return example, variant


def setting(name: str) -> tuple[str, dict[str, object], dict[str, object]]:
    """(torchvision model, its keyword arguments, the example's overrides) of a golden name."""
    model, overrides = SETTINGS.get(name, (name, {}))
    return model, {**KWARGS.get(model, {}), **overrides}, overrides


def describe(name: str) -> dict[str, object]:
    """The model's state_dict as {key: shape} in torchvision's order, and its parameter total."""
    model_name, kwargs, _ = setting(name)
    model = models.get_model(model_name, weights=None, **kwargs)
    return {
        "model": model_name,
        "torchvision": torchvision.__version__,
        "torch": torch.__version__,
        **({"kwargs": kwargs} if kwargs else {}),
        "state_dict": {key: list(value.shape) for key, value in model.state_dict().items()},
        "params": sum(parameter.numel() for parameter in model.parameters()),
    }


def render(golden: dict[str, object]) -> str:
    """JSON with one state_dict entry per line, so a diff of two versions reads key by key."""
    state_dict = golden["state_dict"]
    assert isinstance(state_dict, dict)
    entries = ",\n".join(
        f"    {json.dumps(key)}: {json.dumps(shape)}" for key, shape in state_dict.items()
    )
    head = ",\n".join(
        f"  {json.dumps(field)}: {json.dumps(golden[field])}"
        for field in ("model", "torchvision", "torch", "kwargs")
        if field in golden
    )
    tail = f'  "state_dict": {{\n{entries}\n  }},\n  "params": {golden["params"]}'
    return f"{{\n{head},\n{tail}\n}}\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN, help="directory of the golden files")
    parser.add_argument(
        "models", nargs="*", default=MODELS, help="golden names: torchvision's, or of SETTINGS"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        golden = describe(name)
        text = render(golden)
        assert json.loads(text) == golden  # the hand-made layout is valid JSON of the same value
        path = args.out / f"{name}.json"
        path.write_text(text)
        print(f"{path}: {len(golden['state_dict'])} keys, {golden['params']:,} params")


if __name__ == "__main__":
    main()
