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
    "load",
]


def compile(
    spec: Spec | str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    input_shape: Sequence[int] | None = None,
) -> CompiledNetwork:
    """The spec as a `torch.nn.Module` (a `torch.fx.GraphModule`), optionally with weights.

    Imports torch on first use; loading and analysing never do.
    """
    from archspec.backends.torch import compile_module

    spec = spec if isinstance(spec, Spec) else load(spec)
    return compile_module(spec, analyze(spec, input_shape), weights, strict)
