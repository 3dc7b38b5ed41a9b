"""`load`: source text -> validated document -> resolved parameters -> layer graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archspec.errors import (
    Diagnostic,
    ExpressionError,
    SpecError,
    UsageError,
    shown,
    suggest,
)
from archspec.frontend.expansion import build_network, expansion_errors
from archspec.frontend.expressions import checked_lists, evaluate_value, names_in
from archspec.frontend.spec import (
    SpecDocument,
    broken_entries,
    validation_diagnostics,
    with_stand_ins,
)
from archspec.gcpause import paused_gc
from archspec.ir import Network
from archspec.late import LATE_NAMES, is_late
from archspec.validation import SourcePath

if TYPE_CHECKING:
    import networkx as nx

    from archspec.frontend.source import SourceDocument, SourceOrigins


@dataclass(frozen=True)
class Spec:
    """A validated spec: its document, resolved parameters, and the `Network` the later stages
    take, with the lookup (`origins`) that positions their errors."""

    name: str
    params: dict[str, Any]
    document: SpecDocument
    source: SourceDocument
    network: Network
    origins: SourceOrigins

    @property
    def file(self) -> str:
        return self.source.file

    @property
    def graph(self) -> nx.DiGraph:
        """The network's layers as a networkx DiGraph (see `Network.graph`)."""
        return self.network.graph


def load(
    spec: str | Path | SourceDocument,
    overrides: Mapping[str, Any] | None = None,
    freeze: Sequence[str] = (),
    variant: str | None = None,
) -> Spec:
    """Read, validate and expand a spec given as a path, `zoo:NAME`, `-` (standard input), YAML
    text, or a document already read (`read_source`), whose positions its errors keep.

    `variant` chooses one of the spec's `variants:` (a named set of parameter values);
    `overrides` then replaces spec-level parameters (`{"num_classes": 10}`); `freeze` adds
    dotted-name patterns of frozen layers to the spec's own (`["*", "!fc"]`). Raises SpecError
    listing every problem found, each with its file, line and column.
    """
    # imports yaml: only once a spec is read
    from archspec.frontend.source import SourceDocument, SourceOrigins, read_source

    with paused_gc(), checked_lists():
        source = spec if isinstance(spec, SourceDocument) else read_source(spec)
        document, schema_errors, broken = validate_document(source)
        if schema_errors:
            later = _errors_beside(document, source, overrides or {}, freeze, broken, variant)
            raise SpecError.collect([*schema_errors, *later])
        params = resolve_params(document, source, overrides or {}, variant)
        network = build_network(document, source, params, freeze)
    return Spec(document.name, params, document, source, network, SourceOrigins(source))


def _errors_beside(
    document: SpecDocument,
    source: SourceDocument,
    overrides: Mapping[str, Any],
    freeze: Sequence[str],
    broken: set[SourcePath],
    variant: str | None,
) -> list[Diagnostic]:
    """The errors of the later stages in a spec whose `broken` entries failed the schema:
    independent mistakes are all reported at once."""
    try:
        params = resolve_params(document, source, overrides, variant)
    except SpecError as error:
        return list(error.diagnostics)
    return expansion_errors(document, source, params, freeze, broken)


def validate_document(
    source: SourceDocument,
) -> tuple[SpecDocument, list[Diagnostic], set[SourcePath]]:
    """The document, with the schema's errors and the layer entries that hold them.

    When every error lies inside layer entries, those entries are replaced by stand-ins so that
    the rest can still be checked; otherwise SpecError.
    """
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
        return SpecDocument.model_validate(source.data), [], set()
    except ValidationError as error:
        diagnostics = validation_diagnostics(error, source)
        broken = broken_entries(error, source.data)
        if not broken:
            raise SpecError.collect(diagnostics) from error
        try:
            document = SpecDocument.model_validate(with_stand_ins(source.data, broken))
        except ValidationError:
            raise SpecError.collect(diagnostics) from error
        return document, diagnostics, broken


#: Nesting of lists in an override value (`[[1, 2], [3, 4]]` is 2).
MAX_OVERRIDE_DEPTH = 8


