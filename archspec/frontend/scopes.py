"""Names in a spec: the scopes groups and blocks open, and references resolved once all exist."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archspec.errors import suggest
from archspec.ir import INPUT
from archspec.validation import SourcePath


class Ref:
    """A reference to a layer's output, resolved once every name in the spec exists."""


@dataclass(eq=False)
class NodeRef(Ref):
    """A layer (or `input`) known by its node name."""

    name: str


@dataclass(eq=False)
class NameRef(Ref):
    """A name written in the spec, looked up from `scope` outwards."""

    scope: Scope
    text: str
    path: SourcePath
    reader: str  # who reads it, for messages: "layer 'add'" or "outputs"


@dataclass(eq=False)
class Member:
    """What a name in a scope stands for: its output, and its inside for groups and blocks."""

    output: Ref
    scope: Scope | None = None  # set for groups and blocks, so dotted names can reach inside
    # stands in for an entry the schema refused: names leading into it are not errors again
    opaque: bool = False
    # an entry left out by `when`, passing its input on: a present entry may take its name
    # (two alternatives, `when: a == 1` and `when: a > 1`, under one name)
    left_out: bool = False


@dataclass(eq=False)
class Scope:
    """The names of one group or block instance; `last` is the output of its latest child."""

    prefix: str
    env: Mapping[str, Any]
    input: Ref
    parent: Scope | None
    sealed: bool  # a block's names do not see outside it
    members: dict[str, Member] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last: Ref = self.input
        #: The scope's input, then each entry's output in order: what `inputs: -k` reads.
        self.outputs: list[Ref] = [self.input]


class Resolver:
    """Turns references into node names; reports unknown names through `report`."""

    def __init__(self, report: Callable[[SourcePath, str], None]) -> None:
        self.report = report
        # every reference is followed once: chains of left-out layers stay linear in their length
        self.resolved: dict[Ref, str] = {}

    def resolve(self, ref: Ref) -> str:
        """The node name a reference stands for, following left-out layers to what they read."""
        followed: list[Ref] = []
        seen: set[Ref] = set()
        result = ""
        while True:
            known = self.resolved.get(ref)
            if known is not None:
                result = known
                break
            if isinstance(ref, NodeRef):
                result = ref.name
                break
            assert isinstance(ref, NameRef)
            if ref in seen:
                self.report(
                    ref.path, f"{ref.reader}: {ref.text!r} refers to itself through left-out layers"
                )
                break
            seen.add(ref)
            followed.append(ref)
            member = self._lookup(ref)
            if member is None:
                break
            ref = member.output
        for step in followed:
            self.resolved[step] = result
        return result

    def _lookup(self, ref: NameRef) -> Member | None:
        head, *rest = ref.text.split(".")
        scope: Scope | None = ref.scope
        if head == INPUT and not rest:
            return Member(ref.scope.input)
        visible: list[str] = [INPUT]
        while scope is not None:
            member = scope.members.get(head)
            if member is not None and member.opaque:
                return None
            if member is not None:
                return self._descend(ref, member, rest)
            visible += scope.members
            scope = None if scope.sealed else scope.parent
        self.report(
            ref.path, f"{ref.reader}: unknown layer name {ref.text!r}{suggest(ref.text, visible)}"
        )
        return None

    def _descend(self, ref: NameRef, member: Member, rest: list[str]) -> Member | None:
        for part in rest:
            inner = member.scope.members.get(part) if member.scope else None
            if inner is None:
                options = list(member.scope.members) if member.scope else []
                self.report(
                    ref.path,
                    f"{ref.reader}: unknown layer name {ref.text!r}: no {part!r} inside"
                    f"{suggest(part, options)}",
                )
                return None
            member = inner
        return member
