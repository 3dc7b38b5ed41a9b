"""Lower an analysed spec to a `torch.fx.GraphModule` whose submodules mirror the dotted names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import fx, nn

from archspec.analysis import Report, analyze
from archspec.layers import INPUT
from archspec.ops.base import Shape, TorchCall

if TYPE_CHECKING:
    from archspec.loader import Spec


def compile_module(spec: Spec, report: Report | None = None) -> fx.GraphModule:
    """Build the network: (N, *input_shape) -> output, or a tuple of outputs when there are several.

    `forward` is straight-line generated code, one statement per layer; `state_dict()` keys are
    the spec's dotted names (`layer1.0.conv1.weight`). Frozen layers get `requires_grad=False`.
    """
    report = report or analyze(spec)
    root = nn.Module()
    graph = fx.Graph()
    shapes: dict[str, Shape] = {INPUT: report.input_shape}
    values: dict[str, fx.Node] = {INPUT: graph.placeholder(INPUT)}
    for layer in report.layers:
        inputs = [shapes[name] for name in layer.inputs]
        arguments = [values[name] for name in layer.inputs]
        lowered = layer.op.to_torch(inputs)
        if isinstance(lowered, TorchCall):
            values[layer.name] = _call(graph, lowered, arguments)
        else:
            if layer.frozen:
                lowered.requires_grad_(False)
            _install(root, layer.name, lowered)
            values[layer.name] = graph.call_module(layer.name, tuple(arguments))
        values[layer.name].meta["archspec_layer"] = layer.name
        shapes[layer.name] = layer.output_shape
    results = [values[name] for name in report.outputs]
    graph.output(results[0] if len(results) == 1 else tuple(results))
    return fx.GraphModule(root, graph, class_name=_class_name(spec.name))


def _call(graph: fx.Graph, call: TorchCall, arguments: list[fx.Node]) -> fx.Node:
    if call.packed:
        return graph.call_function(call.function, (arguments,), call.kwargs)
    if call.chained:
        result = arguments[0]
        for argument in arguments[1:]:
            result = graph.call_function(call.function, (result, argument), call.kwargs)
        return result
    return graph.call_function(call.function, tuple(arguments), call.kwargs)


def _install(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Place `module` at `a.b.c`, creating plain container modules for `a` and `a.b`."""
    *parents, leaf = dotted.split(".")
    owner = root
    for part in parents:
        child = owner._modules.get(part)
        if child is None:
            child = nn.Module()
            owner.add_module(part, child)
        owner = child
    owner.add_module(leaf, module)


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) or "Network"


__all__ = ["compile_module"]