def override_problem(value: object, depth: int = 0) -> str | None:
    """Why `value` cannot replace a parameter, or None: values are what YAML scalars give."""
    if isinstance(value, bool | int | float | str):
        return None
    if isinstance(value, list) and depth < MAX_OVERRIDE_DEPTH:
        return next(filter(None, (override_problem(item, depth + 1) for item in value)), None)
    kind = "a list nested too deeply" if isinstance(value, list) else type(value).__name__
    return f"a value is a number, a boolean, a string (an expression) or a list of them, got {kind}"


def resolve_params(
    document: SpecDocument,
    source: SourceDocument,
    overrides: Mapping[str, Any],
    variant: str | None = None,
) -> dict[str, Any]:
    """Evaluate spec-level parameters in order; each may use the ones before it. A chosen
    variant's values replace the written ones, and overrides replace both."""
    written = _written_params(document, source, variant)
    for key, value in overrides.items():
        if not isinstance(key, str) or key not in document.params:
            known = ", ".join(document.params) or "none"
            raise UsageError(
                f"the spec has no parameter {shown(key)}"
                f"{suggest(str(key), document.params)}; its parameters: {known}"
            )
        problem = override_problem(value)
        if problem:
            raise UsageError(f"override {key!r}: {problem}")
    params: dict[str, Any] = {}
    errors: list[Diagnostic] = []
    names = list(document.params)
    for index, (key, (raw, path)) in enumerate(written.items()):
        if key in LATE_NAMES:
            errors.append(source.error(path, f"{key!r} is a reserved name", at_key=True))
            continue
        later = _later_names(overrides.get(key, raw), names[index:])
        if later:
            which = "itself" if later == key else f"{later!r}, which is defined after it"
            message = f"parameter {key!r} uses {which}; a parameter can use only the ones before it"
            errors.append(source.error(path, message))
            continue
        try:
            value = evaluate_value(overrides.get(key, raw), params)
        except ExpressionError as error:
            if key in overrides:  # not the spec's text: no place in it to point at
                raise UsageError(f"override {key!r}: {error.message}") from error
            errors.append(source.error(path, f"parameter {key!r}: {error.message}"))
            continue
        if is_late(value):
            errors.append(
                source.error(
                    path,
                    f"parameter {key!r}: in_channels and in_shape are only known inside a layer",
                )
            )
            continue
        params[key] = value
    if errors:
        raise SpecError.collect(errors)
    return params


def _written_params(
    document: SpecDocument, source: SourceDocument, variant: str | None
) -> dict[str, tuple[Any, SourcePath]]:
    """Each parameter's written value and where it is written: in `params:`, or in the chosen
    variant. Every variant may set only parameters that `params:` declares."""
    errors = [
        source.error(
            ("variants", name, key),
            f"variant {name!r} sets {key!r}, which is not a parameter"
            f"{suggest(key, document.params)}",
            at_key=True,
        )
        for name, values in document.variants.items()
        for key in values
        if key not in document.params
    ]
    if errors:
        raise SpecError.collect(errors)
    written: dict[str, tuple[Any, SourcePath]] = {
        key: (raw, ("params", key)) for key, raw in document.params.items()
    }
    if variant is None:
        return written
    if variant not in document.variants:
        known = ", ".join(document.variants) or "none"
        raise UsageError(
            f"the spec has no variant {shown(variant)}{suggest(variant, document.variants)}; "
            f"its variants: {known}"
        )
    for key, raw in document.variants[variant].items():
        written[key] = (raw, ("variants", variant, key))
    return written


def _later_names(raw: object, later: list[str]) -> str | None:
    """The first of `later` that `raw` reads; a bare word reads the parameter it names."""
    if isinstance(raw, list):
        return next(filter(None, (_later_names(item, later) for item in raw)), None)
    if not isinstance(raw, str):
        return None
    used = names_in(raw)
    return next((name for name in later if name in used), None)


def _kind(data: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(data), type(data).__name__
    )
