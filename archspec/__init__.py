"""archspec: write a CNN as a YAML spec; validate, analyse and compile it."""

from archspec.analysis import Report, analyze
from archspec.errors import ArchspecError, Diagnostic, SpecError
from archspec.loader import Spec, load

__version__ = "0.1.0"

__all__ = [
    "ArchspecError",
    "Diagnostic",
    "Report",
    "Spec",
    "SpecError",
    "__version__",
    "analyze",
    "load",
]
