"""How `archspec.load` and `archspec.analyze` scale with the number of layers written in a spec."""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

import archspec

SIZES = (1_000, 2_000, 5_000, 10_000)
REPEATS = 3
GOAL_LAYERS = 10_000
GOAL_SECONDS = 1.0
GOAL_YAML_RATIO = 1.3
#: Channels of four equal stages; each later stage opens with a stride-2 unit and a projection.
STAGE_CHANNELS = (64, 128, 256, 512)
HEAD_LAYERS = 3


class _SpecWriter:
    """Writes explicit layers, one flow mapping per line as in the zoo, counting them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.last = "input"

    def layer(self, name: str, body: str) -> None:
        self.lines.append(f"  - {{name: {name}, {body}}}")
        self.count += 1
        self.last = name

    def conv_bn_relu(self, prefix: str, channels: str, kernel: int, stride: int = 1) -> None:
        padding = kernel // 2
        self.layer(
            f"{prefix}_conv",
            f"op: conv2d, out_channels: {channels}, kernel: {kernel}, "
            f"stride: {stride}, padding: {padding}, bias: false",
        )
        self.layer(f"{prefix}_bn", "op: batchnorm2d")
        self.layer(f"{prefix}_relu", "op: relu")

    def residual(self, prefix: str, previous: str, channels: int, stride: int) -> None:
        """Basic block: two 3x3 convs; a 1x1 projection reads `previous` when the shape changes."""
        self.conv_bn_relu(f"{prefix}_a", str(channels), 3, stride)
        self.layer(
            f"{prefix}_b_conv",
            "op: conv2d, out_channels: in_channels, kernel: 3, padding: 1, bias: false",
        )
        self.layer(f"{prefix}_b_bn", "op: batchnorm2d")
        shortcut = previous
        if stride != 1:
            self.layer(
                f"{prefix}_down",
                f"op: conv2d, inputs: {previous}, out_channels: "
                f"{channels}, kernel: 1, stride: {stride}, bias: false",
            )
            self.layer(f"{prefix}_down_bn", "op: batchnorm2d")
            shortcut = f"{prefix}_down_bn"
        self.layer(f"{prefix}_add", f"op: add, inputs: [{prefix}_b_bn, {shortcut}]")
        self.layer(f"{prefix}_out", "op: relu")


def make_spec(layers: int) -> str:
    """YAML text of a residual CNN with exactly `layers` explicit layers (no `repeat`)."""
    writer = _SpecWriter()
    writer.conv_bn_relu("stem", "width", 3)
    body = layers - HEAD_LAYERS
    unit = 0
    for stage, channels in enumerate(STAGE_CHANNELS):
        end = body * (stage + 1) // len(STAGE_CHANNELS)
        stride = 1 if stage == 0 else 2
        while writer.count + 9 <= end:  # a unit writes at most 9 layers
            if unit % 4 == 3:  # every fourth unit a plain conv-bn-relu, as in VGG-style stems
                writer.conv_bn_relu(f"u{unit}", "in_channels", 3)
            else:
                writer.residual(f"u{unit}", writer.last, channels, stride)
                stride = 1
            unit += 1
    while writer.count < body:
        writer.layer(f"pad{writer.count}", "op: relu")
    writer.layer("avgpool", "op: adaptive_avg_pool2d, output_size: 1")
    writer.layer("flatten", "op: flatten")
    writer.layer("fc", "op: linear, out_features: num_classes")
    header = [
        f"name: scaling_{layers}",
        "input: [3, 128, 128]",
        "params: {num_classes: 1000, width: 64}",
        "layers:",
    ]
    return "\n".join([*header, *writer.lines]) + "\n"


def describe_mix(text: str) -> str:
    """How many layers of each op, and how many read named inputs or in_channels."""
    ops: dict[str, int] = {}
    for op in re.findall(r"op: (\w+)", text):
        ops[op] = ops.get(op, 0) + 1
    counts = ", ".join(f"{op} {count:,}" for op, count in sorted(ops.items(), key=lambda i: -i[1]))
    return (
        f"{counts}; {text.count('inputs:'):,} with inputs:, "
        f"{text.count('out_channels: in_channels'):,} with out_channels: in_channels"
    )


@dataclass(frozen=True)
class Timing:
    layers: int
    load: float
    analyze: float
    total: float
    gc: float  # time the cyclic garbage collector ran inside the best load + analyze
    cpu: float  # process CPU time of the best load + analyze: less sensitive to a busy machine
    yaml_c: float  # PyYAML's C loader (CSafeLoader) on the same text: the floor of any loader


class _GcClock:
    """Adds up the wall time of cyclic garbage collections, via gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start


