"""Lower a network to a `torch.fx.GraphModule` whose submodules mirror its dotted layer names."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import fx, nn

from archspec.analysis import LayerReport, Report, analyze
from archspec.backends.budgets import check_compile
from archspec.backends.frozen import pin_eval_mode
from archspec.backends.groups import Group, regroup
from archspec.backends.torch_source import TENSOR_INITS
from archspec.backends.weights import WeightsReport, load_weights
from archspec.ir import INPUT, HasNetwork, Network, unwrap
from archspec.ops.base import Shape, TorchCall, TorchTensor

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class CompiledNetwork(fx.GraphModule):
    """The network as a GraphModule: `forward` is generated straight-line code.

    Frozen batch norms are pinned to eval mode (`archspec.backends.frozen`), so fine-tuning
    keeps the running statistics learnt on the large dataset. The pin is the norm's own class,
    so it survives deepcopy, pickle and `torch.save` (the last two give back a GraphModule).
    """

    # plain Python facts about the network, not part of what TorchScript compiles
    __jit_ignored_attributes__ = ("weights_report",)
    #: What loading `weights` did; None when none were given.
    weights_report: WeightsReport | None = None

    def __init__(self, root: nn.Module, graph: fx.Graph, class_name: str) -> None:
        # torch.jit.script lints the source of type(self).__init__, and GraphModule's own
        # (annotated empty lists) draws a warning from it
        super().__init__(root, graph, class_name)
        regroup(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> CompiledNetwork:
        copied = cast("CompiledNetwork", super().__deepcopy__(memo))
        # fx rebuilds the copy through GraphModule.__init__, which drops instance attributes
        copied.weights_report = self.weights_report  # immutable: shared, not copied
        regroup(copied)
        return copied


def compile_module(
    subject: Network | HasNetwork,
    report: Report | None = None,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    scoped_calls: bool = False,
    *,
    in_place: bool = True,
    device: str | None = None,
    max_memory: int | None = None,
) -> CompiledNetwork:
    """Build the network: (N, *input_shape) -> output, a tuple of outputs when there are several,
    or a dict of them when the network names them (`output_keys`).

    `state_dict()` keys are the spec's dotted names (`layer1.0.conv1.weight`); frozen layers get
    `requires_grad=False`. `weights` is a state_dict or a file of one (loaded with
    `weights_only=True`); with `strict=False` only keys of matching shape are loaded and the rest
    are listed in `weights_report`. `scoped_calls` makes parameter-free layers (add, concat,
    flatten) modules too, so that exporters name everything they emit after a layer; without
    `in_place`, no layer overwrites its input (an exporter writes copies back where one
    overwrites a view, and a runtime plans its own memory). The
    layers are built on `device`; "meta" allocates no weights, enough for `generate_source`.

    ResourceError, before anything is allocated, when the weights (and a weights file read
    beside them) would not fit in the memory available or in `max_memory` bytes.
    """
    if weights is not None and device == "meta":
        raise ValueError("weights cannot be loaded into a network built on the meta device")
    network, origins = unwrap(subject)
    report = report or analyze(network, origins=origins)
    check_compile(report, weights, allocate=device != "meta", max_memory=max_memory)
    root = nn.Module()
    graph = fx.Graph()
    shapes: dict[str, Shape] = {INPUT: report.input_shape}
    values: dict[str, fx.Node] = {INPUT: graph.placeholder(INPUT)}
    reusable = _overwritable_outputs(network, report) if in_place else set()
    tensor_inits: dict[str, tuple[str, dict[str, float]]] = {}
    with torch.device(device) if device is not None else contextlib.nullcontext():
        for layer in report.layers:
            inputs = [shapes[name] for name in layer.inputs]
            lowered = _lower(layer, inputs, overwritable=layer.inputs[0] in reusable)
            arguments = [values[name] for name in layer.inputs]
            if isinstance(lowered, TorchCall) and scoped_calls:
                lowered = LayerFunction(lowered)
            if isinstance(lowered, TorchTensor):
                _install_tensor(root, layer.name, lowered, frozen=layer.frozen)
                tensor_inits[layer.name] = (lowered.init, lowered.init_kwargs)
                tensor = graph.get_attr(layer.name)
                values[layer.name] = lowered.call.apply([tensor, *arguments], graph.call_function)
            elif isinstance(lowered, TorchCall):
                values[layer.name] = lowered.apply(arguments, graph.call_function)
            else:
                _install(root, layer.name, lowered)
                values[layer.name] = graph.call_module(layer.name, tuple(arguments))
            values[layer.name].meta["archspec_layer"] = layer.name
            shapes[layer.name] = layer.output_shape
    results = [values[name] for name in report.outputs]
    if network.output_keys:
        graph.output(dict(zip(network.output_keys, results, strict=True)))
    else:
        graph.output(results[0] if len(results) == 1 else tuple(results))
    module = CompiledNetwork(root, graph, class_name(network.name))
    module.meta[TENSOR_INITS] = tensor_inits
    if weights is not None:
        module.weights_report = load_weights(module, weights, strict)
    return module.train()


def _lower(
    layer: LayerReport, inputs: list[Shape], *, overwritable: bool
) -> nn.Module | TorchCall | TorchTensor:
    """The layer's torch module, frozen as the spec says, the call of a parameter-free op, or
    a learned tensor of the layer's own."""
    # one tensor less per activation or residual add: 10% faster at batch 8
    in_place = overwritable and layer.op.runs_in_place
    lowered = layer.op.to_torch_in_place(inputs) if in_place else layer.op.to_torch(inputs)
    if isinstance(lowered, TorchCall | TorchTensor):
        return lowered
    if layer.frozen:
        lowered.requires_grad_(False)
        if layer.op.running_statistics:
            pin_eval_mode(lowered)
    return lowered


