"""The proofs an exported ONNX model must pass: onnx's checker, its inferred shapes against the
static analysis layer by layer, and onnxruntime's outputs against torch's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import torch

from archspec.analysis import Report
from archspec.backends.budgets import ExportError
from archspec.backends.torch import CompiledNetwork
from archspec.ir import INPUT

#: Largest |onnxruntime - torch| accepted on any output.
TOLERANCE = 1e-4


#: Initializers of up to this many elements keep their values in `without_weights`: shape
#: inference reads the small ones (a Reshape's target shape), never the weights.
KEPT_INITIALIZER_ELEMENTS = 16 * 2**10


def without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each large initializer turned into a graph input of its type and shape.

    onnx's checker and shape inference serialize and parse the whole model, three copies of the
    weights at once (VGG-16's 553 MB became 4.2 GB); they need the weights' types and shapes,
    not their values, which onnxruntime then loads and runs for real.
    """
    graph = model.graph
    skeleton = onnx.ModelProto(
        ir_version=model.ir_version,
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        domain=model.domain,
        model_version=model.model_version,
        doc_string=model.doc_string,
    )
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    skeleton.metadata_props.extend(model.metadata_props)
    skeleton_graph = skeleton.graph
    skeleton_graph.name = graph.name
    skeleton_graph.node.extend(graph.node)
    skeleton_graph.input.extend(graph.input)
    skeleton_graph.output.extend(graph.output)
    skeleton_graph.value_info.extend(graph.value_info)
    for tensor in graph.initializer:
        # counted from the dims: asking protobuf for a size would serialize the tensor
        if math.prod(tensor.dims) <= KEPT_INITIALIZER_ELEMENTS:
            skeleton_graph.initializer.append(tensor)
        else:
            skeleton_graph.input.append(
                onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, tensor.dims)
            )
    return skeleton


def check_model(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported model fails onnx.checker: {error}") from error


def inferred_shapes(model: onnx.ModelProto, strict: bool = False) -> dict[str, list[int | str]]:
    """The shapes ONNX's shape inference gives the graph's tensors, batch first (its name where
    it is dynamic); `strict` makes an inference error an exception."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=strict)
    return {
        info.name: [dim.dim_param or dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in (*inferred.graph.value_info, *inferred.graph.output)
    }


def compare_shapes(model: onnx.ModelProto, report: Report, batch: int | None) -> int:
    """Every layer tensor left in the graph must have the statically predicted shape."""
    shapes = inferred_shapes(model, strict=True)
    # a parameter layer's name is its weight's, the tensor before its broadcast over the batch
    computed = {name for node in model.graph.node for name in node.output}
    checked = 0
    for layer in report.layers:
        found = shapes.get(layer.name)
        if found is None or layer.name not in computed:
            continue  # folded away by the exporter (a batch norm into its conv, a dropout)
        expected = [batch or "N", *layer.output_shape]
        if found != expected:
            raise ExportError(
                f"layer {layer.name!r}: ONNX infers shape {found}, the static analysis {expected}"
            )
        checked += 1
    return checked


def reference_outputs(
    module: CompiledNetwork, report: Report, batches: tuple[int, ...]
) -> list[tuple[np.ndarray, tuple[np.ndarray, ...]]]:
    """Per batch size, a random input (seeded) and torch's outputs for it."""
    generator = torch.Generator().manual_seed(0)
    runs = []
    for size in batches:
        image = torch.randn(size, *report.input_shape, generator=generator)
        with torch.no_grad():
            outputs = module(image)
        if isinstance(outputs, dict):  # named outputs: ONNX lists them in the dict's order
            outputs = tuple(outputs.values())
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        runs.append((image.numpy(), tuple(output.numpy() for output in outputs)))
    return runs


def compare_outputs(
    model: Path,
    expected: list[tuple[np.ndarray, tuple[np.ndarray, ...]]],
    report: Report,
    names: tuple[str, ...],
) -> float:
    """The largest |onnxruntime - torch| over the runs of `reference_outputs`."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail, InvalidGraph, ...
        raise ExportError(
            f"onnxruntime cannot load the exported model of {report.name!r}: {error}"
        ) from error
    worst = 0.0
    for image, outputs in expected:
        found = session.run(None, {INPUT: image})
        for name, ours, theirs in zip(names, outputs, found, strict=True):
            difference = float(np.max(np.abs(ours - theirs)))
            worst = max(worst, difference)
            if difference > TOLERANCE:
                raise ExportError(
                    f"onnxruntime differs from torch at batch {len(image)} on output "
                    f"{name!r}: {difference:.3g} > {TOLERANCE}"
                )
    return worst
