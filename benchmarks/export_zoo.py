"""Export every example to ONNX with verification (checker, shapes, onnxruntime at batch 1 and
3), timing each. `make test` verifies a representative set (tests/test_onnx.py, EXPORTED) that
reaches every op; this covers the whole zoo at each spec's own input shape.

    .venv/bin/python benchmarks/export_zoo.py [NAME ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import archspec
from archspec.backends.onnx import export_onnx

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:])
    paths = [EXAMPLES / f"{name}.yaml" for name in names] or sorted(EXAMPLES.glob("*.yaml"))
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            start = time.perf_counter()
            try:
                report = export_onnx(archspec.load(path), Path(folder) / f"{path.stem}.onnx")
            except archspec.ArchspecError as error:
                failed += 1
                print(f"{path.stem:<28} FAILED: {error}")
                continue
            seconds = time.perf_counter() - start
            print(
                f"{path.stem:<28} {seconds:6.1f} s  {report.nodes:5} nodes  "
                f"worst difference {report.worst_difference:.1e}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
