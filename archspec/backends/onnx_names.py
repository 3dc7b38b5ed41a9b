"""Names in an exported ONNX graph after the spec's layers: nodes, layer outputs and weights."""

from __future__ import annotations

import ast
import collections
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import onnx
import torch

from archspec.analysis import Report
from archspec.backends.onnx_checks import inferred_shapes, without_weights

#: The exporter's note on a node: the modules (layers) and the call it was traced in.
_SCOPES = "pkg.torch.onnx.name_scopes"
#: onnxscript's note on a constant it folded: the tensors it was computed from.
_FOLDED_FROM = "pkg.onnxscript.optimizer.folded_from"
#: The suffix of a weight computed at export from the module's tensor it is named after.
FOLDED = "_folded"


@dataclass(frozen=True)
class WeightOrigins:
    """What the exporter's initializers are, read off its IR: the ONNX file keeps none of it."""

    kept: Mapping[str, str]  # initializer -> state_dict key of the module tensor it is, unchanged
    folded_from: Mapping[str, frozenset[str]]  # any other -> state_dict keys it was computed from
    keys: frozenset[str]  # the module's state_dict keys


def weight_origins(program: torch.onnx.ONNXProgram, module: torch.nn.Module) -> WeightOrigins:
    """Which initializers of `program` are `module`'s parameters and buffers as they are (the
    exporter wraps the tensor itself), and which keys the others were computed from (onnxscript
    notes what it folds; a batch norm folded into a conv shows in the names alone)."""
    state = module.state_dict(keep_vars=True)
    stored: dict[tuple[int, tuple[int, ...], tuple[int, ...]], list[str]] = {}
    for key, tensor in state.items():
        stored.setdefault(_storage(tensor), []).append(key)
    kept: dict[str, str] = {}
    folded_from: dict[str, frozenset[str]] = {}
    for name, value in program.model.graph.initializers.items():
        raw = getattr(value.const_value, "raw", None)
        keys = stored.get(_storage(raw), []) if isinstance(raw, torch.Tensor) else []
        if keys:
            kept[name] = name if name in keys else keys[0]  # a tied tensor has several keys
        else:
            sources = ast.literal_eval(value.metadata_props.get(_FOLDED_FROM, "[]"))
            folded_from[name] = frozenset(state.keys() & set(sources))
    return WeightOrigins(kept, folded_from, frozenset(state))


def _storage(tensor: torch.Tensor) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    return tensor.data_ptr(), tuple(tensor.shape), tensor.stride()


def name_after_layers(model: onnx.ModelProto, report: Report, origins: WeightOrigins) -> None:
    """Nodes become `layer/OpType`, each layer's output tensor takes the layer's name and each
    weight one after its layer (`weight_name`), so the graph reads like the spec in a viewer
    such as Netron."""
    layers = {layer.name for layer in report.layers}
    graph = model.graph
    _one_producer_per_name(graph)
    scopes = [_scopes(node) for node in graph.node]
    scoped = [next((scope for scope in found if scope in layers), "") for found in scopes]
    owners = _owners(graph, scopes, scoped, layers, origins)
    used: collections.Counter[str] = collections.Counter()
    for node, owner in zip(graph.node, owners, strict=True):
        base = f"{owner}/{node.op_type}" if owner else node.op_type
        used[base] += 1
        node.name = base if used[base] == 1 else f"{base}_{used[base]}"
    # after the nodes: a constant of the graph alone is named after the node that reads it
    kept = _name_weights(graph, origins)
    outputs = _layer_outputs(model, report, scoped, owners)
    _rename_layer_outputs(graph, layers, outputs, kept)
    # the exporter's notes (stack traces with this machine's paths, the traced program) are
    # read now; the file keeps only the names
    for node in graph.node:
        del node.metadata_props[:]
    del graph.metadata_props[:]


def _scopes(node: onnx.NodeProto) -> tuple[str, ...]:
    for prop in node.metadata_props:
        if prop.key == _SCOPES:
            return tuple(ast.literal_eval(prop.value))
    return ()


def _owners(
    graph: onnx.GraphProto,
    scopes: Sequence[tuple[str, ...]],
    scoped: Sequence[str],
    layers: set[str],
    origins: WeightOrigins,
) -> list[str]:
    """The layer each node is named after: the layer it was traced in (`scoped`), except that a
    conv with its batch norm folded in carries the norm's scope and is its weight's layer, and
    the broadcast of a parameter layer's tensor over the batch (an Expand and the Concat of its
    shape), traced in the call alone, is that layer's."""
    initializers = {tensor.name for tensor in graph.initializer}
    owners = []
    for node, layer in zip(graph.node, scoped, strict=True):
        weights = [name for name in node.input if name in initializers]
        # a weight of the module as it is may be another layer's that the exporter shares, as
        # it keeps one of equal tensors (fresh norm weights): only a folded one tells
        folded = (name.rsplit(".", 1)[0] for name in weights if name not in origins.kept)
        owner = next((name for name in folded if name in layers), layer)
        # a parameter layer's tensor bears the layer's name (its state_dict key)
        owners.append(owner or next((name for name in weights if name in layers), ""))
    # the call's scope is the root's and the call's node's: ('', 'expand_1')
    calls = {
        scope: owner
        for scope, layer, owner in zip(scopes, scoped, owners, strict=True)
        if owner and not layer and len(scope) > 1
    }
    return [owner or calls.get(scope, "") for owner, scope in zip(owners, scopes, strict=True)]


