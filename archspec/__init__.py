"""archspec: write a CNN as a YAML spec; validate, analyse and compile it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.analysis import Report, analyze
from archspec.errors import ArchspecError, Diagnostic, SpecError
from archspec.loader import Spec, load

if TYPE_CHECKING:
    import torch

    from archspec.backends.onnx import ExportReport
    from archspec.backends.torch import CompiledNetwork

__version__ = "0.1.0"

__all__ = [
    "ArchspecError",
    "Diagnostic",
    "Report",
    "Spec",
    "SpecError",
    "__version__",
    "analyze",
    "compile",
    "export_onnx",
    "load",
]


def compile(
    spec: Spec | str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    input_shape: Sequence[int] | None = None,
    max_memory: int | None = None,
) -> CompiledNetwork:
    """The spec as a `torch.nn.Module` (a `torch.fx.GraphModule`), optionally with weights.

    Imports torch on first use; loading and analysing never do. Raises ResourceError, before
    allocating, when the weights would not fit in the memory available (or in `max_memory`
    bytes, a ceiling that replaces the measured one).
    """
    from archspec.backends.torch import compile_module

    spec = spec if isinstance(spec, Spec) else load(spec)
    report = analyze(spec, input_shape)
    return compile_module(spec, report, weights, strict, max_memory=max_memory)


def export_onnx(
    spec: Spec | str | Path,
    path: str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    opset: int | None = None,
    batch: int | None = None,
    verify: bool = True,
    strict: bool = True,
    max_memory: int | None = None,
) -> ExportReport:
    """Write the spec as a verified ONNX model (dynamic batch unless `batch` is given).

    See `archspec.backends.onnx.export_onnx`; nothing is written unless verification passes.
    """
    from archspec.backends.onnx import export_onnx as export

    spec = spec if isinstance(spec, Spec) else load(spec)
    return export(spec, path, weights, strict, opset, batch, verify, max_memory=max_memory)
