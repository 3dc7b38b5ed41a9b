"""The columns a report's table can show: a registry from name to header, cell and alignment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from archspec.analysis import Totals
from archspec.analysis.folding import Row
from archspec.errors import UsageError, suggest
from archspec.outputs.text import NOTHING, batched_shape, byte_size, describe_field

#: A cell: text, or names (a tuple), which each output sets as code where it can.
Cell = str | tuple[str, ...]


@dataclass(frozen=True)
class Column:
    """One column: its header, its cell for a row, and how a table lays it out."""

    header: str
    cell: Callable[[Row], Cell]
    right: bool = False  # figures align right, text left
    total: Callable[[Totals], str] | None = None  # the footer's cell, for a figure that adds up
    #: Text cut down to this many characters when a table must fit a width; None: never cut.
    min_width: int | None = None
    #: Kept however narrow the table must be; the others go, from the right, when cutting text
    #: is not enough.
    essential: bool = False


def _count(count: int) -> str:
    return f"{count:,}" if count else NOTHING


def _params(row: Row) -> str:
    text = _count(row.params)
    if row.frozen:
        return text + " (frozen)"
    frozen = row.params - row.trainable_params
    return f"{text} ({frozen:,} frozen)" if frozen else text


COLUMNS: dict[str, Column] = {
    "layer": Column("Layer", lambda row: (row.name,), min_width=12, essential=True),
    "op": Column("Op", lambda row: row.op, min_width=13),  # `2 x 12 layers` stays whole
    "inputs": Column("Inputs", lambda row: row.inputs, min_width=12),
    "output-shape": Column("Output shape", lambda row: batched_shape(row.output_shape)),
    "params": Column("Params", _params, right=True, total=lambda t: f"{t.params:,}"),
    "trainable": Column(
        "Trainable",
        lambda row: f"{row.trainable_params:,}" if row.params else NOTHING,
        right=True,
        total=lambda t: f"{t.trainable_params:,}",
    ),
    "macs": Column("MACs", lambda row: _count(row.macs), right=True, total=lambda t: f"{t.macs:,}"),
    "flops": Column(
        "FLOPs", lambda row: _count(row.flops), right=True, total=lambda t: f"{t.flops:,}"
    ),
    "activations": Column(
        "Activations",
        lambda row: byte_size(row.activation_bytes),
        right=True,
        total=lambda t: byte_size(t.activation_bytes),
    ),
    "receptive-field": Column("Receptive field", lambda row: describe_field(row.receptive_field)),
}

#: What a table shows unless told otherwise.
DEFAULT_COLUMNS = ("layer", "op", "output-shape", "params", "macs", "receptive-field")


def select_columns(names: str | Sequence[str] | None = None) -> tuple[Column, ...]:
    """The columns named, in order (`"layer,op,params"` or a list; case, `_` and spaces as `-`
    do not matter); None: DEFAULT_COLUMNS. UsageError naming the columns there are, and the
    nearest, for an unknown name."""
    if names is None:
        names = DEFAULT_COLUMNS
    elif isinstance(names, str):
        names = names.split(",")
    keys = [_key(name) for name in names]
    if not keys:
        raise UsageError(f"no columns chosen; choose from {', '.join(COLUMNS)}")
    for name, key in zip(names, keys, strict=True):
        if key not in COLUMNS:
            raise UsageError(
                f"unknown column {name!r}{suggest(key, COLUMNS)}; columns are {', '.join(COLUMNS)}"
            )
        if keys.count(key) > 1:
            raise UsageError(f"column {key!r} is chosen twice")
    return tuple(COLUMNS[key] for key in keys)


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")
