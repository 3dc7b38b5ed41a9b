"""pydantic's errors as one message per place in the data that was validated, no positions.

The frontend turns the places into file positions; analysis, for fields resolved late, asks the
frontend's origin lookup. Neither needs the other's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from archspec.errors import shown, suggest

#: A path of keys and list indices into parsed data: ("layers", 3, "kernel").
SourcePath = tuple[str | int, ...]


#: Fields torch's constructors take that a spec never writes, and why.
INFERRED = {
    name: f"{name} is not written: archspec infers it from the shape arriving at the layer"
    for name in ("in_channels", "in_features", "num_features", "normalized_shape")
}


def field_messages(
    error: ValidationError,
    data: Any,
    context: str = "",
    fields: Sequence[str] | None = None,
    hint: Callable[[Any], str] | None = None,
    fields_at: Callable[[tuple[int | str, ...]], list[str]] | None = None,
    per_field: bool = False,
) -> list[tuple[SourcePath, str, str]]:
    """`(place in data, "key" or "value", message)`, one per distinct place.

    `fields` (or `fields_at(loc)`) lists what an unknown key could have been; `hint` adds to a
    value's message. With `per_field`, the alternatives pydantic tries for one field (an int, a
    pair, a word) are joined into one message at that field.
    """
    merged: dict[tuple[SourcePath, str], list[str]] = {}
    for item in error.errors(include_url=False):
        path, missing = real_path(data, item["loc"], item["type"])
        field = ".".join(str(part) for part in (*path, *([missing] if missing else [])))
        label = f"{context}field {field!r}: " if field else context
        kind = "value"
        if item["type"] == "extra_forbidden":
            known = list(fields) if fields is not None else (fields_at or _none)(item["loc"])
            key = str(path[-1])
            if key in INFERRED:
                message = f"{label}{INFERRED[key]}"
            else:
                message = f"{label}unknown field{suggest(key, known)}"
                if known:
                    message += f"; expected one of {', '.join(known)}"
            kind = "key"
        elif item["type"] == "missing":
            message = f"{label}required field is missing"
        elif item["type"] == "value_error":
            message = f"{label}{item['ctx']['error']}"
        else:
            got = f", got {shown(item['input'])}" if item["type"] != "layer_kind" else ""
            message = f"{label}{item['msg'][0].lower()}{item['msg'][1:]}{got}"
            if hint is not None and item["type"] != "literal_error":
                message += hint(item["input"])
        place = path[:1] if per_field and kind == "value" else path
        messages = merged.setdefault((place, kind), [])
        if message not in messages:
            messages.append(message)
    found = []
    for (place, kind), messages in merged.items():
        # the deepest alternative is usually the precise one; two are enough to show the choice
        first, *others = sorted(messages, key=lambda text: -text.count("."))[:2]
        alternatives = [text.removeprefix(context) for text in others]
        found.append((place, kind, " or ".join([first, *alternatives])))
    return found


def _none(loc: tuple[int | str, ...]) -> list[str]:
    return []


def real_path(data: Any, loc: tuple[int | str, ...], kind: str) -> tuple[SourcePath, str | None]:
    """Keep the parts of a pydantic location that exist in the data (drop union and tag labels)."""
    path: list[str | int] = []
    node = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
        elif last and kind == "missing" and isinstance(part, str):
            return tuple(path), part
    return tuple(path), None
