"""Freeze patterns (`layer1.*`, `!fc`) applied to the expanded layers, in time linear in them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence

from archspec.errors import suggest
from archspec.frontend.layers import LayerDraft
from archspec.validation import SourcePath

#: Glob patterns times group and layer names they are tried on; past this, a freeze list is
#: refused instead of taking minutes (50 patterns on 200,000 layers is 20 million matches).
MAX_MATCHES = 20_000_000
#: Patterns that match nothing and get a suggestion.
SUGGESTED = 10
_GLOB = re.compile(r"[*?\[]")


def apply_freeze(
    layers: Mapping[str, LayerDraft],
    patterns: Sequence[tuple[str, SourcePath | None]],
    report: Callable[[SourcePath | None, str], None],
) -> None:
    """Freeze every layer whose name, or the name of a group holding it, matches a pattern;
    `!pattern` unfreezes, and later patterns win (`["*", "!fc"]`: all but the head).

    Patterns from the command line have no place in the spec (path None).
    """
    under: dict[str, list[str]] = {}  # a group or layer name -> the layers it holds
    for name in layers:
        for prefix in _prefixes(name):
            under.setdefault(prefix, []).append(name)
    globs = [(pattern, path) for pattern, path in patterns if _GLOB.search(pattern)]
    if len(globs) * len(under) > MAX_MATCHES:
        pattern, path = globs[0]
        report(
            path,
            f"{len(globs):,} freeze patterns with wildcards on {len(under):,} layer and group "
            f"names are too many to match (at most {MAX_MATCHES:,} tries); name layers or "
            "groups instead",
        )
        return
    # the last matching pattern decides: walk them backwards and decide each layer once
    decided: set[str] = set()
    covered: set[str] = set()  # names whose every layer is decided
    unmatched = []
    for pattern, path in reversed(patterns):
        matched = _matches(pattern.removeprefix("!"), under)
        if not matched:
            unmatched.append((pattern, path))
        for prefix in matched:
            if any(name in covered for name in _prefixes(prefix)):
                continue
            covered.add(prefix)
            for name in under[prefix]:
                if name not in decided:
                    decided.add(name)
                    layers[name].frozen = not pattern.startswith("!")
    for index, (pattern, path) in enumerate(reversed(unmatched)):
        # each suggestion searches every name: the first few are the ones that help
        hint = _closest(pattern, under) if index < SUGGESTED else ""
        report(path, f"freeze pattern {pattern!r} matches no layer{hint}")


def _matches(glob: str, under: Mapping[str, list[str]]) -> list[str]:
    if not _GLOB.search(glob):
        return [glob] if glob in under else []
    match = re.compile(fnmatch.translate(glob)).match
    return [name for name in under if match(name)]


def _closest(pattern: str, under: Mapping[str, list[str]]) -> str:
    groups = [name for name, held in under.items() if held != [name]]
    return suggest(pattern.removeprefix("!"), [*groups, *(f"{g}.*" for g in groups), *under])


def _prefixes(name: str) -> list[str]:
    """`layer1.0.conv1` -> [`layer1`, `layer1.0`, `layer1.0.conv1`]."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
