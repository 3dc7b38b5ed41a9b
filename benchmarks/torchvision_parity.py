"""torchvision's weights load into the compiled zoo, and both networks compute the same logits.

Pretrained weights cannot be downloaded here, so each torchvision model is built with
`weights=None` (and the keyword arguments of `torchvision_state_dicts.KWARGS`: no auxiliary
heads, no input transform) and a seeded random initialisation, batch norm statistics included.
Its whole state_dict (buffers too) is loaded with `strict=True` into the network archspec
compiles from `examples/<name>.yaml`, and both run in eval mode on the same seeded batch at the
spec's input shape (3x299x299 for inception_v3, 3x224x224 for the others).
Run it in an environment that has torchvision:

    /tmp/tvenv/bin/python benchmarks/torchvision_parity.py [--atol 1e-5] [names...]

It prints the largest absolute difference of the logits per model, beside the largest absolute
logit for scale, and exits 1 if any exceeds
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
from torchvision_state_dicts import KWARGS, MODELS

import archspec
from archspec.backends.torch import compile_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ATOL = 1e-5
BATCH = 2
SEED = 0


@torch.no_grad()
def randomize_norms(model: nn.Module) -> None:
    """Give every batch norm random statistics and affine terms, seeded by the global seed.

    Fresh ones are the identity in eval mode (mean 0, variance 1, weight 1, bias 0), so two norms
    loaded into each other's places would go unnoticed.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.1)


@torch.no_grad()
def compare(name: str, atol: float) -> tuple[float, float, bool]:
    """(largest |logit difference|, largest |logit|, passed) for one model:
    (N, C, H, W) at the spec's input -> (N, 1000) each."""
    torch.manual_seed(SEED)
    reference = models.get_model(name, weights=None, **KWARGS.get(name, {})).eval()
    randomize_norms(reference)
    spec = archspec.load(EXAMPLES / f"{name}.yaml")
    network = compile_module(spec)
    try:
        network.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as error:  # torch's message lists the missing, unexpected and bad keys
        print(f"{name}: torchvision's state_dict does not load: {error}")
        return float("inf"), float("nan"), False
    network.eval()
    batch = torch.randn(BATCH, *spec.network.input, generator=torch.Generator().manual_seed(SEED))
    expected, actual = reference(batch), network(batch)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    difference = (actual - expected).abs().max().item()
    close = torch.allclose(actual, expected, rtol=0, atol=atol)
    scale = expected.abs().max().item()
    return difference, scale, difference <= atol and close


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atol", type=float, default=ATOL, help="largest accepted difference")
    parser.add_argument("models", nargs="*", default=MODELS, help="torchvision model names")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"batch {BATCH} at each spec's input, seed {SEED}, atol {args.atol:g}"
    )
    failures = []
    for name in args.models:
        difference, scale, passed = compare(name, args.atol)
        verdict = "PASS" if passed else "FAIL"
        print(
            f"{name:<16} max |logits difference| = {difference:.3e} "
            f"(max |logit| {scale:.3g})  {verdict}"
        )
        if not passed:
            failures.append(name)
    print(f"{len(args.models) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
