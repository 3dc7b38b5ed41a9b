"""The op registry: the one place that maps an op name to its class."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TypeVar

from archspec.errors import shown, suggest
from archspec.ops.base import Op

OpType = TypeVar("OpType", bound=Op)

OPS: dict[str, type[Op]] = {}


def register(cls: type[OpType]) -> type[OpType]:
    """Class decorator: make an op available to specs under the default value of its `op` field."""
    name = cls.model_fields["op"].default
    if not isinstance(name, str):
        raise TypeError(f"{cls.__name__} must give its `op` field a default name")
    if name in OPS:
        raise ValueError(f"op {name!r} is registered twice ({OPS[name].__name__}, {cls.__name__})")
    OPS[name] = cls
    return cls


def lookup(name: str) -> type[Op]:
    """The class of op `name`; the KeyError lists the ops and suggests the closest."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(
            f"unknown op {shown(name)}{suggest(name, OPS)}; known ops: {', '.join(sorted(OPS))}"
        ) from None


def build_op(op_name: str, fields: Mapping[str, Any]) -> Op:
    """The op `op_name` with `fields` (evaluated values); pydantic's ValidationError if they do
    not fit it."""
    key = _cache_key(fields)
    if key is None:
        return OPS[op_name].model_validate({**fields, "op": op_name})
    return _validated(op_name, key)


@lru_cache(maxsize=4096)
def _validated(op_name: str, key: tuple[tuple[str, type, Any], ...]) -> Op:
    """Ops are frozen, so layers written alike (every `relu`, every 3x3 conv of 64) share one."""
    fields = {
        name: [item for _, item in value] if kind is list else value for name, kind, value in key
    }
    return OPS[op_name].model_validate({**fields, "op": op_name})


def _cache_key(fields: Mapping[str, Any]) -> tuple[tuple[str, type, Any], ...] | None:
    """Fields as a hashable key that tells `true` from 1 and 1.0; None when a value is nested."""
    key = []
    for name, value in fields.items():
        if isinstance(value, list):
            if any(isinstance(item, list | dict) for item in value):
                return None
            key.append((name, list, tuple((type(item), item) for item in value)))
        elif isinstance(value, dict):
            return None
        else:
            key.append((name, type(value), value))
    return tuple(key)
