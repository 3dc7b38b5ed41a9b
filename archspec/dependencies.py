"""The optional dependencies: which feature needs which packages, checked before any work so
that a missing one is one clear line, never an ImportError halfway through a command."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from archspec.errors import UsageError


@dataclass(frozen=True)
class Extra:
    """A feature's packages, and the extra of archspec-nn that installs them."""

    feature: str
    modules: tuple[str, ...]
    extra: str


TORCH = Extra("compiling a network", ("torch",), "torch")
ONNX = Extra("exporting ONNX", ("torch", "onnx", "onnxruntime", "onnxscript"), "onnx")
PLOT = Extra("--plot", ("matplotlib",), "plot")


def missing(extra: Extra) -> tuple[str, ...]:
    return tuple(name for name in extra.modules if not _installed(name))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, a broken install
        return False


def require(extra: Extra) -> None:
    """UsageError naming what is missing and the command that installs it."""
    absent = missing(extra)
    if absent:
        raise UsageError(
            f"{extra.feature} needs {', '.join(absent)}, which is not installed: "
            f"pip install 'archspec-nn[{extra.extra}]'"
        )
