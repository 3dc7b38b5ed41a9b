"""Export a compiled network to ONNX, then prove the file: checker, shapes and onnxruntime."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import logging
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import onnx
import torch

from archspec.analysis import Report, analyze
from archspec.backends.budgets import SECOND_BATCH, ExportError, check_export, check_onnx_size
from archspec.backends.onnx_checks import (
    check_model,
    compare_outputs,
    compare_shapes,
    reference_outputs,
    without_weights,
)
from archspec.backends.onnx_names import WeightOrigins, name_after_layers, weight_origins
from archspec.backends.opsets import DEFAULT_OPSET, opset_problem
from archspec.backends.torch import CompiledNetwork, compile_module
from archspec.files import atomic_write
from archspec.ir import INPUT, HasNetwork, Network, unwrap


@dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and what it checked."""

    path: Path
    opset: int
    nodes: int
    checked_shapes: int  # layers whose tensor survives in the graph (batch norms fold into convs)
    batches: tuple[int, ...]  # batch sizes run in onnxruntime
    worst_difference: float | None  # largest |onnxruntime - torch| over those runs
    seconds: float


def export_onnx(
    subject: Network | HasNetwork,
    path: str | Path,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    opset: int | None = None,
    batch: int | None = None,
    verify: bool = True,
    progress: Callable[[str], None] | None = None,
    max_memory: int | None = None,
) -> ExportReport:
    """Write a network as an ONNX model with input `input` (N, *input_shape) and one output per
    spec output, named after their layers. `batch` fixes the batch size; None keeps it dynamic.
    The graph bears the network's name, and its nodes, tensors and weights its layers' (see
    `onnx_names.weight_name` for the weights).

    With `verify`, the model must pass `onnx.checker` (full check), its inferred shapes must equal
    the static analysis layer by layer, and onnxruntime must match torch within 1e-4 at batch 1
    and another batch. Nothing is written unless all of that holds.

    `opset` (default 18) must be one of `opsets.supported_opsets()`, and the file declares exactly
    that opset. Networks whose weights need 2 GiB or more, protobuf's limit, are refused, and so
    is an export whose weights and example and verification tensors would not fit in the memory
    available (or in `max_memory` bytes): see `export_memory`.
    """
    start = time.perf_counter()
    step = progress or (lambda message: None)
    opset = DEFAULT_OPSET if opset is None else opset
    problem = opset_problem(opset)
    if problem:
        raise ExportError(problem)
    network, origins = unwrap(subject)
    report = analyze(network, origins=origins)
    check_export(report, batch, verify, weights, max_memory)
    module = _build(network, report, weights, strict)
    batches: tuple[int, ...] = ((batch,) if batch else (1, SECOND_BATCH)) if verify else ()
    # torch's outputs are taken now, so the module (one copy of the weights) can go once the
    # model holds its own
    expected = reference_outputs(module, report, batches)
    step(f"exporting {network.name} to ONNX (opset {opset})")
    outputs = network.output_keys or report.outputs
    model, provenance = _export(module, report, outputs, opset, batch)
    # the model holds its own copy of the weights now; the exporter leaves reference cycles
    # around the module (fx's graph and module point at each other, tracing state at both), so
    # only a full collection lets its copy go before the model is serialized beside it. 0.2 s
    # against a weights-sized saving at the peak (VGG-16's 553 MB)
    del module
    gc.collect()
    written = _written_opset(model, opset)
    name_after_layers(model, report, provenance)
    _describe(model, report, written)
    checked, worst = 0, None
    if verify:
        skeleton = without_weights(model)
        step("checking the model (onnx.checker, full check)")
        check_model(skeleton)
        step("comparing inferred shapes with the static analysis")
        checked = compare_shapes(skeleton, report, batch)
    nodes = len(model.graph.node)
    payload = [_serialize(model, report.name)]
    del model

    def write(file: BinaryIO) -> None:
        # the bytes go once written: onnxruntime reads the file, not a second copy in memory
        file.write(payload.pop())

    def run_onnxruntime(written: Path) -> None:
        nonlocal worst
        step(f"running onnxruntime at batch {' and '.join(map(str, batches))}")
        worst = compare_outputs(written, expected, report, outputs)

    atomic_write(Path(path), write, run_onnxruntime if verify else None)
    return ExportReport(
        Path(path),
        written,
        nodes,
        checked,
        batches,
        worst,
        time.perf_counter() - start,
    )


