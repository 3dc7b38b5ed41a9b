"""The network every stage works on: frozen layers of validated ops, their inputs and outputs.

A frontend (the YAML loader, or Python code) builds a `Network`; analysis and the backends take
it and never look back at where it came from. Positions of errors reach them only through the
opaque `origin` of each layer, which the frontend's `Origins` lookup turns into a place.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from archspec.errors import Position, SpecError, suggest
from archspec.ops.base import MAX_DIM, Op, Shape
from archspec.ops.layouts import FEATURES, POSITIONS, Layout, default_layout
from archspec.ops.registry import OPS

if TYPE_CHECKING:
    import networkx as nx

#: The name by which a layer reads the network's input.
INPUT = "input"
#: Inputs of one layer (an add or concat): each is a node of the compiled graph.
MAX_INPUTS = 1024
#: Layers of a cycle named in its error; a cycle through 100,000 layers is not listed whole.
CYCLE_SHOWN = 8


class NetworkError(SpecError):
    """A network that cannot exist: unknown inputs, a cycle, a wrong number of inputs.

    `origin` is that of the layer at fault, for the frontend that made it to position.
    """

    def __init__(self, message: str, origin: Any = None) -> None:
        super().__init__(message)
        self.origin = origin


@dataclass(frozen=True)
class Pending:
    """An op whose fields wait for the shape entering the layer (`out_channels: in_channels`).

    `fields` holds values and `archspec.late.LateValue`s; `archspec.late.resolve` makes the op.
    """

    op_name: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Layer:
    """One layer: a name, an op (or one pending the input shape), and the layers it reads.

    No `inputs` means the previous layer (the network's input for the first). `origin` is
    whatever the frontend needs to say where the layer was written; nothing else reads it.
    """

    name: str
    op: Op | Pending
    inputs: tuple[str, ...] = ()
    frozen: bool = False
    origin: Any = field(default=None, compare=False)

    @property
    def op_name(self) -> str:
        return self.op.op_name if isinstance(self.op, Pending) else self.op.op


class Origins(Protocol):
    """A frontend's lookup from a layer's origin (and one of its fields) to a place."""

    def position(self, origin: Any, field: str | None = None) -> Position | None: ...


class HasNetwork(Protocol):
    """What a frontend hands over: the network and the lookup that positions its errors."""

    @property
    def network(self) -> Network: ...

    @property
    def origins(self) -> Origins: ...


def unwrap(subject: Network | HasNetwork) -> tuple[Network, Origins]:
    """The network of `subject` (a `Network`, or what a frontend loaded) and its origins."""
    if isinstance(subject, Network):
        return subject, NoOrigins()
    return subject.network, subject.origins


class NoOrigins:
    """The lookup of a network built in Python: no file to point into."""

    def position(self, origin: Any, field: str | None = None) -> Position | None:
        return None


@dataclass(frozen=True)
class Network:
    """A whole network, checked when it is made: every input names an earlier-declared or later
    layer that exists, each op gets as many inputs as it takes, and there is no cycle.

    `order` is the layers' names in topological order, ties broken by declaration order.
    """

    name: str
    input: Shape
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...] = ()
    #: Names the outputs are returned under, one per output: the module then returns a dict
    #: (as torchvision's segmentation models return {"out": ..., "aux": ...}), and ONNX names
    #: its outputs so. Empty: one output is returned alone, several as a tuple.
    output_keys: tuple[str, ...] = ()
    #: The input's layout, one letter per axis ("LC" for tokens, "HWC" channels last); None:
    #: channels first, (F,), (C, L), (C, H, W) or (C, T, H, W) by rank.
    layout: Layout | None = None
    order: tuple[str, ...] = field(default=(), init=False, compare=False)
    by_name: Mapping[str, Layer] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        layers = _with_default_inputs(tuple(self.layers))
        problem = input_shape_problem(self.input) or layout_problem(self.layout, len(self.input))
        if problem:
            raise NetworkError(problem)
        by_name = _index(layers)
        outputs = tuple(self.outputs) or (layers[-1].name,)
        _check_references(layers, by_name, outputs)
        keys = tuple(self.output_keys)
        problem = output_keys_problem(keys, len(outputs))
        if problem:
            raise NetworkError(problem)
        object.__setattr__(self, "output_keys", keys)
        object.__setattr__(self, "input", tuple(self.input))
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "order", topological_order(layers))

    def layer(self, name: str) -> Layer:
        return self.by_name[name]

    def input_layout(self, rank: int) -> Layout:
        """The layout of an input of `rank` axes: the spec's, or channels first."""
        return self.layout if self.layout and len(self.layout) == rank else default_layout(rank)

    def in_order(self) -> Iterable[Layer]:
        return (self.by_name[name] for name in self.order)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The layers as a networkx DiGraph: node `input` and one node per layer (attribute
        `layer`), an edge per input. Built on first use: importing networkx takes 0.2 s."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_node(INPUT, layer=None)
        for name in self.order:
            graph.add_node(name, layer=self.by_name[name])
        for name in self.order:
            graph.add_edges_from((producer, name) for producer in self.by_name[name].inputs)
        return graph

    @cached_property
    def readers(self) -> dict[str, int]:
        """How many layers read each layer's output."""
        counts = dict.fromkeys(self.by_name, 0)
        for layer in self.layers:
            for producer in layer.inputs:
                if producer != INPUT:
                    counts[producer] += 1
        return counts


def _with_default_inputs(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    if not layers:
        raise NetworkError("a network needs at least one layer")
    previous = INPUT
    given = []
    for layer in layers:
        if not isinstance(layer, Layer):
            raise NetworkError(f"a network's layers are archspec.Layer, got {type(layer).__name__}")
        inputs = tuple(layer.inputs) or (previous,)
        given.append(layer if inputs == layer.inputs else _replace_inputs(layer, inputs))
        previous = layer.name
    return tuple(given)


def _replace_inputs(layer: Layer, inputs: tuple[str, ...]) -> Layer:
    return Layer(layer.name, layer.op, inputs, layer.frozen, layer.origin)


def input_shape_problem(shape: Sequence[int]) -> str | None:
    """Why `shape` cannot be a network's input (per sample), or None: (F,), (C, L), (C, H, W)
    or (C, T, H, W)."""
    if (
        isinstance(shape, str)
        or not 1 <= len(shape) <= 4
        or any(isinstance(size, bool) or not isinstance(size, int) for size in shape)
        or any(not 1 <= size <= MAX_DIM for size in shape)
    ):
        return (
            f"input shape must be 1 to 4 sizes from 1 to {MAX_DIM} ([F], [C, L], [C, H, W] or "
            f"[C, T, H, W]), got {list(shape)}"
        )
    return None


def layout_problem(layout: object, rank: int) -> str | None:
    """Why `layout` cannot be that of an input of `rank` axes, or None."""
    if layout is None:
        return None
    if (
        not isinstance(layout, str)
        or len(layout) != rank
        or any(axis not in POSITIONS + FEATURES for axis in layout)
        or len(set(layout)) != len(layout)
    ):
        return (
            f"input layout must be {rank} distinct letters, one per input axis, of "
            f"{POSITIONS + FEATURES} "
            f"(C channels or features, L T H W positions; as CHW, HWC or LC), got {layout!r}"
        )
    return None


def output_keys_problem(keys: Sequence[str], outputs: int) -> str | None:
    """Why `keys` cannot name `outputs` outputs, or None: one distinct identifier each."""
    if not keys:
        return None
    if len(keys) != outputs:
        return f"{len(keys)} output keys for {outputs} outputs: give one key per output"
    for key in keys:
        if not isinstance(key, str) or not key.isidentifier():
            return f"output key {key!r} is not a name (letters, digits and _)"
    repeated = next((key for key in keys if keys.count(key) > 1), None)
    if repeated is not None:
        return f"output key {repeated!r} is given twice"
    return None


def arity_problem(op_name: str, count: int) -> str | None:
    """Why an op cannot take `count` inputs (as `takes 2 to 1,024 inputs, got 1`), or None."""
    low, high = OPS[op_name].arity
    high = MAX_INPUTS if high is None else high
    if low <= count <= high:
        return None
    expected = f"{low}" if low == high else f"{low} to {high:,}"
    return f"{op_name} takes {expected} input{'s' if expected != '1' else ''}, got {count}"


def _index(layers: tuple[Layer, ...]) -> dict[str, Layer]:
    by_name: dict[str, Layer] = {}
    for layer in layers:
        if layer.name == INPUT:
            raise NetworkError(f"a layer cannot be named {INPUT!r}: it names the input")
        if layer.name in by_name:
            raise NetworkError(f"duplicate layer name {layer.name!r}", layer.origin)
        by_name[layer.name] = layer
    return by_name


def _check_references(
    layers: tuple[Layer, ...], by_name: Mapping[str, Layer], outputs: tuple[str, ...]
) -> None:
    for layer in layers:
        for name in layer.inputs:
            if name != INPUT and name not in by_name:
                raise NetworkError(
                    f"layer {layer.name!r}: unknown input {name!r}{suggest(name, by_name)}",
                    layer.origin,
                )
        problem = arity_problem(layer.op_name, len(layer.inputs))
        if problem:
            raise NetworkError(f"layer {layer.name!r}: {problem}", layer.origin)
    for name in outputs:
        if name not in by_name:
            raise NetworkError(f"unknown output {name!r}{suggest(name, by_name)}")


def topological_order(layers: Sequence[Layer]) -> tuple[str, ...]:
    """Layer names in topological order, earliest declared first among those ready (Kahn's).

    NetworkError naming the layers of a cycle, with the origin of its first declared layer.
    """
    position = {layer.name: index for index, layer in enumerate(layers)}
    waiting = {layer.name: sum(p != INPUT for p in layer.inputs) for layer in layers}
    readers: dict[str, list[str]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for producer in layer.inputs:
            if producer != INPUT:
                readers[producer].append(layer.name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = layers[heapq.heappop(ready)].name
        order.append(name)
        for reader in readers[name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, position[reader])
    if len(order) < len(layers):
        blocked = {name for name, count in waiting.items() if count}
        cycle = _find_cycle({layer.name: layer.inputs for layer in layers}, blocked, position)
        shown = [*cycle, cycle[0]] if len(cycle) <= CYCLE_SHOWN else cycle[:CYCLE_SHOWN]
        more = f" -> ... ({len(cycle):,} layers in the cycle)" if len(cycle) > CYCLE_SHOWN else ""
        message = f"cycle between layers: {' -> '.join(shown)}{more}"
        raise NetworkError(message, layers[position[cycle[0]]].origin)
    return tuple(order)


def _find_cycle(
    inputs: Mapping[str, tuple[str, ...]], blocked: set[str], position: Mapping[str, int]
) -> list[str]:
    """Walk back along inputs among layers that never became ready; the walk must loop."""
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(blocked, key=position.__getitem__)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(p for p in inputs[name] if p in blocked)
    cycle = list(reversed(path[seen[name] :]))  # reversed: in the direction data flows
    first = cycle.index(min(cycle, key=position.__getitem__))
    return cycle[first:] + cycle[:first]


__all__ = [
    "INPUT",
    "HasNetwork",
    "Layer",
    "Network",
    "NetworkError",
    "NoOrigins",
    "Origins",
    "Pending",
    "unwrap",
]
