"""The proofs an exported ONNX model must pass: onnx's checker, its inferred shapes against the
static analysis layer by layer, and onnxruntime's outputs against torch's."""

from __future__ import annotations

import numpy as np
import onnx
import torch

from archspec.analysis import Report
from archspec.backends.budgets import ExportError
from archspec.backends.torch import CompiledNetwork
from archspec.ir import INPUT

#: Largest |onnxruntime - torch| accepted on any output.
TOLERANCE = 1e-4


def check_model(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the exported model fails onnx.checker: {error}") from error


def compare_shapes(model: onnx.ModelProto, report: Report, batch: int | None) -> int:
    """Every layer tensor left in the graph must have the statically predicted shape."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {
        info.name: [dim.dim_param or dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in (*inferred.graph.value_info, *inferred.graph.output)
    }
    checked = 0
    for layer in report.layers:
        found = shapes.get(layer.name)
        if found is None:
            continue  # folded away by the exporter (a batch norm into its conv, a dropout)
        expected = [batch or "N", *layer.output_shape]
        if found != expected:
            raise ExportError(
                f"layer {layer.name!r}: ONNX infers shape {found}, the static analysis {expected}"
            )
        checked += 1
    return checked


def compare_outputs(
    data: bytes, module: CompiledNetwork, report: Report, batches: tuple[int, ...]
) -> float:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail, InvalidGraph, ...
        raise ExportError(
            f"onnxruntime cannot load the exported model of {report.name!r}: {error}"
        ) from error
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for size in batches:
        image = torch.randn(size, *report.input_shape, generator=generator)
        with torch.no_grad():
            expected = module(image)
        expected = expected if isinstance(expected, tuple) else (expected,)
        found = session.run(None, {INPUT: image.numpy()})
        for name, ours, theirs in zip(report.outputs, expected, found, strict=True):
            difference = float(np.max(np.abs(ours.numpy() - theirs)))
            worst = max(worst, difference)
            if difference > TOLERANCE:
                raise ExportError(
                    f"onnxruntime differs from torch at batch {size} on output "
                    f"{name!r}: {difference:.3g} > {TOLERANCE}"
                )
    return worst
