"""Expand blocks, groups and repeats into a networkx graph of layers with dotted names."""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archspec.errors import Diagnostic, ExpressionError, SpecError, suggest
from archspec.expressions import Deferred, contains_deferred, evaluate, evaluate_value
from archspec.ops.base import Op, Shape
from archspec.ops.registry import OPS
from archspec.source import SourceDocument, SourcePath

if TYPE_CHECKING:
    import networkx as nx

from archspec.spec import (
    BlockLayer,
    GroupLayer,
    LayerEntry,
    OpLayer,
    SpecDocument,
    validation_diagnostics,
)

#: The graph node standing for the network input; `input` in a spec names it (or a block's input).
INPUT = "input"
#: Bound on expanded layers and on block nesting: a `repeat: 1000000000` is an error, not a hang.
MAX_LAYERS = 200_000
MAX_BLOCK_DEPTH = 32
INSTANCES_PER_LAYER = 4


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


class _Ref:
    """A reference to a layer's output, resolved once every name in the spec exists."""


@dataclass(eq=False)
class _Node(_Ref):
    name: str


@dataclass(eq=False)
class _Name(_Ref):
    scope: _Scope
    text: str
    path: SourcePath
    reader: str  # who reads it, for messages: "layer 'add'" or "outputs"


@dataclass(eq=False)
class _Member:
    output: _Ref
    scope: _Scope | None = None  # set for groups and blocks, so dotted names can reach inside


@dataclass(eq=False)
class _Scope:
    prefix: str
    env: Mapping[str, Any]
    input: _Ref
    parent: _Scope | None
    sealed: bool  # a block's names do not see outside it
    members: dict[str, _Member] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last: _Ref = self.input


def build_graph(
    document: SpecDocument, source: SourceDocument, params: Mapping[str, Any]
) -> LayerGraph:
    """Expand the document into a LayerGraph; raises SpecError with every problem found."""
    expander = _Expander(document, source)
    top = _Scope("", params, _Node(INPUT), None, sealed=True)
    expander.expand_sequence(document.layers, ("layers",), top)
    expander.link()
    output_refs = [
        _Name(top, name, ("outputs", i), "outputs") for i, name in enumerate(document.outputs or [])
    ]
    outputs = (
        [expander.resolve(ref) for ref in output_refs]
        if output_refs
        else [expander.resolve(top.last)]
    )
    expander.apply_freeze(document.freeze)
    if expander.errors:
        raise SpecError.collect(expander.errors)
    order = _ordered(expander)
    if outputs == [INPUT] or not order:
        raise SpecError.collect([source.error(("layers",), "the network has no layers")])
    return LayerGraph(expander.layers, tuple(document.input), tuple(outputs), order)


