"""archspec: write a neural network as a YAML spec; validate, analyse, compile and export it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archspec import ops
from archspec.analysis import Report
from archspec.analysis import analyze as _analyze
from archspec.dependencies import ONNX, TORCH, require
from archspec.errors import ArchspecError, Diagnostic, SpecError
from archspec.frontend.loader import Spec, load
from archspec.ir import Layer, Network, unwrap

if TYPE_CHECKING:
    import torch

    from archspec.backends.onnx import ExportReport
    from archspec.backends.torch import CompiledNetwork
    from archspec.outputs.diagram import Diagram

__version__ = "0.2.0"
#: The name on PyPI: `archspec` there is an unrelated project (CPU microarchitectures).
__distribution__ = "archspec-nn"

__all__ = [
    "ArchspecError",
    "Diagnostic",
    "Layer",
    "Network",
    "Report",
    "Spec",
    "SpecError",
    "__distribution__",
    "__version__",
    "analyze",
    "compile",
    "draw",
    "export_onnx",
    "load",
    "ops",
]


def analyze(
    subject: Network | Spec | str | Path,
    input_shape: Sequence[int] | None = None,
) -> Report:
    """Static analysis of a network (a `Network`, a loaded spec, or a spec's path or text) at
    `input_shape` (C, H, W) or (F,), default its input: every layer's shape, parameters, MACs,
    FLOPs and receptive field, and the totals. Never imports torch.

    Raises SpecError naming every layer whose shapes do not fit, positioned in the spec's file.
    """
    return _analyze(_loaded(subject), input_shape)


def _loaded(subject: Network | Spec | str | Path) -> Network | Spec:
    # a path or text is the YAML frontend's to read; every later stage takes what it makes
    return load(subject) if isinstance(subject, str | Path) else subject


def compile(
    subject: Network | Spec | str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    input_shape: Sequence[int] | None = None,
    max_memory: int | None = None,
) -> CompiledNetwork:
    """A network (a `Network`, a loaded spec, or a spec's path or text) as a `torch.nn.Module`
    (a `torch.fx.GraphModule`), optionally with weights.

    Imports torch on first use; loading and analysing never do. Raises ResourceError, before
    allocating, when the weights would not fit in the memory available (or in `max_memory`
    bytes, a ceiling that replaces the measured one).
    """
    require(TORCH)
    from archspec.backends.torch import compile_module

    network, origins = unwrap(_loaded(subject))
    report = _analyze(network, input_shape, origins)
    return compile_module(network, report, weights, strict, max_memory=max_memory)


def export_onnx(
    subject: Network | Spec | str | Path,
    path: str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    opset: int | None = None,
    batch: int | None = None,
    verify: bool = True,
    strict: bool = True,
    max_memory: int | None = None,
) -> ExportReport:
    """Write a network (a `Network`, a loaded spec, or a spec's path or text) as a verified ONNX
    model (dynamic batch unless `batch` is given).

    See `archspec.backends.onnx.export_onnx`; nothing is written unless verification passes.
    """
    require(ONNX)
    from archspec.backends.onnx import export_onnx as export

    return export(
        _loaded(subject), path, weights, strict, opset, batch, verify, max_memory=max_memory
    )


def draw(
    subject: Network | Spec | str | Path,
    depth: int | None = None,
    input_shape: Sequence[int] | None = None,
) -> Diagram:
    """The picture of a network (a `Network`, a loaded spec, or a spec's path or text): one box
    per layer, or with `depth` one per group of layers below it (ResNet-50 at depth 1: stem,
    layer1..layer4, head). `.mermaid()` and `.dot()` give its text, `.render("svg")` an image
    from Graphviz, `.save(path)` writes the format the suffix names.
    """
    from archspec.outputs.diagram import build_diagram

    network, origins = unwrap(_loaded(subject))
    return build_diagram(_analyze(network, input_shape, origins), depth)
