"""Per-sample layouts: which axis of a shape holds channels or features, which hold positions.

A layout is one letter per axis of a per-sample shape: C channels (or token features), F
features flattened from several axes, and positions L (a sequence, or tokens), T (time), H
and W. Feature maps are channels first, (C, H, W); Swin keeps channels last, (H, W, C); a
transformer's tokens are (L, C). Each op states which layouts it takes (`LayoutRule`), so a
mismatch is an error naming both rather than a wrong result: (H, W, C) and (C, H, W) are both
of rank 3.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: One letter per axis of a per-sample shape: "CHW", "HWC", "LC", "F".
Layout = str
POSITIONS = "LTHW"
FEATURES = "CF"
#: Per rank, the layout of a network's input and of a shape made without one: channels first.
DEFAULT_LAYOUTS = {1: "F", 2: "CL", 3: "CHW", 4: "CTHW"}
#: An axis whose role is not known (rank 5 and above, made by a reshape without a layout).
UNKNOWN_AXIS = "X"
LETTERS = POSITIONS + FEATURES + UNKNOWN_AXIS


class LaidOut(tuple[int, ...]):
    """A per-sample shape that knows its layout: `LaidOut((14, 14, 96), "HWC")`.

    It is a tuple of sizes in every other respect (it equals, hashes and prints as one), so
    shape rules written for tuples read it unchanged, and the ones that care ask `layout_of`.
    """

    layout: Layout

    def __new__(cls, sizes: Sequence[int], layout: Layout) -> LaidOut:
        shape = super().__new__(cls, sizes)
        if len(layout) != len(shape):
            raise ValueError(f"layout {layout!r} names {len(layout)} axes of {len(shape)}")
        shape.layout = layout
        return shape

    def __getnewargs__(self) -> tuple[tuple[int, ...], Layout]:
        return tuple(self), self.layout


def default_layout(rank: int) -> Layout:
    return DEFAULT_LAYOUTS.get(rank, "C" + UNKNOWN_AXIS * (rank - 1))


def layout_of(shape: Sequence[int]) -> Layout:
    """The layout `shape` carries, or channels first for a plain tuple."""
    return getattr(shape, "layout", None) or default_layout(len(shape))


def laid_out(shape: Sequence[int], layout: Layout | None = None) -> LaidOut:
    return LaidOut(tuple(shape), layout or layout_of(shape))


def format_layout(layout: Layout) -> str:
    """`(C, H, W)`, `(L, C)`, `(F,)`."""
    return "(" + ", ".join(layout) + (",)" if len(layout) == 1 else ")")


def describe(layout: Layout) -> str:
    """How errors name a layout: `a (C, H, W) map`, `a channels-last (H, W, C) map`,
    `tokens (L, C)`, `features (F,)`."""
    shown = format_layout(layout)
    if is_channels_first(layout):
        return f"features {shown}" if len(layout) == 1 else f"a {shown} map"
    if is_features_last(layout) and len(layout) == 2 and layout[0] in POSITIONS:
        return f"tokens {shown}"
    if is_features_last(layout) and all(axis in POSITIONS for axis in layout[:-1]):
        return f"a channels-last {shown} map"
    return f"a {shown} tensor"


def is_channels_first(layout: Layout) -> bool:
    """(F,), (C, L), (C, H, W), (C, T, H, W): what convolutions, pools and batch norms take."""
    return layout[:1] in tuple(FEATURES) and all(axis in POSITIONS for axis in layout[1:])


def is_features_last(layout: Layout) -> bool:
    """(F,), (L, C), (H, W, C): what a linear layer, layer norm and attention act on."""
    return layout[-1:] in tuple(FEATURES)


def is_channels_last_map(layout: Layout) -> bool:
    """(H, W, C): Swin's maps."""
    return layout == "HWC"


