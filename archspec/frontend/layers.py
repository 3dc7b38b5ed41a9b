"""The expanded network: its layers, their order, and the check of each layer's op fields."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archspec.errors import SpecError, suggest
from archspec.frontend.spec import validation_diagnostics
from archspec.ops.base import Op, Shape
from archspec.ops.registry import OPS, build_op
from archspec.validation import SourcePath

if TYPE_CHECKING:
    import networkx as nx

    from archspec.frontend.source import SourceDocument

#: The graph node standing for the network input; `input` in a spec names it (or a block's input).
INPUT = "input"
#: Layers of a cycle named in its error; a cycle through 100,000 layers is not listed whole.
CYCLE_SHOWN = 8


@dataclass
class Layer:
    """One leaf layer of the expanded network."""

    name: str  # dotted path: layer1.0.conv1
    op_name: str
    fields: dict[str, Any]  # evaluated; a Deferred waits for the input shape (in_channels)
    source_path: SourcePath  # where the layer is written, for error positions
    op: Op | None = None  # validated now, or during analysis when a field was deferred
    inputs: tuple[str, ...] = ()
    frozen: bool = False


@dataclass
class LayerGraph:
    """The expanded network: a DAG whose nodes are `input` and the dotted layer names."""

    by_name: dict[str, Layer]
    input_shape: Shape
    outputs: tuple[str, ...]
    order: list[str]  # layer names in topological order, ties broken by spec order

    def layer(self, name: str) -> Layer:
        return self.by_name[name]

    def layers(self) -> Iterator[Layer]:
        for name in self.order:
            yield self.by_name[name]

    def __len__(self) -> int:
        return len(self.order)

    @cached_property
    def readers(self) -> dict[str, int]:
        """How many layers read each layer's output."""
        counts = dict.fromkeys(self.by_name, 0)
        for layer in self.by_name.values():
            for producer in layer.inputs:
                if producer != INPUT:
                    counts[producer] += 1
        return counts

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The layers as a networkx DiGraph: node `input` and one node per layer (attribute
        `layer`), an edge per input. Built on first use: networkx costs the CLI 0.2 s to import.
        """
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_node(INPUT, layer=None)
        for name in self.order:
            graph.add_node(name, layer=self.by_name[name])
        for name in self.order:
            graph.add_edges_from((producer, name) for producer in self.by_name[name].inputs)
        return graph


def validate_op(layer: Layer, source: SourceDocument, env: Mapping[str, Any]) -> Op:
    """Check a layer's evaluated fields against its op's model."""
    op_class = OPS[layer.op_name]

    def hint(value: Any) -> str:
        if isinstance(value, str) and value.isidentifier():
            return f"; {value!r} is not a parameter{suggest(value, env)}"
        return ""

    try:
        return build_op(layer.op_name, layer.fields)
    except ValidationError as error:
        fields = [key for key in op_class.model_fields if key != "op"]
        context = f"layer {layer.name!r}: {layer.op_name} "
        raise SpecError.collect(
            validation_diagnostics(
                error, source, layer.source_path, context, dict.fromkeys(fields), hint
            )
        ) from error


def topological_order(layers: Mapping[str, Layer], source: SourceDocument) -> list[str]:
    """Layers in topological order, earliest written first among those ready (Kahn's algorithm)."""
    position = {name: index for index, name in enumerate(layers)}
    waiting = {name: sum(p != INPUT for p in layer.inputs) for name, layer in layers.items()}
    readers: dict[str, list[str]] = {name: [] for name in layers}
    for name, layer in layers.items():
        for producer in layer.inputs:
            if producer != INPUT:
                readers[producer].append(name)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    names = list(layers)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for reader in readers[name]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, position[reader])
    if len(order) < len(layers):
        cycle = _find_cycle(layers, {name for name, count in waiting.items() if count}, position)
        first = layers[cycle[0]]
        shown = (
            [*cycle[:CYCLE_SHOWN], cycle[0]] if len(cycle) <= CYCLE_SHOWN else cycle[:CYCLE_SHOWN]
        )
        more = f" -> ... ({len(cycle):,} layers in the cycle)" if len(cycle) > CYCLE_SHOWN else ""
        message = f"cycle between layers: {' -> '.join(shown)}{more}"
        raise SpecError.collect([source.error(first.source_path, message)])
    return order


def _find_cycle(
    layers: Mapping[str, Layer], blocked: set[str], position: Mapping[str, int]
) -> list[str]:
    """Walk back along inputs among layers that never became ready; the walk must loop."""
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(blocked, key=position.__getitem__)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(p for p in layers[name].inputs if p in blocked)
    cycle = list(reversed(path[seen[name] :]))  # reversed: in the direction data flows
    first = cycle.index(min(cycle, key=position.__getitem__))
    return cycle[first:] + cycle[:first]
