"""ONNX export time and onnxruntime latency of ResNet-18: archspec against a direct torch export."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from torch import nn

import archspec
from archspec.backends.onnx import _quiet, export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_models import resnet18

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "archspec" / "zoo" / "resnet18.yaml"
OPSET = 18
GOAL_RATIO = 1.02
TOLERANCE = 1e-4  # the two files hold the same weights, so they must compute the same logits


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def reference_model() -> nn.Module:
    """The hand-written ResNet-18, holding the compiled spec's weights under the same keys."""
    compiled = archspec.compile(SPEC)
    reference = resnet18()
    if list(compiled.state_dict()) != list(reference.state_dict()):
        sys.exit("the hand-written ResNet-18 and the spec do not have the same state_dict keys")
    reference.load_state_dict(compiled.state_dict())
    return reference.eval()


def export_reference(reference: nn.Module, path: Path) -> None:
    """What a user writes without archspec: the same exporter, opset, names and dynamic batch."""
    with _quiet():  # the chatter archspec silences, silenced here too
        torch.onnx.export(
            reference,
            (torch.randn(2, 3, 224, 224),),
            path,
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["fc"],
            dynamic_shapes=({0: torch.export.Dim("N")},),
        )


def export_times(reference: nn.Module, ours: Path, theirs: Path, runs: int) -> None:
    """Alternate the two exports run by run, after one warm-up each."""
    weights = reference.state_dict()  # both files hold the same weights, for the latency runs

    def archspec_export() -> None:
        export_onnx(archspec.load(SPEC), ours, weights=weights, verify=False)

    archspec_export()
    export_reference(reference, theirs)
    a, b = [], []
    for _ in range(runs):
        a.append(seconds(archspec_export))
        b.append(seconds(lambda: export_reference(reference, theirs)))
    print(
        f"export: archspec {statistics.median(a):.2f} s (load + analyze + build + export, "
        f"verify=False), torch.onnx.export {statistics.median(b):.2f} s (medians of {runs}); "
        f"ratio {statistics.median(a) / statistics.median(b):.2f}"
    )
    verified = export_onnx(archspec.load(SPEC), ours, weights=weights)
    print(
        f"export with verify=True (checker, shapes, onnxruntime at batch "
        f"{' and '.join(map(str, verified.batches))}): {verified.seconds:.2f} s, once, for "
        f"information; {verified.checked_shapes} layer shapes checked, worst difference "
        f"{verified.worst_difference:.2g}"
    )


def latency(ours: Path, theirs: Path, rounds: int, threads: int = 0) -> None:
    """Batch 1 in onnxruntime, one session per file with the same options; the two files take
    turns, and which of them goes first alternates from pair to pair. `threads` sets both
    sessions' intra-op threads (0: onnxruntime's default, one per physical core). Their threads
    do not spin once a run ends: a spinning pool keeps the cores from the session that runs
    next (on two cores, the file run second took 1.4 to 1.6 times as long as the first)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = [
        onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for path in (ours, theirs)
    ]
    feed = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)}
    outputs = [session.run(None, feed)[0] for session in sessions]
    difference = float(np.max(np.abs(outputs[0] - outputs[1])))
    if difference > TOLERANCE:
        sys.exit(f"the two files differ by {difference:.3g} > {TOLERANCE} at batch 1")
    for session in sessions:  # warm-up: thread pool, allocator arena
        for _ in range(5):
            session.run(None, feed)
    runs = [partial(session.run, None, feed) for session in sessions]
    times: list[list[float]] = [[], []]
    for round_ in range(rounds):
        for which in (0, 1) if round_ % 2 == 0 else (1, 0):  # neither always runs first
            times[which].append(seconds(runs[which]))
    a, b = times
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(
        f"onnxruntime, batch 1 ({options.graph_optimization_level.name}, "
        f"{threads or 'default'} threads, outputs differ by "
        f"{difference:.2g}): archspec {statistics.median(a) * 1e3:.2f} ms, torch.onnx.export "
        f"{statistics.median(b) * 1e3:.2f} ms (medians of {rounds}); median of per-pair ratios "
        f"{ratio:.3f}, goal <= {GOAL_RATIO}: {verdict}"
    )


def graphs(ours: Path, theirs: Path) -> None:
    """Files on disk, node counts, and how many nodes of each op type each graph holds."""
    print(f"files: archspec {on_disk(ours)}, torch.onnx.export {on_disk(theirs)}")
    counts = [
        Counter(node.op_type for node in onnx.load(path).graph.node) for path in (ours, theirs)
    ]
    a, b = (sum(count.values()) for count in counts)
    verdict = "met" if a <= b else "NOT met"
    print(f"nodes: archspec {a}, torch.onnx.export {b}; goal archspec <= torch: {verdict}")
    print(f"  {'op type':<16}{'archspec':>9}{'torch':>9}")
    for op in sorted(counts[0].keys() | counts[1].keys(), key=lambda op: (-counts[1][op], op)):
        print(f"  {op:<16}{counts[0][op]:>9}{counts[1][op]:>9}")


def on_disk(path: Path) -> str:
    """The model file and any external-data file written beside it, with their total size."""
    files = sorted(path.parent.glob(f"{path.name}*"))
    size = sum(file.stat().st_size for file in files) / 1e6
    return f"{' + '.join(file.name for file in files)} ({size:.1f} MB)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed exports of each kind")
    parser.add_argument("--rounds", type=int, default=50, help="timed onnxruntime runs per file")
    args = parser.parse_args(argv)
    print(
        f"ResNet-18, CPU, opset {OPSET}; torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    torch.manual_seed(0)
    reference = reference_model()
    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = Path(directory) / "a.onnx", Path(directory) / "b.onnx"
        export_times(reference, ours, theirs, args.runs)
        latency(ours, theirs, args.rounds)
        graphs(ours, theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
