"""torchvision's weights load into the compiled zoo, and both networks compute the same outputs.

Pretrained weights cannot be downloaded here, so each torchvision model is built with
`weights=None` (and the keyword arguments of `torchvision_state_dicts.KWARGS`: no auxiliary
classifiers, no input transform, no backbone weights) and a seeded random initialisation, batch
norm statistics included. Its whole state_dict (buffers too) is loaded with `strict=True` into
the network archspec compiles from `archspec/zoo/<name>.yaml`, and both run in eval mode on the same
seeded batch at the spec's input shape (3x299x299 for inception_v3, 3x520x520 for the
segmentation models, clips of 3x16x112x112 for the video ones, 3x224x224 for the others). A
golden name of `torchvision_state_dicts.SETTINGS` (fcn_resnet50_aux) builds both with its
settings (aux_loss=True). The segmentation models return a dict ({out} or {out, aux}); its keys
must agree, in order, and its tensors are compared key by key.
Run it in an environment that has torchvision:

    /tmp/tvenv/bin/python benchmarks/torchvision_parity.py [--atol 1e-5] [names...]

It prints the largest absolute difference of the outputs per model, beside the largest absolute
output for scale, and exits 1 if any exceeds
`--atol` (also checked with `torch.allclose(rtol=0)`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import models
from torchvision_state_dicts import MODELS, example_of, setting

import archspec
from archspec.backends.torch import compile_module

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"
ATOL = 1e-5
BATCH = 2
SEED = 0


@torch.no_grad()
def randomize_norms(model: nn.Module) -> None:
    """Give every batch and layer norm random statistics and affine terms, and every tensor
    that starts at zero random values, seeded by the global seed.

    Fresh norms are the identity in eval mode (mean 0, variance 1, weight 1, bias 0), so two
    norms loaded into each other's places would go unnoticed.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.1)
        elif isinstance(module, nn.LayerNorm):
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.1)
    # ViT's head starts at zero (its logits would be 0 whatever the network), ConvNeXt's layer
    # scale at 1e-6 (its blocks would add nothing): make every such tensor count
    for parameter in model.parameters():
        if parameter.abs().max() <= 1e-6:
            parameter.normal_(0.0, 0.02)
        elif parameter.dim() == 3 and parameter.shape[1:] == (1, 1):
            parameter.uniform_(0.5, 1.5)


def named_outputs(result: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A model's outputs by name: a dict as it is, a single tensor as {"logits": tensor}."""
    return dict(result) if isinstance(result, dict) else {"logits": result}


@torch.no_grad()
def compare(name: str, atol: float) -> tuple[dict[str, float], float, bool]:
    """({output: largest |difference|}, largest |output|, passed) for one model:
    (N, C, *spatial) at the spec's input -> (N, classes), or a dict of (N, classes, H, W)."""
    torch.manual_seed(SEED)
    model, kwargs, overrides = setting(name)
    reference = models.get_model(model, weights=None, **kwargs).eval()
    randomize_norms(reference)
    example, variant = example_of(name)
    spec = archspec.load(EXAMPLES / f"{example}.yaml", overrides, variant=variant)
    network = compile_module(spec)
    try:
        network.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as error:  # torch's message lists the missing, unexpected and bad keys
        print(f"{name}: torchvision's state_dict does not load: {error}")
        return {"state_dict": float("inf")}, float("nan"), False
    network.eval()
    batch = torch.randn(BATCH, *spec.network.input, generator=torch.Generator().manual_seed(SEED))
    expected, actual = named_outputs(reference(batch)), named_outputs(network(batch))
    assert list(actual) == list(expected), (name, list(actual), list(expected))
    differences, scale, close = {}, 0.0, True
    for key, value in expected.items():
        assert actual[key].shape == value.shape, (name, key, actual[key].shape, value.shape)
        differences[key] = (actual[key] - value).abs().max().item()
        scale = max(scale, value.abs().max().item())
        close = close and torch.allclose(actual[key], value, rtol=0, atol=atol)
    return differences, scale, max(differences.values()) <= atol and close


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atol", type=float, default=ATOL, help="largest accepted difference")
    parser.add_argument(
        "models", nargs="*", default=MODELS, help="golden names: torchvision's, or of SETTINGS"
    )
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"batch {BATCH} at each spec's input, seed {SEED}, atol {args.atol:g}"
    )
    failures = []
    for name in args.models:
        differences, scale, passed = compare(name, args.atol)
        verdict = "PASS" if passed else "FAIL"
        # one figure per output of a dict ("out 1.2e-06, aux 0"), else the logits'
        each = ", ".join(f"{key} {value:.3e}" for key, value in differences.items())
        print(
            f"{name:<25} max |output difference| = {max(differences.values()):.3e} "
            f"(max |output| {scale:.3g})  {verdict}"
            + (f"  [{each}]" if len(differences) > 1 else "")
        )
        if not passed:
            failures.append(name)
    print(f"{len(args.models) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