def _build(
    network: Network,
    report: Report,
    weights: str | Path | Mapping[str, torch.Tensor] | None,
    strict: bool,
) -> CompiledNetwork:
    """The module to export; its real parameters and buffers must fit in one ONNX file too."""
    # in place, a residual add onto a view (attention's transposed output) exports as copies
    # back; onnxruntime plans its own memory
    module = compile_module(
        network, report, weights, strict, scoped_calls=True, in_place=False
    ).eval()
    state = module.state_dict().values()
    size = sum(value.numel() * value.element_size() for value in state)
    check_onnx_size(report.name, size, "parameters and buffers")
    return module


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter talks (progress lines, deprecation warnings, 'torchvision is not installed'
    log records); none of it helps an archspec user, and errors still surface as exceptions."""
    # onnxscript's version converter logs a traceback when it gives up on a model
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _interrupts() -> Iterator[Callable[[], bool]]:
    """Remember a Ctrl-C: torch.export can catch the KeyboardInterrupt and raise another error in
    its place, which would read as a failed export."""
    seen = []

    def interrupt(signum: int, frame: object) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)


def _export(
    module: CompiledNetwork,
    report: Report,
    outputs: tuple[str, ...],
    opset: int,
    batch: int | None,
) -> tuple[onnx.ModelProto, WeightOrigins]:
    """The ONNX model of `module`, its outputs named `outputs` (layer names, or the keys of
    named outputs), and what its initializers are."""
    # batch 2 as the example: torch.export specialises a dynamic size of 1
    example = torch.randn(batch or 2, *report.input_shape)
    dynamic = None if batch else ({0: torch.export.Dim("N")},)
    try:
        with _quiet(), _interrupts() as interrupted:
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=dynamic,
                input_names=[INPUT],
                output_names=list(outputs),
                verbose=False,
            )
    except Exception as error:  # the exporter raises many kinds; all mean "could not export"
        if interrupted():
            raise KeyboardInterrupt from error
        raise ExportError(f"torch could not export {report.name}: {error}") from error
    if program is None:
        raise ExportError(f"torch returned no ONNX program for {report.name}")
    model: onnx.ModelProto = program.model_proto
    origins = weight_origins(program, module)
    # onnxscript's rewrite rules keep the last graph they matched, whose initializers wrap the
    # module's parameters: let go of them, or the weights outlive the module
    for value in program.model.graph.initializers.values():
        value.const_value = None
    return model, origins


def _written_opset(model: onnx.ModelProto, requested: int) -> int:
    """The model's ONNX opset, which must be the one requested: when a version conversion fails
    the exporter keeps the opset it built at, and says so only in a log record."""
    found = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if found != [requested]:
        written = f"opset {found[0]}" if len(found) == 1 else f"opsets {found or 'none'}"
        raise ExportError(f"torch wrote ONNX {written} when asked for opset {requested}")
    version: int = found[0]
    return version


def _serialize(model: onnx.ModelProto, name: str) -> bytes:
    try:
        data: bytes = model.SerializeToString()
    except Exception as error:  # protobuf raises ValueError past 2 GiB, others for bad fields
        raise ExportError(f"cannot serialize the ONNX model of {name!r}: {error}") from error
    return data


def spec_digest(report: Report) -> str:
    """sha256 of the resolved network: input, every layer's op, fields and inputs, outputs."""
    resolved = {
        "input": list(report.input_shape),
        "layers": [
            [layer.name, layer.op.model_dump(mode="json"), list(layer.inputs)]
            for layer in report.layers
        ],
        "outputs": list(report.outputs),
    }
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


def _describe(model: onnx.ModelProto, report: Report, opset: int) -> None:
    from archspec import __version__

    model.producer_name = "archspec"
    model.producer_version = __version__
    model.doc_string = f"{report.name}, exported by archspec {__version__}"
    # viewers title the graph with its name, which the exporter leaves as `main_graph`
    model.graph.name = report.name
    del model.metadata_props[:]
    for key, value in (
        ("archspec.spec", report.name),
        ("archspec.version", __version__),
        ("archspec.spec_sha256", spec_digest(report)),
        ("archspec.opset", str(opset)),
    ):
        model.metadata_props.add(key=key, value=value)