def is_token_sequence(layout: Layout) -> bool:
    """(L, C): a transformer's tokens, one feature vector per position."""
    return len(layout) == 2 and layout[0] in POSITIONS and layout[1] in FEATURES


@dataclass(frozen=True)
class LayoutRule:
    """The layouts an op takes: `accepts` decides, `wanted` says which in an error."""

    accepts: Callable[[Layout], bool]
    wanted: str

    def problem(self, op: str, shape: Sequence[int]) -> str | None:
        """Why `op` cannot take an input of `shape` (laid out), with the permute that would
        fit, or None."""
        layout = layout_of(shape)
        if self.accepts(layout):
            return None
        sizes = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
        message = f"{op} expects {self.wanted}, got {describe(layout)} of size ({sizes})"
        fitting = self.permutation_to_fit(layout)
        permute = (
            f"permute with dims [{', '.join(str(dim) for dim in fitting)}] (batch axis 0)"
            if fitting is not None
            else None
        )
        if (
            self.accepts("LC")
            and not self.accepts("F")
            and is_channels_first(layout)
            and len(layout) > 2
        ):
            # a map becomes tokens as ViT makes them from its patches
            return f"{message}; flatten with start_dim 2, then permute with dims [0, 2, 1]"
        if is_channels_first(layout) and len(layout) > 1 and not self.accepts("F"):
            return f"{message}; {permute or 'permute'} first"
        if is_channels_first(layout) and len(layout) > 1:
            # a classifier's head forgot its flatten far more often than it meant each position
            per_position = f", or {permute} to apply it at each position" if permute else ""
            return f"{message}; flatten first{per_position}"
        return f"{message}; {permute} first" if permute else message

    def permutation_to_fit(self, layout: Layout) -> tuple[int, ...] | None:
        """The batch-inclusive dims of the permute closest to leaving `layout` unchanged that
        makes it acceptable; None if none does (only small ranks are tried)."""
        if len(layout) > 4:
            return None
        for order in itertools.permutations(range(len(layout))):
            if self.accepts("".join(layout[axis] for axis in order)):
                return (0, *(axis + 1 for axis in order))
        return None


ANY_LAYOUT = LayoutRule(lambda layout: True, "any layout")
CHANNELS_FIRST = LayoutRule(
    is_channels_first, "channels first: (F,), (C, L), (C, H, W) or (C, T, H, W)"
)
FEATURES_LAST = LayoutRule(
    is_features_last, "features last: (F,), tokens (L, C) or a channels-last (H, W, C) map"
)
TOKENS = LayoutRule(is_token_sequence, "tokens (L, C)")
CHANNELS_LAST_MAP = LayoutRule(is_channels_last_map, "a channels-last (H, W, C) map")
#: Layer norm normalises the features wherever they are: last, or first in a map.
FEATURES_FIRST_OR_LAST = LayoutRule(
    lambda layout: is_features_last(layout) or is_channels_first(layout),
    "features last ((L, C), (H, W, C)) or first ((C, H, W))",
)


def position_sizes(shape: Sequence[int]) -> tuple[int, ...]:
    """The sizes of `shape`'s position axes, in order: (H, W) of a (C, H, W) or (H, W, C) map."""
    return tuple(
        size for size, axis in zip(shape, layout_of(shape), strict=True) if axis in POSITIONS
    )


def features_alike(layout: Layout) -> Layout:
    """`layout` with features flattened (F) read as features picked or pooled (C): the two
    are alike wherever layouts are compared."""
    return layout.replace("F", "C")


def position_index(shape: Sequence[int], dim: int) -> tuple[int, int] | None:
    """For axis `dim` of `shape` (batch is 0): its index among the shape's position axes and
    their count, as a receptive field's axes are numbered; None for a feature axis."""
    layout = layout_of(shape)
    if layout[dim - 1] not in POSITIONS:
        return None
    positions = [index for index, axis in enumerate(layout) if axis in POSITIONS]
    return positions.index(dim - 1), len(positions)
