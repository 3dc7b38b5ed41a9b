"""Forward time of compiled zoo models against hand-written ones, and the time to build them.

ResNet-50 by default; `--models resnet50 efficientnet_b0 mobilenet_v3_large` adds the mobile
networks, whose squeeze-excitation gates, depthwise convolutions and in-place residual adds stress
other parts of the generated forward, and `vit_b_16 swin_t convnext_tiny` the transformers and
ConvNeXt: tokens, attention, learned tensors (class token, position embedding, layer scale) and
channels-last maps. Each hand-written model (`reference_models.py`, `reference_transformers.py`,
`reference_convnext.py`) loads the compiled one's state_dict with strict=True and must give equal
logits before it is timed.

On glibc, much of a CPU forward at batch 8 is page faults: the C allocator returns freed
activations to the system and faults them in again. The compiled forward frees each value at its
last use, the hand-written one when its block returns, so the two fault differently; the line
per batch prints both counts. `GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967296:\
glibc.malloc.mmap_threshold=4294967296` keeps the pages, and both models run faster.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

import archspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_convnext import convnext_tiny
from reference_models import efficientnet_b0, mobilenet_v3_large, resnet50
from reference_transformers import swin_t, vit_b_16

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "archspec" / "zoo"
#: Spec name -> the hand-written constructor of the same network.
REFERENCES: dict[str, Callable[[], nn.Module]] = {
    "resnet50": resnet50,
    "efficientnet_b0": efficientnet_b0,
    "mobilenet_v3_large": mobilenet_v3_large,
    "vit_b_16": vit_b_16,
    "swin_t": swin_t,
    "convnext_tiny": convnext_tiny,
}
GOAL_RATIO = 1.02
GOAL_BUILD_SECONDS = 0.5


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def page_faults(call: Callable[[], object]) -> int:
    """Minor page faults during `call`: pages the C allocator gave back and took again."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    call()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def forward_ratio(compiled: nn.Module, reference: nn.Module, batch: int, rounds: int) -> None:
    """Alternate the two models round by round, so drifts in machine load hit both alike, and
    which one goes first too: the second finds the allocator's pages the first left behind."""
    image = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        for model in (compiled, reference):  # warm-up: allocator, oneDNN primitives
            for _ in range(3):
                model(image)
        ours, theirs = [], []
        for round_ in range(rounds):
            if round_ % 2:
                theirs.append(seconds(lambda: reference(image)))
                ours.append(seconds(lambda: compiled(image)))
            else:
                ours.append(seconds(lambda: compiled(image)))
                theirs.append(seconds(lambda: reference(image)))
        faults = [page_faults(lambda: compiled(image)), page_faults(lambda: reference(image))]
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(
        f"batch {batch}: archspec {statistics.median(ours) * 1e3:7.1f} ms, hand-written "
        f"{statistics.median(theirs) * 1e3:7.1f} ms (medians of {rounds}); median of per-round "
        f"ratios {ratio:.3f}, goal <= {GOAL_RATIO}: {verdict}; page faults per forward "
        f"{faults[0]:,} and {faults[1]:,}"
    )


def build_times(name: str, repeats: int) -> None:
    path = EXAMPLES / f"{name}.yaml"
    spec = archspec.load(path)
    archspec.compile(spec)  # first call pays for imports
    whole = min(seconds(lambda: archspec.compile(path)) for _ in range(repeats))
    from_spec = min(seconds(lambda: archspec.compile(spec)) for _ in range(repeats))
    by_hand = min(seconds(REFERENCES[name]) for _ in range(repeats))
    verdict = "met" if whole < GOAL_BUILD_SECONDS else "NOT met"
    print(
        f"build: archspec.compile(path) {whole:.3f} s (load + analyze + build), from a loaded "
        f"spec {from_spec:.3f} s, hand-written constructor {by_hand:.3f} s (best of {repeats}); "
        f"goal < {GOAL_BUILD_SECONDS} s: {verdict}"
    )


@torch.inference_mode()
def same_logits(compiled: nn.Module, reference: nn.Module) -> float:
    """The largest |difference| of the two models' logits on one random batch of two."""
    image = torch.randn(2, 3, 224, 224)
    return (compiled(image) - reference(image)).abs().max().item()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed forwards of each model")
    parser.add_argument(
        "--models", nargs="+", choices=REFERENCES, default=["resnet50"], help="specs to time"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch's intra-op threads (default: its own choice); 1 is "
        "steadier on a shared machine, where two busy threads wait on each other",
    )
    parser.add_argument(
        "--shared-weights",
        action="store_true",
        help="the hand-written model takes the compiled one's tensors themselves "
        "(load_state_dict(assign=True)), so both read the same memory and the ratio compares "
        "the forward code alone; with copies, where each model's weights lie moves a ratio "
        "by more than the goal (ViT-B/16 at batch 1: the model built first is the slower)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.models:
        print(
            f"{name}, CPU, eval mode, {torch.get_num_threads()} threads"
            f"{', shared weights' if args.shared_weights else ''}; torch "
            f"{torch.__version__}, load average {os.getloadavg()[0]:.2f}"
        )
        torch.manual_seed(0)
        compiled = archspec.compile(EXAMPLES / f"{name}.yaml").eval()
        reference = REFERENCES[name]().eval()
        # same weights: same arithmetic
        reference.load_state_dict(compiled.state_dict(), assign=args.shared_weights)
        difference = same_logits(compiled, reference)
        if difference > 1e-5:
            print(f"{name}: the two models disagree (max |logit difference| {difference:.2e})")
            return 1
        for batch in (1, 8):
            forward_ratio(compiled, reference, batch, args.rounds)
        build_times(name, repeats=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
