"""onnxruntime latency of zoo models exported by archspec against a direct torch export.

For each model, `archspec.backends.onnx.export_onnx` writes the spec (verify=False), and
`torch.onnx.export` the hand-written module of `reference_transformers.py`,
`reference_convnext.py` or `reference_models.py` holding the same weights, with what archspec
passes it: the dynamo exporter, archspec's default opset, the same input and output names and a
dynamic batch. Both files then run in onnxruntime at batch 1 (`export_speed.latency`: one
`SessionOptions`, warm-ups, then pairs taking turns), and the node counts follow
(`export_speed.graphs`). Export time is `export_speed.py`'s subject, not this script's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import onnxruntime
import torch
from torch import nn

import archspec
from archspec.backends.onnx import _quiet, export_onnx
from archspec.backends.opsets import DEFAULT_OPSET

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_speed import graphs, latency
from reference_convnext import convnext_tiny
from reference_models import efficientnet_b0, mobilenet_v3_large, resnet18, resnet50
from reference_transformers import swin_t, vit_b_16

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"
#: Spec name -> the hand-written constructor of the same network.
REFERENCES: dict[str, Callable[[], nn.Module]] = {
    "vit_b_16": vit_b_16,
    "swin_t": swin_t,
    "convnext_tiny": convnext_tiny,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "efficientnet_b0": efficientnet_b0,
    "mobilenet_v3_large": mobilenet_v3_large,
}


def reference_model(name: str) -> nn.Module:
    """The hand-written network, holding the compiled spec's weights under the same keys."""
    compiled = archspec.compile(EXAMPLES / f"{name}.yaml")
    reference = REFERENCES[name]()
    if sorted(compiled.state_dict()) != sorted(reference.state_dict()):
        sys.exit(f"the hand-written {name} and the spec do not have the same state_dict keys")
    reference.load_state_dict(compiled.state_dict())
    return reference.eval()


def export_both(name: str, reference: nn.Module, ours: Path, theirs: Path) -> None:
    """archspec's export of the spec, then torch's of the hand-written module, same weights."""
    export_onnx(
        archspec.load(EXAMPLES / f"{name}.yaml"), ours, weights=reference.state_dict(), verify=False
    )
    (output,) = (value.name for value in onnx.load(ours, load_external_data=False).graph.output)
    with _quiet():  # the chatter archspec silences, silenced here too
        torch.onnx.export(
            reference,
            (torch.randn(2, 3, 224, 224),),  # batch 2, as archspec: a size of 1 is specialised
            theirs,
            dynamo=True,
            opset_version=DEFAULT_OPSET,
            input_names=["input"],
            output_names=[output],
            dynamic_shapes=({0: torch.export.Dim("N")},),
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        choices=REFERENCES,
        default=["vit_b_16", "swin_t", "convnext_tiny"],
        help="specs to export and time",
    )
    parser.add_argument("--rounds", type=int, default=50, help="timed onnxruntime runs per file")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="onnxruntime's intra-op threads, the same for both sessions (default: its own "
        "choice, one per physical core)",
    )
    parser.add_argument("--no-graphs", action="store_true", help="skip the op-type table")
    args = parser.parse_args(argv)
    for name in args.models:
        print(
            f"{name}, CPU, opset {DEFAULT_OPSET}; torch {torch.__version__}, onnx "
            f"{onnx.__version__}, onnxruntime {onnxruntime.__version__}, load average "
            f"{os.getloadavg()[0]:.2f}"
        )
        torch.manual_seed(0)
        reference = reference_model(name)
        with tempfile.TemporaryDirectory() as directory:
            ours, theirs = Path(directory) / "a.onnx", Path(directory) / "b.onnx"
            export_both(name, reference, ours, theirs)
            latency(ours, theirs, args.rounds, args.threads)
            if not args.no_graphs:
                graphs(ours, theirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