def measure(layers: int, repeats: int = REPEATS) -> Timing:
    """Best of `repeats` for load, analyze and one load + analyze (the same repetition)."""
    text = make_spec(layers)
    clock = _GcClock()
    runs: list[tuple[float, float, float, float]] = []
    gc.callbacks.append(clock)
    try:
        for _ in range(repeats):
            gc.collect()  # the previous repetition's objects are gone before the clock starts
            clock.seconds = 0.0
            cpu_start = time.process_time()
            start = time.perf_counter()
            spec = archspec.load(text)
            loaded = time.perf_counter()
            report = archspec.analyze(spec)
            done = time.perf_counter()
            cpu = time.process_time() - cpu_start
            assert len(report.layers) == layers, (len(report.layers), layers)
            runs.append((loaded - start, done - loaded, clock.seconds, cpu))
            del spec, report
    finally:
        gc.callbacks.remove(clock)
    yaml_c = []
    for _ in range(repeats):
        start = time.perf_counter()
        yaml.load(text, Loader=yaml.CSafeLoader)
        yaml_c.append(time.perf_counter() - start)
    best = min(runs, key=lambda run: run[0] + run[1])
    return Timing(
        layers=layers,
        load=min(run[0] for run in runs),
        analyze=min(run[1] for run in runs),
        total=best[0] + best[1],
        gc=best[2],
        cpu=best[3],
        yaml_c=min(yaml_c),
    )


def print_table(timings: Sequence[Timing]) -> None:
    print(
        "wall seconds (best of the repetitions), the gc and CPU time of the best load + analyze;"
        "\nyaml C: yaml.load(text, Loader=yaml.CSafeLoader), plain data without positions"
    )
    print(
        f"{'layers':>7}  {'load':>6}  {'analyze':>7}  {'total':>6}  {'gc':>6}  {'cpu':>6}  "
        f"{'yaml C':>6}  {'load/yaml C':>11}  {'load µs/l':>9}  {'analyze µs/l':>12}"
    )
    for t in timings:
        per = [seconds / t.layers * 1e6 for seconds in (t.load, t.analyze)]
        print(
            f"{t.layers:>7,}  {t.load:>6.3f}  {t.analyze:>7.3f}  {t.total:>6.3f}  {t.gc:>6.3f}  "
            f"{t.cpu:>6.3f}  {t.yaml_c:>6.3f}  {t.load / t.yaml_c:>11.2f}  {per[0]:>9.1f}  "
            f"{per[1]:>12.1f}"
        )


def print_verdict(timings: Sequence[Timing]) -> None:
    by_size = {t.layers: t for t in timings}
    small, large = by_size.get(1_000), by_size.get(10_000)
    if small and large:
        print("\ntime(10k) / time(1k), linear growth is about 10:")
        for stage in ("load", "analyze", "total", "gc", "cpu"):
            before, after = getattr(small, stage), getattr(large, stage)
            ratio = f"{after / before:5.1f}" if before else "  n/a"
            print(f"  {stage:<8} {ratio}   ({before:.3f} s -> {after:.3f} s)")
    goal = by_size.get(GOAL_LAYERS)
    if goal:
        ratio = goal.load / goal.yaml_c
        met = "met" if ratio <= GOAL_YAML_RATIO else "NOT met"
        print(
            f"\ngoal: archspec.load of {GOAL_LAYERS:,} layers (parse with positions, validate, "
            f"expand) within {GOAL_YAML_RATIO:g}x PyYAML's C loader on the same text: "
            f"{ratio:.2f}x, {met}"
        )
        met = "met" if goal.total < GOAL_SECONDS else "NOT met"
        print(
            f"goal: {GOAL_LAYERS:,} layers under {GOAL_SECONDS:g} s in total (load + analyze): "
            f"{goal.total:.3f} s, {met}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="LAYERS")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--dump", type=int, metavar="LAYERS", help="print the spec of this size")
    args = parser.parse_args(argv)
    if args.dump:
        print(make_spec(args.dump), end="")
        return 0
    print(
        f"archspec.load(text) and archspec.analyze(spec), best of {args.repeats}; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"spec mix at {max(args.sizes):,} layers: {describe_mix(make_spec(max(args.sizes)))}\n")
    timings = [measure(size, args.repeats) for size in args.sizes]
    print_table(timings)
    print_verdict(timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