def weight_name(name: str, origins: WeightOrigins, reader: str | None) -> str:
    """The name of the initializer the exporter called `name`:

    - a parameter or buffer of the module, unchanged: its state_dict key (`conv1.weight`);
    - a tensor computed at export from the module's: the key it came from (the first, sorted,
      of several) and `_folded`. A linear weight transposed for MatMul is
      `features.1.0.block.3.weight_folded`, Swin's relative position bias gathered from its
      table `features.1.0.attn.relative_position_bias_table_folded`, and a conv with its batch
      norm folded in has `layer1.0.conv1.weight_folded` and `layer1.0.conv1.bias_folded`;
    - a constant of the graph alone (a shape, a scalar, a mask): its first `reader`, the node
      and the input it fills (`flatten/Reshape.shape`, `features.1.0.block.4/Div.B`), even when
      the exporter shares it among layers of the same constant.
    """
    if name in origins.kept:
        return origins.kept[name]
    # folding a batch norm into a conv rewrites the conv's weight and bias under their keys, or
    # names the bias it gives a conv without one after the weight (`conv1.weight_bias`)
    if name in origins.keys:
        return name + FOLDED
    weight = name.removesuffix("_bias")
    if weight != name and weight in origins.keys:
        return weight.rsplit(".", 1)[0] + ".bias" + FOLDED
    sources = origins.folded_from.get(name)
    if sources:
        return min(sources) + FOLDED
    return reader or name


def _name_weights(graph: onnx.GraphProto, origins: WeightOrigins) -> set[str]:
    """Every initializer takes its `weight_name`; the names of the module's tensors as they are
    (state_dict keys) are returned."""
    interface = {value.name for value in (*graph.input, *graph.output)}
    initializers = {tensor.name for tensor in graph.initializer} - interface
    readers: dict[str, str] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in initializers:
                readers.setdefault(name, f"{node.name}.{_input_name(node, index)}")
    taken = (_tensor_names(graph) - initializers) | interface
    renames: dict[str, str] = {}
    # the module's tensors first: no constant may take a state_dict key
    for name in sorted(initializers, key=lambda name: (name not in origins.kept, name)):
        wanted = weight_name(name, origins, readers.get(name))
        renames[name] = wanted if wanted not in taken else _free_name(wanted, taken)
        taken.add(renames[name])
    _rename(graph, renames)
    return {renames[name] for name, key in origins.kept.items() if renames.get(name) == key}


def _input_name(node: onnx.NodeProto, index: int) -> str:
    """The name ONNX gives input `index` of `node` (Reshape's `shape`), numbered within a
    variadic one (Concat's `inputs_1`)."""
    try:
        formal = onnx.defs.get_schema(node.op_type, domain=node.domain).inputs
    except onnx.defs.SchemaError:  # a function of the model's own
        return f"input_{index}"
    last = len(formal) - 1
    if last < 0:
        return f"input_{index}"
    if index >= last and formal[last].option == onnx.defs.OpSchema.FormalParameterOption.Variadic:
        return f"{formal[last].name}_{index - last}"
    return str(formal[min(index, last)].name)


def _layer_outputs(
    model: onnx.ModelProto, report: Report, scoped: Sequence[str], owners: Sequence[str]
) -> dict[str, str]:
    """Each layer's output tensor, where one survives: the last that its nodes make."""
    last_output: dict[str, str] = {}
    folded: set[str] = set()  # layers whose op the exporter merged into the next (conv + norm)
    for node, layer, owner in zip(model.graph.node, scoped, owners, strict=True):
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
    return last_output


def _rename_layer_outputs(
    graph: onnx.GraphProto, layers: set[str], last_output: Mapping[str, str], kept: set[str]
) -> None:
    """Each layer's output tensor takes the layer's name. A parameter layer's tensor already
    bears it (its state_dict key is the layer's name), and its output is that tensor broadcast
    over the batch."""
    fixed = {value.name for value in (*graph.input, *graph.output, *graph.initializer)}
    interface = {value.name for value in (*graph.input, *graph.output)}
    renames = {
        old: layer
        for layer, old in last_output.items()
        if old not in fixed and layer not in interface and layer not in kept
    }
    # the exporter's own tensor or constant may bear a layer's name (a channel shuffle's
    # `transpose` beside a layer called transpose): it takes a free name, as names must be
    # unique and a name that is a layer's must mean that layer's output
    taken = _tensor_names(graph)
    for name in sorted((taken & layers) - renames.keys() - interface - kept):
        renames[name] = _free_name(name, taken | layers)
        taken.add(renames[name])
    _rename(graph, renames)


def _rename(graph: onnx.GraphProto, renames: Mapping[str, str]) -> None:
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in (*graph.value_info, *graph.initializer):
        value.name = renames.get(value.name, value.name)


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
