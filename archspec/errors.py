"""Errors and diagnostics, rendered compiler-style as `FILE:LINE:COL: error: message`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a spec file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One message about a spec, tied to the place in the file it is about."""

    message: str
    position: Position | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        return f"{where}{self.severity}: {self.message}"

    def to_json(self) -> dict[str, object]:
        where = self.position
        return {
            "severity": self.severity,
            "message": self.message,
            "file": where.file if where else None,
            "line": where.line if where else None,
            "column": where.column if where else None,
        }


class ArchspecError(Exception):
    """Base of every error archspec reports to a user."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics) or (Diagnostic(message),)

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


class SpecError(ArchspecError):
    """The spec is not valid: syntax, schema, names, expressions or shapes."""

    @classmethod
    def collect(cls, diagnostics: Sequence[Diagnostic]) -> SpecError:
        folded = fold_instances(diagnostics)
        count = len(folded)
        return cls(f"{count} error{'s' if count != 1 else ''} in spec", folded)


class ShapeError(ArchspecError):
    """An op cannot accept the shapes it is given; the analysis adds the layer's position."""


class ExpressionError(ArchspecError):
    """An expression in a spec cannot be evaluated."""


class GeneratedSourceError(ArchspecError):
    """A compiled network that standalone PyTorch source cannot reproduce exactly."""


class UsageError(ArchspecError):
    """A command-line argument or API argument is wrong."""


#: Names compared with a misspelt one; difflib compares each at a cost of its length squared.
MAX_SUGGESTION_CANDIDATES = 2000


def suggest(name: str, candidates: Iterable[str], count: int = 1) -> str:
    """Return ` (did you mean 'x'?)` for the closest candidate (` (did you mean 'x', 'y'?)` for
    up to `count` of them, closest first), or an empty string."""
    import difflib  # only errors need it; kept off the start-up path of every command

    # a ratio 2M/(a+b) of 0.6 needs lengths within a factor of 7/3 of each other; and a bound on
    # the count, so that 200,000 names stay quick
    near = [text for text in candidates if 3 * len(text) <= 7 * len(name) <= 49 * len(text) / 3]
    close = difflib.get_close_matches(name, near[:MAX_SUGGESTION_CANDIDATES], n=count, cutoff=0.6)
    quoted = ", ".join(f"'{match}'" for match in close)
    return f" (did you mean {quoted}?)" if close else ""


#: Characters of a user's value quoted in a message; a 1 MB string must not make a 1 MB message.
SHOWN_LENGTH = 60


def shown(value: object) -> str:
    """`repr(value)`, cut to SHOWN_LENGTH characters; safe for integers of any size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int inside a list beyond Python's digit limit
        return f"a {type(value).__name__}"
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 1] + "…"


_LAYER_NAME = re.compile(r"^layer '[^']*': ")


def fold_instances(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """One diagnostic per place and message, sorted by position.

    A mistake inside a block is met once per instance; it is reported once, at the first
    instance, with the number of other instances that share it.
    """
    first: dict[tuple[Position | None, Severity, str], Diagnostic] = {}
    repeats: dict[tuple[Position | None, Severity, str], int] = {}
    for diagnostic in diagnostics:
        key = (diagnostic.position, diagnostic.severity, _LAYER_NAME.sub("", diagnostic.message))
        if key in first:
            repeats[key] += 1
        else:
            first[key], repeats[key] = diagnostic, 0
    folded = []
    for place, diagnostic in first.items():
        more = repeats[place]
        suffix = f" (and {more} more instance{'s' if more > 1 else ''})" if more else ""
        folded.append(
            Diagnostic(diagnostic.message + suffix, diagnostic.position, diagnostic.severity)
        )
    return sorted(folded, key=_place)


def _place(diagnostic: Diagnostic) -> tuple[str, int, int]:
    where = diagnostic.position
    return (where.file, where.line, where.column) if where else ("", 0, 0)
