"""What compiling and exporting will cost, checked from the analysis before torch is imported.

Every figure here is an estimate made before anything is allocated, so that a network that
would not fit is refused in a fraction of a second, with what it needs and what there is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from archspec.analysis import Report
from archspec.analysis.memory import peak_activation_bytes, weight_bytes
from archspec.errors import ArchspecError
from archspec.ops.base import numel
from archspec.resources import ResourceError, check_memory

GIB = 2**30
#: Parameters and activations are float32.
BYTES_PER_ELEMENT = 4
#: Layers a compiled module may have: building one takes about 0.4 ms and 27 KB per layer (a
#: module object, fx nodes and generated code), measured on chains of 50,000.
MAX_COMPILED_LAYERS = 50_000
MODULE_BYTES_PER_LAYER = 27_000
#: Layers an export may have, and what each costs in the exporter's graphs (measured: 1,000
#: layers took 11 s and 130 MB beyond torch and onnx themselves).
MAX_EXPORTED_LAYERS = 5_000
EXPORT_BYTES_PER_LAYER = 150_000
#: protobuf serializes no message of 2 GiB or more, and an ONNX file is one message.
ONNX_LIMIT = 2 * GIB
#: Kept for the graph itself (nodes, names, shapes): a few MB for the largest examples.
GRAPH_ROOM = 64 * 2**20
#: The batch verified beside batch 1, to prove the batch axis is really dynamic.
SECOND_BATCH = 3
#: Address space that importing torch maps (about 600 MB), and with it onnx, onnxruntime and
#: the exporter (130 MB more), measured on Linux: the checks run before those imports.
TORCH_BYTES = 640 * 2**20
EXPORTER_BYTES = 800 * 2**20


class ExportError(ArchspecError):
    """The network could not be exported, or the exported file does not compute the same thing."""


def check_compile(
    report: Report,
    weights: object = None,
    *,
    allocate: bool = True,
    max_memory: int | None = None,
) -> None:
    """ResourceError when building `report`'s network would take too long or too much memory:
    its modules, and with `allocate` its weights and a weights file read beside them."""
    if len(report.layers) > MAX_COMPILED_LAYERS:
        raise ResourceError(
            f"{report.name} has {len(report.layers):,} layers; archspec builds torch modules of "
            f"at most {MAX_COMPILED_LAYERS:,} (about 20 s and 1.3 GiB at that size), and "
            "analyses up to 200,000"
        )
    need = MODULE_BYTES_PER_LAYER * len(report.layers) + _not_yet_imported("torch", TORCH_BYTES)
    if allocate:
        need += weight_bytes(report) + file_size(weights)
    check_memory(need, f"building {report.name} ({report.totals.params:,} parameters)", max_memory)


def check_export(
    report: Report,
    batch: int | None,
    verify: bool,
    weights: object = None,
    max_memory: int | None = None,
) -> None:
    """ExportError or ResourceError when exporting `report`'s network cannot succeed: too many
    layers, weights past ONNX's 2 GiB, or more memory than there is (`export_memory`)."""
    if len(report.layers) > MAX_EXPORTED_LAYERS:
        raise ResourceError(
            f"{report.name} has {len(report.layers):,} layers; archspec exports at most "
            f"{MAX_EXPORTED_LAYERS:,} to ONNX (torch's exporter takes about 10 ms a layer)"
        )
    check_onnx_size(report.name, weight_bytes(report), "parameters and buffers")
    need = export_memory(report, batch, verify) + file_size(weights)
    need += _not_yet_imported("torch.onnx", EXPORTER_BYTES)
    check_memory(need, f"exporting {report.name}", max_memory)


def _not_yet_imported(module: str, size: int) -> int:
    """`size`, the memory importing `module` will take, unless it is imported already."""
    return 0 if module in sys.modules else size


def export_memory(report: Report, batch: int | None, verify: bool) -> int:
    """Bytes an export holds at its peak, estimated from the analysis alone.

    The weights live three times over at the peak, while the model is serialized: as the model's
    initializers, in protobuf's buffer and as the bytes written (the module's copy is gone by
    then, and onnxruntime reads the written file). Beside them, the example input, and for
    verification one forward in torch and one in onnxruntime at each batch (activations alive
    at once, per `peak_activation_bytes`).
    """
    weights = weight_bytes(report)
    sample = numel(report.input_shape) * BYTES_PER_ELEMENT
    example = (batch or 2) * sample
    graph = EXPORT_BYTES_PER_LAYER * len(report.layers)
    if not verify:
        return 3 * weights + example + graph
    batches = (batch,) if batch else (1, SECOND_BATCH)
    forward = max(size * (2 * peak_activation_bytes(report) + sample) for size in batches)
    return 3 * weights + max(example, forward) + graph


def check_onnx_size(name: str, size: int, what: str) -> None:
    """Refuse weights that cannot fit in one ONNX file beside the graph."""
    room = ONNX_LIMIT - GRAPH_ROOM
    if size > room:
        raise ExportError(
            f"{name!r} has {size / GIB:.2f} GiB of {what}, more than an ONNX file holds: "
            f"protobuf keeps a file under {ONNX_LIMIT / GIB:.0f} GiB, which leaves "
            f"{room / GIB:.2f} GiB for weights beside the graph"
        )


def file_size(weights: object) -> int:
    """Bytes a weights file takes once read (0 for a state_dict already in memory)."""
    if not isinstance(weights, str | Path):
        return 0
    try:
        return os.stat(weights).st_size
    except (OSError, ValueError):
        return 0  # reading it will say what is wrong
