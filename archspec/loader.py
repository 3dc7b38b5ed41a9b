"""`load`: source text -> validated document -> resolved parameters -> layer graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from archspec.errors import Diagnostic, ExpressionError, SpecError, UsageError, suggest
from archspec.expressions import LATE_NAMES, contains_deferred, evaluate_value
from archspec.gcpause import paused_gc
from archspec.graph import build_graph
from archspec.layers import LayerGraph
from archspec.source import SourceDocument, read_source
from archspec.spec import SpecDocument, validation_diagnostics


@dataclass(frozen=True)
class Spec:
    """A validated spec: its document, resolved parameters and expanded layer graph."""

    name: str
    params: dict[str, Any]
    graph: LayerGraph
    document: SpecDocument
    source: SourceDocument

    @property
    def file(self) -> str:
        return self.source.file


def load(
    spec: str | Path, overrides: Mapping[str, Any] | None = None, freeze: Sequence[str] = ()
) -> Spec:
    """Read, validate and expand a spec given as a path or YAML text.

    `overrides` replaces spec-level parameters (`{"num_classes": 10}`); `freeze` adds
    dotted-name patterns of frozen layers to the spec's own (`["*", "!fc"]`). Raises SpecError
    listing every problem found, each with its file, line and column.
    """
    with paused_gc():
        source = read_source(spec)
        document = validate_document(source)
        params = resolve_params(document, source, overrides or {})
        graph = build_graph(document, source, params, freeze)
    return Spec(document.name, params, graph, document, source)


def validate_document(source: SourceDocument) -> SpecDocument:
    if not isinstance(source.data, dict):
        raise SpecError.collect(
            [
                source.error(
                    (),
                    "a spec is a mapping with keys name, input, layers (and params, blocks, "
                    f"outputs, freeze), got {_kind(source.data)}",
                )
            ]
        )
    try:
        return SpecDocument.model_validate(source.data)
    except ValidationError as error:
        raise SpecError.collect(validation_diagnostics(error, source)) from error


def resolve_params(
    document: SpecDocument, source: SourceDocument, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Evaluate spec-level parameters in order; each may use the ones before it."""
    unknown = [key for key in overrides if key not in document.params]
    if unknown:
        known = ", ".join(document.params) or "none"
        raise UsageError(
            f"the spec has no parameter {unknown[0]!r}"
            f"{suggest(unknown[0], document.params)}; its parameters: {known}"
        )
    params: dict[str, Any] = {}
    errors: list[Diagnostic] = []
    for key, raw in document.params.items():
        path = ("params", key)
        if key in LATE_NAMES:
            errors.append(source.error(path, f"{key!r} is a reserved name", at_key=True))
            continue
        try:
            value = evaluate_value(overrides.get(key, raw), params)
        except ExpressionError as error:
            errors.append(source.error(path, f"parameter {key!r}: {error.message}"))
            continue
        if contains_deferred(value):
            errors.append(
                source.error(path, f"parameter {key!r}: in_channels is only known inside a layer")
            )
            continue
        params[key] = value
    if errors:
        raise SpecError.collect(errors)
    return params


def _kind(data: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(data), type(data).__name__
    )
