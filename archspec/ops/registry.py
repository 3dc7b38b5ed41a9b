"""The op registry: the one place that maps an op name to its class."""

from __future__ import annotations

from typing import TypeVar

from archspec.errors import suggest
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
            f"unknown op {name!r}{suggest(name, OPS)}; known ops: {', '.join(sorted(OPS))}"
        ) from None
