"""Wall time of `archspec analyze` on ResNet-50 against torchinfo's summary of the same network."""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(__file__).resolve().parent
RUNS = 7
GOAL_RATIO = 8.0

# The torchinfo way: build the model in torch and run a forward pass through torchinfo's hooks.
# col_names and depth make its table carry what archspec's does: every leaf layer with its output
# shape, parameters and MACs.
TORCHINFO_CODE = f"""
import sys
sys.path.insert(0, {str(BENCHMARKS)!r})
import torch
import torchinfo
from reference_models import resnet50
torchinfo.summary(resnet50(), input_size=(1, 3, 224, 224), depth=4,
                  col_names=("output_size", "num_params", "mult_adds"))
"""


@dataclass
class Arm:
    """One command timed as a whole process."""

    label: str
    command: list[str]
    seconds: list[float] = field(default_factory=list)

    def run(self, capture: bool = False) -> str:
        """Run once; a timed run records its wall time, a warm-up (`capture`) returns stdout."""
        stdout = subprocess.PIPE if capture else subprocess.DEVNULL
        start = time.perf_counter()
        done = subprocess.run(
            self.command, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{self.label} failed with exit code {done.returncode}:\n{done.stderr}")
        if not capture:
            self.seconds.append(elapsed)
        return done.stdout or ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def arms() -> tuple[Arm, Arm, Arm]:
    archspec = Arm(
        "archspec analyze",
        [
            sys.executable,
            "-m",
            "archspec",
            "analyze",
            "archspec/zoo/resnet50.yaml",
            "--format",
            "table",
        ],
    )
    torchinfo = Arm("torchinfo.summary", [sys.executable, "-c", TORCHINFO_CODE])
    torch_import = Arm("python -c 'import torch'", [sys.executable, "-c", "import torch"])
    return archspec, torchinfo, torch_import


def check_same_network(archspec_out: str, torchinfo_out: str) -> str:
    """Both tables must describe the same network: equal parameter totals, MACs within 1%."""
    params_a = _number(r"params: ([\d,]+)", archspec_out)
    params_t = _number(r"Total params: ([\d,]+)", torchinfo_out)
    macs_a = _number(r"MACs: ([\d,]+)", archspec_out)
    macs_t = float(_match(r"Total mult-adds \((?:Units\.)?G\w*\): ([\d.]+)", torchinfo_out)) * 1e9
    if params_a != params_t or abs(macs_a - macs_t) > 0.01 * macs_t:
        sys.exit(
            f"the two tables disagree: params {params_a:,} vs {params_t:,}, "
            f"MACs {macs_a:,} vs {macs_t:,.0f}"
        )
    return f"same network: {params_a:,} params in both, MACs {macs_a / 1e9:.2f} G in both"


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if found is None:
        sys.exit(f"no match for {pattern!r} in:\n{text[-2000:]}")
    return found.group(1)


def _number(pattern: str, text: str) -> int:
    return int(_match(pattern, text).replace(",", ""))


def report(archspec: Arm, torchinfo: Arm, torch_import: Arm) -> None:
    print(f"{'':<26} {'median s':>9} {'min s':>7}   runs")
    for arm in (archspec, torchinfo, torch_import):
        runs = " ".join(f"{seconds:.3f}" for seconds in arm.seconds)
        print(f"{arm.label:<26} {arm.median:>9.3f} {arm.best:>7.3f}   {runs}")
    ratio = torchinfo.median / archspec.median
    print(
        f"\ntorchinfo / archspec: {ratio:.1f}x on medians, "
        f"{torchinfo.best / archspec.best:.1f}x on minimums"
    )
    print(
        f"for information: import torch alone takes {torch_import.median:.3f} s "
        f"({torch_import.median / archspec.median:.1f}x archspec's whole run)"
    )
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"goal: >= {GOAL_RATIO:g}x (ratio of medians): {ratio:.1f}x, {verdict}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs of each command")
    args = parser.parse_args(argv)
    # A regular `pip install` byte-compiles a package, as torch's install did; an editable
    # install under PYTHONDONTWRITEBYTECODE (set on this machine) would recompile archspec's
    # sources in every run instead.
    compileall.compile_dir(ROOT / "archspec", quiet=1)
    archspec, torchinfo, torch_import = arms()
    print(
        f"ResNet-50 at 1x3x224x224, whole processes, interleaved; {args.runs} runs each after "
        f"one warm-up\nPython {sys.version.split()[0]}, torch {version('torch')}, torchinfo "
        f"{version('torchinfo')}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    # Warm-ups fill the page cache and check that both commands print the same network.
    print(check_same_network(archspec.run(capture=True), torchinfo.run(capture=True)) + "\n")
    torch_import.run(capture=True)
    for _ in range(args.runs):
        for arm in (archspec, torchinfo, torch_import):
            arm.run()
    report(archspec, torchinfo, torch_import)
    return 0


if __name__ == "__main__":
    sys.exit(main())
