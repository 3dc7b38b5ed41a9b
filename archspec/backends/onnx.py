"""Export a compiled network to ONNX, then prove the file: checker, shapes and onnxruntime."""

from __future__ import annotations

import ast
import collections
import contextlib
import gc
import hashlib
import io
import itertools
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
    inferred_shapes,
    reference_outputs,
    without_weights,
)
from archspec.backends.opsets import DEFAULT_OPSET, opset_problem
from archspec.backends.torch import CompiledNetwork, compile_module
from archspec.files import atomic_write
from archspec.ir import INPUT, HasNetwork, Network, unwrap

_SCOPES = "pkg.torch.onnx.name_scopes"


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
    model = _export(module, report, outputs, opset, batch)
    # the model holds its own copy of the weights now; the exporter leaves reference cycles
    # around the module (fx's graph and module point at each other, tracing state at both), so
    # only a full collection lets its copy go before the model is serialized beside it. 0.2 s
    # against a weights-sized saving at the peak (VGG-16's 553 MB)
    del module
    gc.collect()
    written = _written_opset(model, opset)
    _name_after_layers(model, report)
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
) -> onnx.ModelProto:
    """The ONNX model of `module`, its outputs named `outputs` (layer names, or the keys of
    named outputs)."""
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
    # onnxscript's rewrite rules keep the last graph they matched, whose initializers wrap the
    # module's parameters: let go of them, or the weights outlive the module
    for value in program.model.graph.initializers.values():
        value.const_value = None
    return model


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


def _tensor_names(graph: onnx.GraphProto) -> set[str]:
    """Every name a tensor of `graph` bears: nodes' inputs and outputs, the graph's own."""
    names = {name for node in graph.node for name in (*node.input, *node.output)}
    return names | {value.name for value in (*graph.input, *graph.output, *graph.initializer)}


def _free_name(name: str, taken: set[str]) -> str:
    return next(f"{name}_{k}" for k in itertools.count(1) if f"{name}_{k}" not in taken)


def _one_producer_per_name(graph: onnx.GraphProto) -> None:
    """torch's exporter names a graph output as asked even where a constant or an inner tensor
    already has that name (a reshape's `view` beside an output `view`): each earlier producer's
    tensor takes a free name, and its readers follow."""
    producers = collections.Counter(tensor.name for tensor in graph.initializer)
    producers.update(name for node in graph.node for name in node.output)
    if all(count == 1 for count in producers.values()):
        return
    taken = _tensor_names(graph)
    current: dict[str, str] = {}
    first: dict[str, str] = {}  # the name the value_info of a clashing name describes

    def produced(name: str) -> str:
        producers[name] -= 1
        if not producers[name]:
            current.pop(name, None)
            return name
        # a later node writes this name too: the name is its
        current[name] = _free_name(name, taken)
        taken.add(current[name])
        first.setdefault(name, current[name])
        return current[name]

    for tensor in graph.initializer:
        tensor.name = produced(tensor.name)
    for node in graph.node:
        node.input[:] = [current.get(name, name) for name in node.input]
        node.output[:] = [produced(name) for name in node.output]
    # the graph output's shape is in graph.output: the value_info is the inner tensor's
    for value in graph.value_info:
        value.name = first.get(value.name, value.name)


def _name_after_layers(model: onnx.ModelProto, report: Report) -> None:
    """Nodes become `layer/OpType`, and each layer's output tensor takes the layer's name, so the
    graph reads like the spec in a viewer such as Netron."""
    layers = {layer.name for layer in report.layers}
    graph = model.graph
    _one_producer_per_name(graph)
    fixed = {value.name for value in (*graph.input, *graph.output, *graph.initializer)}
    last_output: dict[str, str] = {}
    folded: set[str] = set()  # layers whose op the exporter merged into the next (conv + norm)
    used: dict[str, int] = {}
    initializers = {tensor.name for tensor in graph.initializer}
    for node in graph.node:
        layer = _layer_of(node, layers)
        # a conv with its batch norm folded in carries the norm's scope; name it after the conv
        owner = next(
            (
                name.rsplit(".", 1)[0]
                for name in node.input
                if name in initializers and name.rsplit(".", 1)[0] in layers
            ),
            layer,
        )
        base = f"{owner}/{node.op_type}" if owner else node.op_type
        used[base] = used.get(base, 0) + 1
        node.name = base if used[base] == 1 else f"{base}_{used[base]}"
        if layer and node.output:
            last_output[layer] = node.output[0]
        if layer and owner != layer:
            folded.add(owner)
    # a folded layer's output is gone; a node in its scope (the slice of a split before it, which
    # the exporter places at its reader) made some other tensor
    for layer in folded:
        last_output.pop(layer, None)
    # so is the output of a layer whose last transpose the exporter cancelled against the next
    # layer's (a layer norm over channels before a permute to channels last): its last node
    # made a tensor of another shape
    # without the weights' values, which shape inference would copy (a gigabyte for VGG-16)
    shapes = inferred_shapes(without_weights(model))
    static = {layer.name: list(layer.output_shape) for layer in report.layers}
    for layer, tensor in list(last_output.items()):
        found = shapes.get(tensor)
        if found is not None and found[1:] != static[layer]:
            del last_output[layer]
    interface = {value.name for value in (*graph.input, *graph.output)}
    renames = {
        old: layer
        for layer, old in last_output.items()
        if old not in fixed and layer not in interface
    }
    # the exporter's own tensor or constant may bear a layer's name (a channel shuffle's
    # `transpose` beside a layer called transpose): it takes a free name, as names must be
    # unique and a name that is a layer's must mean that layer's output
    taken = _tensor_names(graph)
    for name in sorted((taken & layers) - renames.keys() - interface):
        renames[name] = _free_name(name, taken | layers)
        taken.add(renames[name])
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in (*graph.value_info, *graph.initializer):
        value.name = renames.get(value.name, value.name)
    # the exporter's notes (stack traces with this machine's paths, the traced program) are
    # read now; the file keeps only the names
    for node in graph.node:
        del node.metadata_props[:]
    del graph.metadata_props[:]


def _layer_of(node: onnx.NodeProto, layers: set[str]) -> str:
    for prop in node.metadata_props:
        if prop.key == _SCOPES:
            scopes = ast.literal_eval(prop.value)
            return next((scope for scope in scopes if scope in layers), "")
    return ""


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
    del model.metadata_props[:]
    for key, value in (
        ("archspec.spec", report.name),
        ("archspec.version", __version__),
        ("archspec.spec_sha256", spec_digest(report)),
        ("archspec.opset", str(opset)),
    ):
        model.metadata_props.add(key=key, value=value)
