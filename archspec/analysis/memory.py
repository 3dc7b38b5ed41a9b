"""Memory a network needs to run: its weights, and the activations alive at once in inference."""

from __future__ import annotations

from collections import Counter

from archspec.analysis.report import BYTES_PER_ELEMENT, Report
from archspec.ir import INPUT
from archspec.ops.base import numel


def weight_bytes(report: Report) -> int:
    """Parameters as float32, plus two floats per output channel for running statistics (batch
    norm's mean and variance) and the other buffers ops declare (an upper bound)."""
    buffers = sum(
        2 * layer.output_shape[0] for layer in report.layers if layer.op.running_statistics
    )
    # other buffers may hold indices: int64, two floats' room each
    indices = sum(layer.op.buffer_elements(layer.input_shapes) for layer in report.layers)
    return (report.totals.params + buffers + 2 * indices) * BYTES_PER_ELEMENT


def peak_activation_bytes(report: Report) -> int:
    """The largest total of activations alive at one time in an inference forward, per sample.

    A layer's output lives from its layer until its last reader has run (the outputs until the
    end); this is what a forward under `torch.no_grad()` holds at most, in-place ops aside.
    """
    sizes = {INPUT: numel(report.input_shape) * BYTES_PER_ELEMENT}
    readers: Counter[str] = Counter()
    for layer in report.layers:
        sizes[layer.name] = layer.activation_bytes
        readers.update(set(layer.inputs))
    kept = set(report.outputs)
    live = peak = sizes[INPUT]
    for layer in report.layers:
        live += layer.activation_bytes
        peak = max(peak, live)
        for producer in set(layer.inputs):
            readers[producer] -= 1
            if readers[producer] == 0 and producer not in kept:
                live -= sizes[producer]
    return peak
