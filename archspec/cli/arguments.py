"""Argument types and the arguments several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archspec.errors import ArchspecError, UsageError, shown

#: Largest --batch: an example tensor of a million samples is already absurd.
MAX_BATCH = 1_000_000
#: Deeper than any network's names go; a larger --depth is a typo.
MAX_DEPTH = 1000


def add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PATTERN",
        help="freeze layers matching a dotted-name pattern (layer1.*); !PATTERN unfreezes; "
        "repeatable, later ones win",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=override,
        metavar="NAME=VALUE",
        help="override a spec parameter, the value read as YAML (repeatable)",
    )
    parser.add_argument(
        "--variant",
        metavar="NAME",
        help="use one of the spec's variants (a named set of parameter values) before --set",
    )


def add_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        type=path,
        metavar="PATH",
        help="load this state_dict (read with weights_only=True)",
    )
    parser.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="load the weights whose shapes match and list the rest",
    )


def add_max_memory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-memory",
        type=size,
        metavar="SIZE",
        help="memory the command may use (512M, 8G); default: what is free. Work that would "
        "need more is refused before anything is allocated",
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress display (it is shown on a terminal only)",
    )


def path(text: str) -> Path:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a file name, got {shown(text)}")
    return Path(text)


def size(text: str) -> int:
    from archspec.resources import parse_size

    try:
        return parse_size(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(error.message) from None


def override(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`, the value read as YAML (safely, with the spec's limits)."""
    from archspec.frontend.loader import override_problem
    from archspec.frontend.source import parse_yaml

    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {shown(text)}")
    if not raw.strip():
        raise argparse.ArgumentTypeError(f"{name}: give a value after '='")
    try:
        value = parse_yaml(raw, f"--set {name}").data
    except ArchspecError as error:
        raise argparse.ArgumentTypeError(f"{name}: {error.diagnostics[0].message}") from None
    problem = override_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{name}: {problem}")
    return name, value


def batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    if text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= MAX_BATCH:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a batch size from 1 to {MAX_BATCH:,} or 'dynamic', got {shown(text)}"
    )


def depth(text: str) -> int:
    if text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_DEPTH:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a depth from 1 to {MAX_DEPTH}, got {shown(text)}")


def input_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    if not all(part.isascii() and part.isdigit() and len(part) <= 9 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected sizes joined by x (3x224x224), got {shown(text)}"
        )
    return tuple(int(part) for part in parts)


def column_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names) or len(names) > 20:
        raise argparse.ArgumentTypeError(
            f"expected column names joined by commas (layer,shape,params), got {shown(text)}"
        )
    return names