class LayerFunction(nn.Module):
    """A parameter-free layer as a module, so that its calls carry the layer's name scope."""

    def __init__(self, call: TorchCall) -> None:
        super().__init__()
        self.call = call

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.call.apply(inputs, _run)


def _run(
    function: Callable[..., torch.Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> torch.Tensor:
    result: torch.Tensor = function(*args, **kwargs)
    return result


def _overwritable_outputs(network: Network, report: Report) -> set[str]:
    """Layers whose output one layer reads, no output returns, and no backward needs; where the
    output may be the layer's input itself (dropout at inference), the input must be one too."""
    readers = network.readers
    overwritable: set[str] = set()
    for layer in report.layers:  # producers first, so a chain of pass-throughs is decided
        if (
            readers[layer.name] == 1
            and layer.name not in report.outputs
            and not layer.op.output_kept_for_backward
            and (not layer.op.output_is_input or layer.inputs[0] in overwritable)
        ):
            overwritable.add(layer.name)
    return overwritable


def _install(root: nn.Module, dotted: str, module: nn.Module) -> None:
    """Place `module` at `a.b.c`, creating Group containers for `a` and `a.b`."""
    *parents, leaf = dotted.split(".")
    _owner(root, parents).add_module(leaf, module)


def _install_tensor(root: nn.Module, dotted: str, tensor: TorchTensor, *, frozen: bool) -> None:
    """Register a learned tensor as the parameter `a.b.c`, filled by its `torch.nn.init`."""
    *parents, leaf = dotted.split(".")
    parameter = nn.Parameter(torch.empty(tensor.shape), requires_grad=not frozen)
    if not parameter.is_meta:  # a meta tensor has no values; filling one imports torch's refs
        with torch.no_grad():
            getattr(nn.init, tensor.init)(parameter, **tensor.init_kwargs)
    _owner(root, parents).register_parameter(leaf, parameter)


def _owner(root: nn.Module, parents: list[str]) -> nn.Module:
    """The module at the dotted path `parents`, Group containers made where missing."""
    owner = root
    for part in parents:
        child = owner._modules.get(part)
        if child is None:
            child = Group()
            owner.add_module(part, child)
        owner = child
    return owner


def class_name(name: str) -> str:
    """`resnet50` -> `Resnet50`, `mobilenet_v2` -> `MobilenetV2`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or "Network"
