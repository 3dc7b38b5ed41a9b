"""Late-bound fields: values known only once the shape entering a layer is, resolved in one place.

`in_channels` is the only late name today; symbolic sizes will join it. A frontend leaves a field
that reads one as a `LateValue` of its own making (the YAML frontend's `Deferred` expression)
inside a `Pending` op; analysis calls `resolve` with the shapes and gets the op, or field-level
errors for the frontend's lookup to position.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from archspec.errors import ArchspecError, ExpressionError, suggest
from archspec.ops.base import Op, Shape
from archspec.ops.layouts import FEATURES, layout_of
from archspec.ops.registry import OPS, build_op
from archspec.validation import SourcePath, field_messages

#: The names whose value is known only when the layer's input shape is: the channels (or
#: features) of the first input, and its whole per-sample shape as a list.
LATE_NAMES = frozenset({"in_channels", "in_shape"})


class LateValue(ABC):
    """A field's value that reads late names; each frontend says how it is computed."""

    @abstractmethod
    def resolve(self, late: Mapping[str, Any]) -> Any:
        """The value, given the late names' values; ExpressionError when it cannot be had."""


def resolve_value(value: Any, late: Mapping[str, Any]) -> Any:
    """`value` with every LateValue in it (lists included) resolved."""
    if isinstance(value, LateValue):
        return value.resolve(late)
    if isinstance(value, list):
        return [resolve_value(item, late) for item in value]
    return value


def is_late(value: Any) -> bool:
    """Whether `value` (or an item of it) waits for late names."""
    if isinstance(value, list):
        return any(is_late(item) for item in value)
    return isinstance(value, LateValue)


class LateFieldError(ArchspecError):
    """Fields of a pending op that do not resolve; each with its place among the fields."""

    def __init__(self, problems: Sequence[tuple[SourcePath, str]]) -> None:
        super().__init__(problems[0][1] if problems else "fields do not resolve")
        self.problems = tuple(problems)


def late_values(inputs: Sequence[Shape]) -> dict[str, int | list[int]]:
    """The late names' values for a layer reading `inputs`: the channels (or features) of the
    first input, wherever its layout keeps them (last for tokens and channels-last maps), and
    its per-sample shape."""
    shape = inputs[0]
    layout = layout_of(shape)
    channels = next((index for index, axis in enumerate(layout) if axis in FEATURES), 0)
    return {"in_channels": shape[channels], "in_shape": list(shape)}


def resolve(op_name: str, fields: Mapping[str, Any], inputs: Sequence[Shape], context: str) -> Op:
    """The op `op_name` with its deferred fields evaluated for `inputs`.

    LateFieldError lists what does not fit, each message starting with `context`.
    """
    late = late_values(inputs)
    resolved = {}
    for key, value in fields.items():
        try:
            resolved[key] = resolve_value(value, late)
        except ExpressionError as error:
            raise LateFieldError([((key,), f"{context}field {key!r}: {error.message}")]) from error
    try:
        return build_op(op_name, resolved)
    except ValidationError as error:

        def hint(value: Any) -> str:
            if isinstance(value, str) and value.isidentifier():
                return f"; {value!r} is not a parameter{suggest(value, late)}"
            return ""

        known = [key for key in OPS[op_name].model_fields if key != "op"]
        found = field_messages(error, resolved, f"{context}{op_name} ", known, hint, per_field=True)
        raise LateFieldError([(place, message) for place, _, message in found]) from error
