"""Expand blocks, groups, repeats and conditions into the layers of a `Network`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from archspec import ir
from archspec.errors import Diagnostic, ExpressionError, SpecError, shown, suggest
from archspec.frontend import budget
from archspec.frontend.arguments import bind_arguments
from archspec.frontend.budget import ExpansionBudget
from archspec.frontend.expressions import Deferred, evaluate, evaluate_value, render_name
from archspec.frontend.freeze import apply_freeze
from archspec.frontend.layers import LayerDraft, validate_op
from archspec.frontend.names import layer_name_problem
from archspec.frontend.scopes import Member, NameRef, NodeRef, Ref, Resolver, Scope
from archspec.frontend.spec import (
    BlockLayer,
    ConditionalOutput,
    GroupLayer,
    LayerEntry,
    OpLayer,
    SpecDocument,
    is_name_template,
)
from archspec.ir import INPUT, Network, NetworkError, Pending, arity_problem, layout_problem
from archspec.late import is_late
from archspec.ops.base import MAX_DIM
from archspec.ops.registry import OPS, lookup
from archspec.validation import SourcePath

#: Levels of groups and blocks around a layer (`layer1.0.conv1` is 2).
MAX_NESTING = 64
MAX_ERRORS = 200

if TYPE_CHECKING:
    from archspec.frontend.source import SourceDocument


def build_network(
    document: SpecDocument,
    source: SourceDocument,
    params: Mapping[str, Any],
    freeze: Sequence[str] = (),
) -> Network:
    """Expand the document into the IR; raises SpecError with every problem found.

    `freeze` adds patterns to the spec's own `freeze:` list (the CLI's --freeze). A layer whose
    fields read a late name becomes `Pending`; its origin is where it is written.
    """
    expander, outputs, keys = _expand(document, source, params, freeze, set())
    input_shape = _input_shape(document.input, params, expander)
    problem = layout_problem(document.layout, len(input_shape)) if input_shape else None
    if problem:
        expander.error(("layout",), problem)
    if expander.errors:
        raise SpecError.collect(expander.errors)
    if outputs == [INPUT] or not expander.layers:
        raise SpecError.collect([source.error(("layers",), "the network has no layers")])
    layers = [
        ir.Layer(
            layer.name,
            layer.op if layer.op is not None else Pending(layer.op_name, layer.fields),
            layer.inputs,
            layer.frozen,
            origin=layer.source_path,
        )
        for layer in expander.layers.values()
    ]
    try:
        return Network(
            document.name,
            input_shape,
            tuple(layers),
            tuple(outputs),
            tuple(keys),
            layout=document.layout,
        )
    except NetworkError as error:  # a cycle: every other problem is reported above
        where = source.position(error.origin) if error.origin is not None else None
        raise SpecError.collect([Diagnostic(error.message, where)]) from error


def expansion_errors(
    document: SpecDocument,
    source: SourceDocument,
    params: Mapping[str, Any],
    freeze: Sequence[str],
    broken: set[SourcePath],
) -> list[Diagnostic]:
    """The errors expanding finds when the `broken` entries (reported by the schema already)
    are left out without a trace: names that lead into them resolve silently."""
    expander, _, _ = _expand(document, source, params, freeze, broken)
    return expander.errors


def _expand(
    document: SpecDocument,
    source: SourceDocument,
    params: Mapping[str, Any],
    freeze: Sequence[str],
    broken: set[SourcePath],
) -> tuple[_Expander, list[str], list[str]]:
    """The expander after expansion, the output layers, and their keys when named."""
    expander = _Expander(document, source, broken)
    top = Scope("", params, NodeRef(INPUT), None, sealed=True)
    expander.expand_sequence(document.layers, ("layers",), top)
    expander.link()
    keys, output_refs = _written_outputs(document.outputs, top, expander)
    outputs = (
        [expander.resolver.resolve(ref) for ref in output_refs]
        if output_refs
        else [expander.resolver.resolve(top.last)]
    )
    if output_refs:
        _check_outputs(expander, output_refs, outputs)
    apply_freeze(
        expander.layers,
        [(pattern, ("freeze", index)) for index, pattern in enumerate(document.freeze)]
        + [(pattern, None) for pattern in freeze],
        expander.report,
    )
    if output_refs and not outputs and not expander.errors:
        expander.error(("outputs",), "outputs: every output is left out by its condition")
    return expander, outputs, keys


def _input_shape(
    written: list[int | str], params: Mapping[str, Any], expander: _Expander
) -> tuple[int, ...]:
    """The input shape, each size that is an expression (`size`) evaluated over parameters."""
    shape = []
    for index, size in enumerate(written):
        try:
            value = size if isinstance(size, int) else evaluate(size, params)
        except ExpressionError as error:
            expander.error(("input", index), f"input size {size!r}: {error.message}")
            continue
        if isinstance(value, Deferred):
            expander.error(("input", index), "the input's sizes cannot use in_channels or in_shape")
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
            expander.error(
                ("input", index),
                f"input size {size!r} gives {shown(value)}, not a size from 1 to {MAX_DIM:,}",
            )
            continue
        shape.append(value)
    return tuple(shape)


def _written_outputs(
    written: list[str] | dict[str, str | ConditionalOutput] | None, top: Scope, expander: _Expander
) -> tuple[list[str], list[NameRef]]:
    """The outputs' keys (when a mapping names them) and references to their layers, leaving
    out those whose condition is false."""
    if written is None:
        return [], []
    if isinstance(written, list):
        return [], [NameRef(top, name, ("outputs", i), "outputs") for i, name in enumerate(written)]
    keys, refs = [], []
    for key, choice in written.items():
        path: SourcePath = ("outputs", key)
        if isinstance(choice, ConditionalOutput):
            try:
                present = expander.condition(choice.when, top.env)
            except ExpressionError as error:
                expander.error((*path, "when"), f"outputs: {key!r}: {error.message}")
                continue
            if not present:
                continue
            choice, path = choice.layer, (*path, "layer")
        keys.append(key)
        refs.append(NameRef(top, choice, path, "outputs"))
    return keys, refs


def _check_outputs(expander: _Expander, refs: list[NameRef], outputs: list[str]) -> None:
    """Each output is a layer, returned once (ONNX and dict outputs need distinct names)."""
    seen: dict[str, str] = {}
    for ref, output in zip(refs, outputs, strict=True):
        if not output:
            continue  # an unknown name, reported already
        if output == INPUT:
            expander.error(ref.path, f"outputs: {ref.text!r} is the network's input, not a layer")
        elif output in seen:
            same = f" (through {ref.text!r})" if ref.text != output else ""
            expander.error(ref.path, f"outputs: layer {output!r} is listed twice{same}")
        seen.setdefault(output, ref.text)


class _Numbering:
    """The names of a sequence's children: an unnamed one takes its position among the present
    children (as `nn.Sequential` numbers them); entries left out by `when` take no number."""

    def __init__(self) -> None:
        self.next = 0

    def name(self, given: str | None) -> str:
        name = given if given is not None else str(self.next)
        self.next += 1
        return name


def _plain(name: str | None) -> str | None:
    """A written name, or None for an unnamed entry or a template (numbered like unnamed)."""
    return None if name is None or is_name_template(name) else name


def _spliced(entry: LayerEntry) -> bool:
    return isinstance(entry, BlockLayer) and entry.splice


class _Expander:
    def __init__(
        self, document: SpecDocument, source: SourceDocument, broken: set[SourcePath]
    ) -> None:
        self.document = document
        self.source = source
        self.broken = broken
        self.layers: dict[str, LayerDraft] = {}
        self.pending: dict[str, list[Ref]] = {}
        self.errors: list[Diagnostic] = []
        self.block_depth = 0
        self.limits = ExpansionBudget(document, source)
        self.resolver = Resolver(self.error)

    def error(self, path: SourcePath, message: str, *, at_key: bool = False) -> None:
        self.errors.append(self.source.error(path, message, at_key=at_key))
        if len(self.errors) >= MAX_ERRORS:
            # each may search thousands of names for a suggestion: stop, as compilers do
            stop = Diagnostic(f"stopped after {MAX_ERRORS} errors")
            raise SpecError.collect([*self.errors, stop])

    def report(self, path: SourcePath | None, message: str) -> None:
        """An error at `path`, or one from the command line (no path)."""
        if path is None:
            self.errors.append(Diagnostic(f"--freeze: {message}"))
        else:
            self.error(path, message)

    # -- expansion -------------------------------------------------------------------------

    def expand_sequence(
        self,
        entries: list[LayerEntry],
        path: SourcePath,
        scope: Scope,
        numbering: _Numbering | None = None,
    ) -> None:
        """Expand `entries` into `scope`; `numbering` continues an enclosing sequence's (a
        spliced block's layers take the next numbers of the sequence it is spliced into)."""
        numbering = numbering or _Numbering()
        for position, entry in enumerate(entries):
            entry_path = (*path, position)
            if entry_path in self.broken:
                self._stand_in(entry_path, scope, numbering.name(_plain(entry.name)))
                scope.outputs.append(scope.last)
                continue
            present, count = self._condition_and_repeat(entry, entry_path, scope)
            if count is not None:
                self.limits.check_repeat(entry, entry_path, count, len(self.layers))
            entry_input = self._entry_input(entry, entry_path, scope, present)
            if not present:
                self._left_out(entry, entry_path, scope, entry_input)
                scope.outputs.append(entry_input)  # a left-out entry passes its input on
                continue
            if (
                count is None
                or entry.name is None
                or is_name_template(entry.name)
                or _spliced(entry)
            ):
                # each instance is a child of this sequence: unnamed ones take its next numbers,
                # a template names each one (denselayer{i + 1})
                for instance in range(1 if count is None else count):
                    source = entry_input if instance == 0 else scope.last
                    index = None if count is None else instance
                    name = self._instance_name(entry, entry_path, scope, numbering, index)
                    if name is not None:
                        self._instance(entry, entry_path, scope, name, index, source, numbering)
            else:
                name = numbering.name(entry.name)
                self._named_repeat(entry, entry_path, scope, name, count, entry_input)
            scope.outputs.append(scope.last)

    def _instance_name(
        self,
        entry: LayerEntry,
        path: SourcePath,
        scope: Scope,
        numbering: _Numbering,
        instance: int | None,
    ) -> str | None:
        """The name of one instance: written, from a template, or the next number; None (the
        error reported) when a template does not give a usable name."""
        if _spliced(entry):
            return entry.name or ""  # its layers take the numbers, not the entry
        if entry.name is None or not is_name_template(entry.name):
            return numbering.name(entry.name)
        env = dict(scope.env) if instance is None else {**scope.env, "i": instance}
        try:
            name = render_name(entry.name, env)
        except ExpressionError as error:
            self.error((*path, "name"), f"name {entry.name!r}: {error.message}")
            return None
        problem = layer_name_problem(name)
        if problem:
            self.error((*path, "name"), f"name {entry.name!r} gives {problem}")
            return None
        return numbering.name(name)

    def _stand_in(self, path: SourcePath, scope: Scope, name: str) -> None:
        """An entry the schema refused (reported already): an opaque member, so names leading
        into it resolve without adding false errors."""
        self.limits.count_entry(path)
        scope.members.setdefault(name, Member(scope.last, opaque=True))

    def _left_out(
        self, entry: LayerEntry, path: SourcePath, scope: Scope, entry_input: Ref
    ) -> None:
        """An entry whose `when` is false: no layers, and its name passes its input through."""
        self.limits.count_entry(path)
        if entry.name is not None:
            self._add_member(scope, entry.name, Member(entry_input, left_out=True), path)

    def _named_repeat(
        self,
        entry: LayerEntry,
        path: SourcePath,
        scope: Scope,
        name: str,
        count: int,
        entry_input: Ref,
    ) -> None:
        """`repeat` with a name: a group `name` whose instances are numbered 0, 1, ..."""
        container = Scope(f"{scope.prefix}{name}.", scope.env, entry_input, scope, sealed=False)
        for instance in range(count):
            self._instance(entry, path, container, str(instance), instance, container.last)
        self._add_member(scope, name, Member(container.last, container), path)
        scope.last = container.last

    def _instance(
        self,
        entry: LayerEntry,
        path: SourcePath,
        scope: Scope,
        name: str,
        instance: int | None,
        input_ref: Ref,
        numbering: _Numbering | None = None,
    ) -> None:
        """One instance of an entry, named `name` in `scope` ("" for an unnamed spliced block,
        whose layers join `numbering`)."""
        self.limits.count_entry(path)
        if not isinstance(entry, OpLayer) and scope.prefix.count(".") >= MAX_NESTING:
            # torch walks module trees recursively: a name nested deeper would break it
            message = (
                f"layer {scope.prefix + name!r}: groups and blocks nest more than "
                f"{MAX_NESTING} levels deep"
            )
            raise SpecError.collect([self.source.error(path, message)])
        if isinstance(entry, OpLayer):
            member = Member(self._leaf(entry, path, scope, name, input_ref))
        elif isinstance(entry, GroupLayer):
            child = Scope(f"{scope.prefix}{name}.", scope.env, input_ref, scope, sealed=False)
            self.expand_sequence(entry.layers, (*path, "layers"), child)
            member = Member(child.last, child)
        else:
            spliced_into = numbering if entry.splice else None
            member = self._block(entry, path, scope, name, instance, input_ref, spliced_into)
        if name:
            self._add_member(scope, name, member, path)
        scope.last = member.output

    def _leaf(
        self, entry: OpLayer, path: SourcePath, scope: Scope, name: str, input_ref: Ref
    ) -> Ref:
        full_name = scope.prefix + name
        if len(self.layers) >= budget.MAX_LAYERS:
            raise self.limits.too_large(path)
        if full_name in self.layers:
            # within one scope the member check reports it; spliced blocks share no scope
            if name not in scope.members:
                self.error((*path, "name"), f"duplicate layer name {full_name!r}")
            return NodeRef(full_name)
        op_name, named = entry.op, True
        if is_name_template(op_name):  # `op: "{act}"`: the op a parameter names
            try:
                op_name = str(render_name(op_name, scope.env))
            except ExpressionError as error:
                self.error(
                    (*path, "op"), f"layer {full_name!r}: op {shown(entry.op)}: {error.message}"
                )
                named = False
        layer = LayerDraft(full_name, op_name, {}, path)
        self.layers[full_name] = layer
        if entry.inputs is not None:
            self.pending[full_name] = [
                self._input_ref(written, (*path, "inputs", i), scope, f"layer {full_name!r}")
                for i, written in enumerate(entry.inputs)
            ]
        else:
            self.pending[full_name] = [input_ref]
        if not named:
            return NodeRef(full_name)
        try:
            lookup(op_name)
        except KeyError as error:
            computed = f"op {shown(entry.op)} gives {shown(op_name)}: "
            said = error.args[0] if op_name == entry.op else computed + error.args[0]
            self.error((*path, "op"), f"layer {full_name!r}: {said}")
            return NodeRef(full_name)
        for key, raw in (entry.model_extra or {}).items():
            try:
                layer.fields[key] = evaluate_value(raw, scope.env)
            except ExpressionError as error:
                self.error((*path, key), f"layer {full_name!r}: field {key!r}: {error.message}")
                return NodeRef(full_name)
        if not any(is_late(value) for value in layer.fields.values()):
            try:
                layer.op = validate_op(layer, self.source, scope.env)
            except SpecError as error:
                self.errors.extend(error.diagnostics)
        return NodeRef(full_name)

    def _block(
        self,
        entry: BlockLayer,
        path: SourcePath,
        scope: Scope,
        name: str,
        instance: int | None,
        input_ref: Ref,
        spliced_into: _Numbering | None = None,
    ) -> Member:
        full_name = scope.prefix + (name or entry.block)
        definition = self.document.blocks.get(entry.block)
        if definition is None:
            self.error(
                (*path, "block"),
                f"layer {full_name!r}: unknown block {entry.block!r}"
                f"{suggest(entry.block, self.document.blocks)}",
            )
            return Member(input_ref)
        if self.block_depth >= budget.MAX_BLOCK_DEPTH:
            raise SpecError.collect(
                [
                    self.source.error(
                        (*path, "block"),
                        f"blocks nest deeper than {budget.MAX_BLOCK_DEPTH} levels at "
                        f"{full_name!r} (does block {entry.block!r} instantiate itself?)",
                    )
                ]
            )
        errors_before = len(self.errors)
        env = bind_arguments(
            self.document.blocks[entry.block], entry, path, scope, full_name, instance, self.error
        )
        if len(self.errors) > errors_before:
            return Member(input_ref)  # its layers would only repeat the argument error
        # spliced, the block's layers sit beside the entry (features.3, not features.1.0), but
        # their names still resolve among the block's own
        prefix = scope.prefix if spliced_into is not None else f"{full_name}."
        child = Scope(prefix, env, input_ref, scope, sealed=True)
        self.block_depth += 1
        try:
            self.expand_sequence(
                definition.layers, ("blocks", entry.block, "layers"), child, spliced_into
            )
        finally:
            self.block_depth -= 1
        return Member(child.last, child)

    def _condition_and_repeat(
        self, entry: LayerEntry, path: SourcePath, scope: Scope
    ) -> tuple[bool, int | None]:
        """Whether the entry is present, and its repeat count; an error leaves it out."""
        try:
            present = self.condition(entry.when, scope.env)
        except ExpressionError as error:
            self.error((*path, "when"), f"{_describe(entry, scope)}: {error.message}")
            return False, None
        try:
            count = self._repeat(entry, scope.env) if present else None
            # no instance: left out, as `when: false` leaves it (`repeat: depth - 1`, depth 1)
            return (False, None) if count == 0 else (present, count)
        except ExpressionError as error:
            self.error((*path, "repeat"), f"{_describe(entry, scope)}: {error.message}")
            return False, None

    def condition(self, when: bool | str | None, env: Mapping[str, Any]) -> bool:
        """Whether a `when:` holds; ExpressionError when it is no condition."""
        if when is None or isinstance(when, bool):
            return when is not False
        value = evaluate(when, env)
        if isinstance(value, Deferred):
            raise ExpressionError(
                "`when` cannot use in_channels or in_shape: conditions are decided before shapes "
                "are known"
            )
        if not isinstance(value, bool):
            raise ExpressionError(f"`when: {when}` gives {shown(value)}, not true or false")
        return value

    def _repeat(self, entry: LayerEntry, env: Mapping[str, Any]) -> int | None:
        raw = entry.repeat if isinstance(entry, GroupLayer | BlockLayer) else None
        if raw is None:
            return None
        value = evaluate_value(raw, env)
        if isinstance(value, Deferred):
            raise ExpressionError(
                "`repeat` cannot use in_channels or in_shape: the layers are counted before "
                "shapes are known"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 0 <= value <= budget.MAX_LAYERS
        ):
            raise ExpressionError(
                f"repeat must be an integer from 0 to {budget.MAX_LAYERS}, got {shown(value)}"
            )
        return value

    def _entry_input(self, entry: LayerEntry, path: SourcePath, scope: Scope, present: bool) -> Ref:
        if entry.inputs is None or isinstance(entry, OpLayer):
            if isinstance(entry, OpLayer) and entry.inputs:
                # a present op resolves its inputs with it, and reports their problems then
                return self._input_ref(
                    entry.inputs[0],
                    (*path, "inputs", 0),
                    scope,
                    _describe(entry, scope),
                    quiet=present,
                )
            return scope.last
        if len(entry.inputs) != 1:
            self.error(
                (*path, "inputs"),
                f"{_describe(entry, scope)}: a group or block reads one "
                f"input, got {len(entry.inputs)}",
            )
        return self._input_ref(
            entry.inputs[0], (*path, "inputs", 0), scope, _describe(entry, scope)
        )

    def _input_ref(
        self, written: str | int, path: SourcePath, scope: Scope, reader: str, quiet: bool = False
    ) -> Ref:
        """One written input: a name, a template that gives one (`"{skip}"`), or a count of
        entries back in this sequence (-2: the output of the entry before the previous one)."""
        if isinstance(written, int) and written < 0:
            back = len(scope.outputs) + written  # outputs[0] is the sequence's input
            if back < 0:
                before = len(scope.outputs) - 1
                if quiet:
                    return scope.last
                self.error(
                    path,
                    f"{reader}: input {written} reaches before its sequence ({before} "
                    f"entr{'y comes' if before == 1 else 'ies come'} before it)",
                )
                return scope.last
            return scope.outputs[back]
        text = str(written)
        if is_name_template(text):
            try:
                text = render_name(text, scope.env)
            except ExpressionError as error:
                if not quiet:
                    self.error(path, f"{reader}: input {written!r}: {error.message}")
                return scope.last
        return NameRef(scope, text, path, reader)

    def _add_member(self, scope: Scope, name: str, member: Member, path: SourcePath) -> None:
        existing = scope.members.get(name)
        if name == INPUT:
            self.error((*path, "name"), f"a layer cannot be named {INPUT!r}: it names the input")
        elif existing is not None and (member.left_out or existing.left_out):
            # alternatives under one name: the present one keeps it
            if member.left_out:
                return
        elif existing is not None:
            self.error((*path, "name"), f"duplicate layer name {scope.prefix + name!r}")
        scope.members[name] = member

    # -- linking ---------------------------------------------------------------------------

    def link(self) -> None:
        """Resolve every layer's inputs to node names."""
        for name, layer in self.layers.items():
            layer.inputs = tuple(self.resolver.resolve(ref) for ref in self.pending[name])
            self._check_arity(layer)

    def _check_arity(self, layer: LayerDraft) -> None:
        if layer.op_name not in OPS:
            return  # reported already where the op is named
        problem = arity_problem(layer.op_name, len(layer.inputs))
        if problem:
            self.error((*layer.source_path, "inputs"), f"layer {layer.name!r}: {problem}")


def _describe(entry: LayerEntry, scope: Scope) -> str:
    return (
        f"layer {scope.prefix + entry.name!r}"
        if entry.name
        else f"layer in {scope.prefix.rstrip('.') or 'layers'!r}"
    )
