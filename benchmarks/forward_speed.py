"""Forward time of the compiled ResNet-50 against a hand-written one, and the time to build it."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

import archspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import resnet50

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "resnet50.yaml"
GOAL_RATIO = 1.02
GOAL_BUILD_SECONDS = 0.5


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def forward_ratio(compiled: nn.Module, reference: nn.Module, batch: int, rounds: int) -> None:
    """Alternate the two models round by round, so drifts in machine load hit both alike."""
    image = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        for model in (compiled, reference):  # warm-up: allocator, oneDNN primitives
            for _ in range(3):
                model(image)
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(seconds(lambda: compiled(image)))
            theirs.append(seconds(lambda: reference(image)))
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(
        f"batch {batch}: archspec {statistics.median(ours) * 1e3:7.1f} ms, hand-written "
        f"{statistics.median(theirs) * 1e3:7.1f} ms (medians of {rounds}); median of per-round "
        f"ratios {ratio:.3f}, goal <= {GOAL_RATIO}: {verdict}"
    )


def build_times(repeats: int) -> None:
    spec = archspec.load(SPEC)
    archspec.compile(spec)  # first call pays for imports
    whole = min(seconds(lambda: archspec.compile(SPEC)) for _ in range(repeats))
    from_spec = min(seconds(lambda: archspec.compile(spec)) for _ in range(repeats))
    by_hand = min(seconds(resnet50) for _ in range(repeats))
    verdict = "met" if whole < GOAL_BUILD_SECONDS else "NOT met"
    print(
        f"build: archspec.compile(path) {whole:.3f} s (load + analyze + build), from a loaded "
        f"spec {from_spec:.3f} s, hand-written constructor {by_hand:.3f} s (best of {repeats}); "
        f"goal < {GOAL_BUILD_SECONDS} s: {verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="timed forwards of each model")
    args = parser.parse_args(argv)
    print(
        f"ResNet-50, CPU, eval mode, {torch.get_num_threads()} threads; torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    torch.manual_seed(0)
    compiled = archspec.compile(SPEC).eval()
    reference = resnet50().eval()
    reference.load_state_dict(compiled.state_dict())  # same weights: same arithmetic
    for batch in (1, 8):
        forward_ratio(compiled, reference, batch, args.rounds)
    build_times(repeats=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
