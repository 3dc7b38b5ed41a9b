"""How figures read in every rendering: shapes, fields, counts, sizes, and cut or escaped text."""

from __future__ import annotations

import re

from archspec.analysis import ReceptiveField
from archspec.analysis.receptive_field import format_rational
from archspec.ops.base import Rational
from archspec.ops.layouts import default_layout, features_alike, layout_of

#: Shown in cells with nothing to count (a ReLU has no parameters).
NOTHING = "-"
#: Stands for the characters cut from the middle of a long cell.
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


def batched_shape(shape: tuple[int, ...]) -> str:
    """`(N, 64, 56, 56)`; a layout other than channels first is named: `(N, 56, 56, 96) HWC`."""
    layout = layout_of(shape)
    # features picked (C) or flattened (F) are alike: only other layouts are named
    plain = features_alike(layout) == features_alike(default_layout(len(shape)))
    named = "" if plain else f" {layout}"
    return "(N, " + ", ".join(str(dim) for dim in shape) + ")" + named


def describe_field(field: ReceptiveField | None) -> str:
    """`size /stride`, per axis joined by x (`3x7x7 /1x2x2` along T, H, W), one number when
    every axis agrees (`9 /2` along L, `35 /8` for a square field); `global` once a unit sees
    the whole input."""
    if field is None:
        return NOTHING
    if field.is_global:
        return "global"
    if field.constant:
        return "none (learned)"
    text = f"{_per_axis(field.size)} /{_per_axis(field.stride)}"
    return text if field.aligned else text + " (unaligned)"


def _per_axis(values: tuple[Rational, ...]) -> str:
    first = values[0]
    if all(value == first for value in values):
        return format_rational(first)
    return "x".join(format_rational(value) for value in values)


def si(count: int) -> str:
    """`4.09 G`: three significant figures and a decimal prefix."""
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            return f"{count / scale:.2f} {suffix}"
    return str(count)


def byte_size(count: int) -> str:
    """`1.5 MiB`: binary prefixes, as memory is sold."""
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if count >= scale:
            return f"{count / scale:.1f} {suffix}"
    return f"{count} B"


def elide(text: str, width: int) -> str:
    """`text` cut to `width` characters by an ellipsis in its middle: `layer4…ple.0`; both ends
    of a dotted name tell the most."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    kept = width - 1
    head = (kept + 1) // 2  # the prefix, naming the group, gets the odd character
    return text[:head] + ELLIPSIS + text[len(text) - (kept - head) :]


# characters Markdown would read as markup, and HTML's three
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape_markdown(text: str) -> str:
    """Free text (a warning, a network's name) as literal Markdown: markup characters escaped,
    `<`, `>` and `&` as entities so a notebook never reads them as HTML. An underscore inside a
    word is left, as CommonMark never reads it as emphasis (`mobilenet_v2`)."""
    text = _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(), text)
    return re.sub("[&<>]", lambda match: _HTML_SPECIAL[match.group()], text)


def markdown_code(name: str) -> str:
    """A name as inline code; a `|` escaped, which would end a table's cell even there."""
    escaped = name.replace("|", "\\|")
    return f"`` {escaped} ``" if "`" in name else f"`{escaped}`"
