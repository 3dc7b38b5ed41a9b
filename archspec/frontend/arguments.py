"""A block instance's arguments: given ones evaluated where they are written, defaults inside."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from archspec.errors import ExpressionError, suggest
from archspec.frontend.expressions import evaluate_value
from archspec.frontend.scopes import Scope
from archspec.frontend.spec import BlockDefinition, BlockLayer
from archspec.validation import SourcePath


class ReportError(Protocol):
    def __call__(self, path: SourcePath, message: str, *, at_key: bool = False) -> None: ...


def bind_arguments(
    definition: BlockDefinition,
    entry: BlockLayer,
    path: SourcePath,
    scope: Scope,
    full_name: str,
    instance: int | None,
    error: ReportError,
) -> dict[str, Any]:
    """The environment of one instance of a block: spec-level parameters, the arguments given
    (the first instance also takes `first:`), then the defaults of those not given.

    Arguments are evaluated in the caller's scope, with `i` the instance's index in a repeat
    (`planes: "64 * 2 ** i"`), defaults in the block's; problems go to `error` and leave the
    argument out.
    """
    declared = definition.params
    first = instance in (None, 0)
    given = {**entry.args, **(entry.first if first else {})}
    caller = scope.env if instance is None else {**scope.env, "i": instance}
    env: dict[str, Any] = dict(document_params(scope))
    for key, raw in given.items():
        where = (*path, "first" if key in entry.first and first else "args", key)
        if key not in declared:
            error(
                where,
                f"layer {full_name!r}: block {entry.block!r} has no parameter "
                f"{key!r}{suggest(key, declared)}; it takes {', '.join(declared) or 'none'}",
                at_key=True,
            )
            continue
        try:
            env[key] = evaluate_value(raw, caller)
        except ExpressionError as problem:
            error(where, f"layer {full_name!r}: argument {key!r}: {problem.message}")
    for key, default in declared.items():
        if key in given:
            continue
        if default is None:
            error(path, f"layer {full_name!r}: block {entry.block!r} needs argument {key!r}")
            continue
        try:
            env[key] = evaluate_value(default, env)
        except ExpressionError as problem:
            error(
                ("blocks", entry.block, "params", key),
                f"block {entry.block!r}: default of {key!r}: {problem.message}",
            )
    return env


def document_params(scope: Scope) -> Mapping[str, Any]:
    """Spec-level parameters, which every block also sees."""
    while scope.parent is not None:
        scope = scope.parent
    return scope.env