class _Expander:
    def __init__(self, document: SpecDocument, source: SourceDocument) -> None:
        self.document = document
        self.source = source
        self.layers: dict[str, Layer] = {}
        self.pending: dict[str, list[_Ref]] = {}
        self.errors: list[Diagnostic] = []
        self.block_depth = 0
        self.instances = 0

    def error(self, path: SourcePath, message: str, *, at_key: bool = False) -> None:
        self.errors.append(self.source.error(path, message, at_key=at_key))

    # -- expansion -------------------------------------------------------------------------

    def expand_sequence(self, entries: list[LayerEntry], path: SourcePath, scope: _Scope) -> None:
        index = 0  # position among present children: absent ones take no number, as in torchvision
        for position, entry in enumerate(entries):
            entry_path = (*path, position)
            present, count = self._condition_and_repeat(entry, entry_path, scope)
            if count is not None:
                self._check_size(entry, entry_path, count)
            entry_input = self._entry_input(entry, entry_path, scope)
            if not present:
                if entry.name is not None:
                    self._add_member(scope, entry.name, _Member(entry_input), entry_path)
                continue
            if count is not None and entry.name is None:
                for instance in range(count):
                    self._instance(
                        entry,
                        entry_path,
                        scope,
                        str(index),
                        instance,
                        entry_input if instance == 0 else scope.last,
                    )
                    index += 1
                continue
            name = entry.name if entry.name is not None else str(index)
            index += 1
            if count is None:
                self._instance(entry, entry_path, scope, name, None, entry_input)
                continue
            container = _Scope(
                f"{scope.prefix}{name}.", scope.env, entry_input, scope, sealed=False
            )
            for instance in range(count):
                self._instance(
                    entry, entry_path, container, str(instance), instance, container.last
                )
            self._add_member(scope, name, _Member(container.last, container), entry_path)
            scope.last = container.last

    def _count_instance(self, path: SourcePath) -> None:
        # groups and blocks count too, so repeats of left-out layers cannot spin forever
        self.instances += 1
        if self.instances > INSTANCES_PER_LAYER * MAX_LAYERS:
            raise self._too_large(path)

    def _too_large(self, path: SourcePath) -> SpecError:
        message = f"the spec expands to more than {MAX_LAYERS} layers"
        return SpecError.collect([self.source.error(path, message)])

    def _check_size(self, entry: LayerEntry, path: SourcePath, count: int) -> None:
        """Fail before expanding `count` copies that would certainly pass the layer limit."""
        if len(self.layers) + count * self._fewest_per_copy(entry, set()) > MAX_LAYERS:
            raise self._too_large((*path, "repeat"))

    def _fewest_per_copy(self, entry: LayerEntry, visiting: set[str]) -> int:
        """A lower bound of the layers one copy of `entry` expands to (conditional ones count 0)."""
        if isinstance(entry, OpLayer):
            return 1
        if isinstance(entry, GroupLayer):
            children = entry.layers
        elif entry.block in self.document.blocks and entry.block not in visiting:
            children = self.document.blocks[entry.block].layers
            visiting = visiting | {entry.block}
        else:
            return 0
        total = 0
        for child in children:
            if child.when is None:
                copies = child.repeat if isinstance(child, GroupLayer | BlockLayer) else None
                total += (copies if isinstance(copies, int) else 1) * self._fewest_per_copy(
                    child, visiting
                )
        return total

    def _instance(
        self,
        entry: LayerEntry,
        path: SourcePath,
        scope: _Scope,
        name: str,
        instance: int | None,
        input_ref: _Ref,
    ) -> None:
        self._count_instance(path)
        if isinstance(entry, OpLayer):
            member = _Member(self._leaf(entry, path, scope, name, input_ref))
        elif isinstance(entry, GroupLayer):
            child = _Scope(f"{scope.prefix}{name}.", scope.env, input_ref, scope, sealed=False)
            self.expand_sequence(entry.layers, (*path, "layers"), child)
            member = _Member(child.last, child)
        else:
            member = self._block(entry, path, scope, name, instance, input_ref)
        self._add_member(scope, name, member, path)
        scope.last = member.output

    def _leaf(
        self, entry: OpLayer, path: SourcePath, scope: _Scope, name: str, input_ref: _Ref
    ) -> _Ref:
        full_name = scope.prefix + name
        if len(self.layers) >= MAX_LAYERS:
            raise self._too_large(path)
        layer = Layer(full_name, entry.op, {}, path)
        self.layers[full_name] = layer
        if entry.inputs is not None:
            self.pending[full_name] = [
                _Name(scope, text, (*path, "inputs", i), f"layer {full_name!r}")
                for i, text in enumerate(entry.inputs)
            ]
        else:
            self.pending[full_name] = [input_ref]
        op_class = OPS.get(entry.op)
        if op_class is None:
            self.error(
                (*path, "op"),
                f"layer {full_name!r}: unknown op {entry.op!r}"
                f"{suggest(entry.op, OPS)}; known ops: {', '.join(sorted(OPS))}",
            )
            return _Node(full_name)
        for key, raw in (entry.model_extra or {}).items():
            try:
                layer.fields[key] = evaluate_value(raw, scope.env)
            except ExpressionError as error:
                self.error((*path, key), f"layer {full_name!r}: field {key!r}: {error.message}")
                return _Node(full_name)
        if not any(contains_deferred(value) for value in layer.fields.values()):
            try:
                layer.op = validate_op(layer, self.source, scope.env)
            except SpecError as error:
                self.errors.extend(error.diagnostics)
        return _Node(full_name)

    def _block(
        self,
        entry: BlockLayer,
        path: SourcePath,
        scope: _Scope,
        name: str,
        instance: int | None,
        input_ref: _Ref,
    ) -> _Member:
        full_name = scope.prefix + name
        definition = self.document.blocks.get(entry.block)
        if definition is None:
            self.error(
                (*path, "block"),
                f"layer {full_name!r}: unknown block {entry.block!r}"
                f"{suggest(entry.block, self.document.blocks)}",
            )
            return _Member(input_ref)
        if self.block_depth >= MAX_BLOCK_DEPTH:
            raise SpecError.collect(
                [
                    self.source.error(
                        (*path, "block"),
                        f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels at "
                        f"{full_name!r} (does block {entry.block!r} instantiate itself?)",
                    )
                ]
            )
        errors_before = len(self.errors)
        env = self._bind_arguments(entry, path, scope, full_name, instance)
        if len(self.errors) > errors_before:
            return _Member(input_ref)  # its layers would only repeat the argument error
        child = _Scope(f"{full_name}.", env, input_ref, scope, sealed=True)
        self.block_depth += 1
        try:
            self.expand_sequence(definition.layers, ("blocks", entry.block, "layers"), child)
        finally:
            self.block_depth -= 1
        return _Member(child.last, child)

    def _bind_arguments(
        self,
        entry: BlockLayer,
        path: SourcePath,
        scope: _Scope,
        full_name: str,
        instance: int | None,
    ) -> dict[str, Any]:
        definition = self.document.blocks[entry.block]
        declared = definition.params
        given = {**entry.args, **(entry.first if instance in (None, 0) else {})}
        env: dict[str, Any] = dict(self.document_params(scope))
        for key, raw in given.items():
            where = (
                *path,
                "first" if key in entry.first and instance in (None, 0) else "args",
                key,
            )
            if key not in declared:
                self.error(
                    where,
                    f"layer {full_name!r}: block {entry.block!r} has no parameter "
                    f"{key!r}{suggest(key, declared)}; it takes {', '.join(declared) or 'none'}",
                    at_key=True,
                )
                continue
            try:
                env[key] = evaluate_value(raw, scope.env)
            except ExpressionError as error:
                self.error(where, f"layer {full_name!r}: argument {key!r}: {error.message}")
        for key, default in declared.items():
            if key in given:
                continue
            if default is None:
                self.error(
                    path, f"layer {full_name!r}: block {entry.block!r} needs argument {key!r}"
                )
                continue
            try:
                env[key] = evaluate_value(default, env)
            except ExpressionError as error:
                self.error(
                    ("blocks", entry.block, "params", key),
                    f"block {entry.block!r}: default of {key!r}: {error.message}",
                )
        return env

    def document_params(self, scope: _Scope) -> Mapping[str, Any]:
        """Spec-level parameters, which every block also sees."""
        while scope.parent is not None:
            scope = scope.parent
        return scope.env

    def _condition_and_repeat(
        self, entry: LayerEntry, path: SourcePath, scope: _Scope
    ) -> tuple[bool, int | None]:
        """Whether the entry is present, and its repeat count; an error leaves it out."""
        try:
            present = self._condition(entry, scope.env)
        except ExpressionError as error:
            self.error((*path, "when"), f"{_describe(entry, scope)}: {error.message}")
            return False, None
        try:
            return present, self._repeat(entry, scope.env) if present else None
        except ExpressionError as error:
            self.error((*path, "repeat"), f"{_describe(entry, scope)}: {error.message}")
            return False, None

    def _condition(self, entry: LayerEntry, env: Mapping[str, Any]) -> bool:
        if entry.when is None or isinstance(entry.when, bool):
            return entry.when is not False
        value = evaluate(entry.when, env)
        if isinstance(value, Deferred):
            raise ExpressionError(
                "`when` cannot use in_channels: conditions are decided before shapes are known"
            )
        if not isinstance(value, bool):
            raise ExpressionError(f"`when: {entry.when}` gives {value!r}, not true or false")
        return value

    def _repeat(self, entry: LayerEntry, env: Mapping[str, Any]) -> int | None:
        raw = entry.repeat if isinstance(entry, GroupLayer | BlockLayer) else None
        if raw is None:
            return None
        value = evaluate_value(raw, env)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LAYERS:
            raise ExpressionError(
                f"repeat must be an integer from 1 to {MAX_LAYERS}, got {value!r}"
            )
        return value

    def _entry_input(self, entry: LayerEntry, path: SourcePath, scope: _Scope) -> _Ref:
        if entry.inputs is None or isinstance(entry, OpLayer):
            if isinstance(entry, OpLayer) and entry.inputs:
                return _Name(scope, entry.inputs[0], (*path, "inputs", 0), _describe(entry, scope))
            return scope.last
        if len(entry.inputs) != 1:
            self.error(
                (*path, "inputs"),
                f"{_describe(entry, scope)}: a group or block reads one "
                f"input, got {len(entry.inputs)}",
            )
        return _Name(scope, entry.inputs[0], (*path, "inputs", 0), _describe(entry, scope))

    def _add_member(self, scope: _Scope, name: str, member: _Member, path: SourcePath) -> None:
        if name == INPUT:
            self.error((*path, "name"), f"a layer cannot be named {INPUT!r}: it names the input")
        elif name in scope.members:
            self.error((*path, "name"), f"duplicate layer name {scope.prefix + name!r}")
        scope.members[name] = member

    # -- linking ---------------------------------------------------------------------------

    def resolve(self, ref: _Ref, seen: frozenset[int] = frozenset()) -> str:
        """The node name a reference stands for, following left-out layers to what they read."""
        if isinstance(ref, _Node):
            return ref.name
        assert isinstance(ref, _Name)
        if id(ref) in seen:
            self.error(
                ref.path, f"{ref.reader}: {ref.text!r} refers to itself through left-out layers"
            )
            return ""
        member = self._lookup(ref)
        if member is None:
            return ""
        return self.resolve(member.output, seen | {id(ref)})

    def _lookup(self, ref: _Name) -> _Member | None:
        head, *rest = ref.text.split(".")
        scope: _Scope | None = ref.scope
        if head == INPUT and not rest:
            return _Member(ref.scope.input)
        visible: list[str] = [INPUT]
        while scope is not None:
            member = scope.members.get(head)
            if member is not None:
                return self._descend(ref, member, rest)
            visible += scope.members
            scope = None if scope.sealed else scope.parent
        self.error(
            ref.path, f"{ref.reader}: unknown layer name {ref.text!r}{suggest(ref.text, visible)}"
        )
        return None

    def _descend(self, ref: _Name, member: _Member, rest: list[str]) -> _Member | None:
        for part in rest:
            inner = member.scope.members.get(part) if member.scope else None
            if inner is None:
                options = list(member.scope.members) if member.scope else []
                self.error(
                    ref.path,
                    f"{ref.reader}: unknown layer name {ref.text!r}: no {part!r} inside"
                    f"{suggest(part, options)}",
                )
                return None
            member = inner
        return member

    def link(self) -> None:
        """Resolve every layer's inputs to node names."""
        for name, layer in self.layers.items():
            layer.inputs = tuple(self.resolve(ref) for ref in self.pending[name])
            self._check_arity(layer)

    def _check_arity(self, layer: Layer) -> None:
        op_class = OPS.get(layer.op_name)
        if op_class is None:
            return
        low, high = op_class.arity
        count = len(layer.inputs)
        if count < low or (high is not None and count > high):
            expected = (
                f"{low}" if low == high else f"at least {low}" if high is None else f"{low}-{high}"
            )
            self.error(
                (*layer.source_path, "inputs"),
                f"layer {layer.name!r}: {layer.op_name} takes "
                f"{expected} input{'s' if expected != '1' else ''}, got {count}",
            )

    def apply_freeze(self, patterns: list[str]) -> None:
        """Freeze every layer whose name, or the name of a group holding it, matches a pattern."""
        prefixes = {name: _prefixes(name) for name in self.layers}
        for index, pattern in enumerate(patterns):
            matched = False
            for name, layer in self.layers.items():
                if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes[name]):
                    layer.frozen = matched = True
            if not matched:
                groups = {prefix for names in prefixes.values() for prefix in names[:-1]}
                candidates = [*groups, *(f"{group}.*" for group in groups), *self.layers]
                self.error(
                    ("freeze", index),
                    f"freeze pattern {pattern!r} matches no layer{suggest(pattern, candidates)}",
                )


