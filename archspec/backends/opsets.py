"""The ONNX opsets archspec can export and verify, known without importing torch or onnx."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

#: torch's dynamo exporter implements its ops at opset 18 (TORCHLIB_OPSET); below that it falls
#: back to onnx's C converter, which fails on common graphs (ReduceMean's axes, in ResNet-18) and
#: then silently writes opset 18.
MIN_OPSET = 18
#: The exporter's own opset: no version conversion, and the widest runtime support.
DEFAULT_OPSET = MIN_OPSET
#: onnxscript's converter limit when this was written, for when it no longer says its own.
_CONVERTER_MAX_FALLBACK = 25
#: The IR version torch's exporter writes; only the probe model of `_onnxruntime_max` uses it.
_PROBE_IR_VERSION = 10


def supported_opsets() -> range:
    """The opsets `export_onnx` writes and verifies with the installed packages."""
    return range(MIN_OPSET, max_opset() + 1)


@functools.cache
def max_opset() -> int:
    """The highest opset that every stage can handle: the converter writes it, onnx checks it
    and onnxruntime runs it. Imports onnx, onnxscript and onnxruntime (about a second)."""
    import onnx

    top = min(onnx.defs.onnx_opset_version(), _converter_max())
    return _onnxruntime_max(top)


def opset_problem(opset: object) -> str | None:
    """Why `opset` cannot be exported, naming the opsets that can; None when it can."""
    if isinstance(opset, int) and not isinstance(opset, bool) and opset in supported_opsets():
        return None
    opsets = supported_opsets()
    if not opsets:
        return (
            f"opset {opset!r} is not supported: the installed onnx, onnxscript and onnxruntime "
            f"stop at opset {max_opset()}, below the exporter's {MIN_OPSET}"
        )
    works = f"archspec exports opsets {opsets.start} to {opsets.stop - 1}"
    if isinstance(opset, bool) or not isinstance(opset, int):
        return f"opset {opset!r} is not an integer: {works}"
    return f"opset {opset} is not supported: {works}"


def _converter_max() -> int:
    """Above this, torch hands the model to onnx's C converter, which drops the layer names and
    cannot convert Gelu; found by exporting every op at opsets 1 to 30."""
    try:
        from onnxscript.version_converter import _version_converter
    except ImportError:
        return _CONVERTER_MAX_FALLBACK
    found = getattr(_version_converter, "SUPPORTED_MAX_ONNX_OPSET", _CONVERTER_MAX_FALLBACK)
    return found if isinstance(found, int) else _CONVERTER_MAX_FALLBACK


def _onnxruntime_max(top: int) -> int:
    """The highest opset up to `top` that onnxruntime accepts, probed with a one-node model:
    onnxruntime refuses a model stamped with an opset newer than it knows."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a refused probe is the expected answer, not an error
    for opset in range(top, MIN_OPSET - 1, -1):
        try:
            onnxruntime.InferenceSession(
                _identity_model(opset).SerializeToString(),
                options,
                providers=["CPUExecutionProvider"],
            )
        except Exception:  # onnxruntime raises its own Fail for an unknown opset
            continue
        return opset
    return MIN_OPSET - 1


def _identity_model(opset: int) -> onnx.ModelProto:
    """A model of one Identity node stamped with `opset`."""
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [value("x", TensorProto.FLOAT, [1])],
        [value("y", TensorProto.FLOAT, [1])],
    )
    model: onnx.ModelProto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=_PROBE_IR_VERSION
    )
    return model


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "max_opset", "opset_problem", "supported_opsets"]
