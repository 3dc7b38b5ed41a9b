"""What the command prints: diagnostics in three formats, colour, and progress on a terminal."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from archspec.errors import Diagnostic

#: Formats of diagnostics: for people, for programs (editors), for GitHub Actions' annotations.
DIAGNOSTIC_FORMATS = ("text", "json", "github")


def use_color(stream: TextIO) -> bool:
    """Colour on a terminal; NO_COLOR (https://no-color.org) turns it off and FORCE_COLOR on,
    each when set to a non-empty value, NO_COLOR winning when both are."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty()


def print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    """Compiler-style lines on standard error: `spec.yaml:12:7: error: ...`."""
    for diagnostic in diagnostics:
        print(diagnostic if diagnostic.position else f"archspec: {diagnostic}", file=sys.stderr)


def diagnostics_json(diagnostics: Sequence[Diagnostic]) -> str:
    """A JSON array of {file, line, column, severity, message}; file and place are null for a
    problem not in a file (an argument, say)."""
    return json.dumps([diagnostic.to_json() for diagnostic in diagnostics], indent=2)


def github_annotations(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands: `::error file=F,line=L,col=C::message`, one a line."""
    lines = []
    for diagnostic in diagnostics:
        where = diagnostic.position
        properties = (
            f" file={_property(where.file)},line={where.line},col={where.column}" if where else ""
        )
        lines.append(f"::{diagnostic.severity}{properties}::{_data(diagnostic.message)}")
    return "".join(line + "\n" for line in lines)


def _data(text: str) -> str:
    # the escapes of GitHub's toolkit (command.ts): a message may hold any character
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


#: Says which stage the work is in: `stage("building the modules")`.
Stage = Callable[[str], None]


@contextmanager
def progress(enabled: bool) -> Iterator[Stage | None]:
    """A one-line display of the current stage and the time spent, on standard error while the
    work runs, gone when it ends; `None` (nothing shown) when not enabled."""
    if not enabled:
        yield None
        return
    # rich is imported only on this path, where torch is already loading: short commands and
    # every run off a terminal stay without it
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, no_color=not use_color(sys.stderr))
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as display:
        task = display.add_task("starting")

        def report(stage: str) -> None:
            # drawn at once: a stage shorter than rich's refresh period is still seen
            display.update(task, description=stage, refresh=True)

        yield report


def shows_progress(quiet: bool) -> bool:
    """Progress goes to a terminal only: logs and pipes get the result line alone."""
    return not quiet and sys.stderr.isatty()