def _prefixes(name: str) -> list[str]:
    """`layer1.0.conv1` -> [`layer1`, `layer1.0`, `layer1.0.conv1`]."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def validate_op(layer: Layer, source: SourceDocument, env: Mapping[str, Any]) -> Op:
    """Check a layer's evaluated fields against its op's model."""
    op_class = OPS[layer.op_name]

    def hint(value: Any) -> str:
        if isinstance(value, str) and value.isidentifier():
            return f"; {value!r} is not a parameter{suggest(value, env)}"
        return ""

    try:
        key = _cache_key(layer.fields)
        if key is None:
            return op_class.model_validate({**layer.fields, "op": layer.op_name})
        return _validated(layer.op_name, key)
    except ValidationError as error:
        fields = [key for key in op_class.model_fields if key != "op"]
        context = f"layer {layer.name!r}: {layer.op_name} "
        raise SpecError.collect(
            validation_diagnostics(
                error, source, layer.source_path, context, dict.fromkeys(fields), hint
            )
        ) from error


@lru_cache(maxsize=4096)
def _validated(op_name: str, key: tuple[tuple[str, type, Any], ...]) -> Op:
    """Ops are frozen, so layers written alike (every `relu`, every 3x3 conv of 64) share one."""
    fields = {
        name: [item for _, item in value] if kind is list else value for name, kind, value in key
    }
    return OPS[op_name].model_validate({**fields, "op": op_name})


def _cache_key(fields: Mapping[str, Any]) -> tuple[tuple[str, type, Any], ...] | None:
    """Fields as a hashable key that tells `true` from 1 and 1.0; None when a value is nested."""
    key = []
    for name, value in fields.items():
        if isinstance(value, list):
            if any(isinstance(item, list | dict) for item in value):
                return None
            key.append((name, list, tuple((type(item), item) for item in value)))
        elif isinstance(value, dict):
            return None
        else:
            key.append((name, type(value), value))
    return tuple(key)


def _ordered(expander: _Expander) -> list[str]:
    """Layers in topological order, earliest written first among those ready (Kahn's algorithm)."""
    layers = expander.layers
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
        cycle = _find_cycle(layers, {name for name, count in waiting.items() if count})
        first = layers[cycle[0]]
        message = f"cycle between layers: {' -> '.join([*cycle, cycle[0]])}"
        raise SpecError.collect([expander.source.error(first.source_path, message)])
    return order


def _find_cycle(layers: Mapping[str, Layer], blocked: set[str]) -> list[str]:
    """Walk back along inputs among layers that never became ready; the walk must loop."""
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(blocked, key=list(layers).index)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(p for p in layers[name].inputs if p in blocked)
    cycle = list(reversed(path[seen[name] :]))  # reversed: in the direction data flows
    first = cycle.index(min(cycle, key=list(layers).index))
    return cycle[first:] + cycle[:first]


def _describe(entry: LayerEntry, scope: _Scope) -> str:
    return (
        f"layer {scope.prefix + entry.name!r}"
        if entry.name
        else f"layer in {scope.prefix or 'layers'!r}"
    )
