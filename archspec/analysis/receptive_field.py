"""Receptive field by the standard recurrence (size, jump, start), extended to merging paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from archspec.ops.base import GLOBAL, POINTWISE, SHAPE_ONLY, Rational, Steps, Window, exact

#: Where sizes, jumps and offsets saturate: strides multiplied through thousands of layers would
#: otherwise outgrow a float, and every figure below this is exact in one.
FIELD_LIMIT = 2**53
#: The smallest jump: upsampled thousands of times, denominators would grow just as numerators do.
JUMP_FLOOR = Fraction(1, FIELD_LIMIT)


def format_rational(value: Rational) -> str:
    """`7`, or a fraction as a decimal (`0.5`), never `1/2` (which reads as a stride)."""
    value = exact(value)
    return str(value) if isinstance(value, int) else f"{float(value):g}"


@dataclass(frozen=True)
class Axis:
    """Receptive field along one axis, in input pixels, exact.

    size: pixels one output unit sees; jump: input pixels between neighbouring output units
    (effective stride); start: centre of the first output unit's field (may be half a pixel).
    Unit i sees the input pixels whose centres lie strictly within start + i*jump +- size/2.

    All three are rationals: upsampling steps by less than a pixel, so jump and start can be
    fractions, and so can size when a later kernel spans a fraction of a pixel (2x2 after x2
    upsampling adds half a pixel). Whole values are stored as ints, so fields of integer windows
    compare, hash, print and serialise exactly as before. Upsampling a map of jump J > 1 is an
    affine approximation: nearest's true centres are a staircase, up to J/2 pixels away.
    """

    size: Rational
    jump: Rational
    start: Rational

    def __post_init__(self) -> None:
        for name in ("size", "jump", "start"):
            object.__setattr__(self, name, exact(getattr(self, name)))

    def step(self, kernel: int, stride: Rational, padding: Rational, dilation: int) -> Axis:
        """Through a window: unit o reads positions o*stride - padding + i*dilation, i < kernel.

        stride and padding may be fractions: upsampling by s is a stride of 1/s (see the torch
        derivations in tests/test_receptive_field.py: nearest is kernel 1, padding (s-1)/(2s);
        bilinear without align_corners is kernel 2, padding (2s-1)/(2s)).
        """
        reach = dilation * (kernel - 1)  # input steps from the window's first tap to its last
        # size' = size + d(k-1) jump; jump' = jump s; start' = start + (d(k-1)/2 - p) jump
        start = self.start + (Fraction(reach, 2) - padding) * self.jump
        return Axis(
            size=_clamp(self.size + reach * self.jump, 0, FIELD_LIMIT),
            jump=_clamp(self.jump * stride, JUMP_FLOOR, FIELD_LIMIT),
            start=_clamp(start, -FIELD_LIMIT, FIELD_LIMIT),
        )


def _clamp(value: Rational, low: Rational, high: Rational) -> Rational:
    return low if value < low else high if value > high else value


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's output units, one Axis per spatial axis of the input:
    (L,), (H, W) or (T, H, W)."""

    axes: tuple[Axis, ...]
    is_global: bool = False  # every unit sees the whole input (after global pooling or flatten)
    aligned: bool = True  # False where paths of different stride or centre met
    constant: bool = False  # a learned tensor (a class token): its units see no input at all

    @classmethod
    def of_input(cls, rank: int) -> ReceptiveField:
        """Each input pixel sees itself, along `rank` spatial axes."""
        return cls((Axis(1, 1, 0),) * rank)

    @classmethod
    def none(cls, rank: int) -> ReceptiveField:
        """The field of a learned tensor: no input pixel, along `rank` spatial axes."""
        return cls((Axis(0, 1, 0),) * rank, constant=True)

    @classmethod
    def whole(cls, spatial: Sequence[int]) -> ReceptiveField:
        return cls(
            tuple(Axis(size, size, Fraction(size - 1, 2)) for size in spatial), is_global=True
        )

    # lists, not generators, inside tuple(): a third quicker, and merging paths reads these
    @property
    def size(self) -> tuple[Rational, ...]:
        return tuple([axis.size for axis in self.axes])

    @property
    def stride(self) -> tuple[Rational, ...]:
        return tuple([axis.jump for axis in self.axes])

    @property
    def offset(self) -> tuple[Rational, ...]:
        return tuple([axis.start for axis in self.axes])

    def through(
        self, window: Window | Literal["global"], input_spatial: Sequence[int]
    ) -> ReceptiveField:
        # POINTWISE is two 1s, yet it passes a field of any rank, as every op may return it
        if self.is_global or self.constant or window == POINTWISE:
            return self
        if window == GLOBAL:
            return ReceptiveField.whole(input_spatial)
        if len(window.kernel) != len(self.axes):
            # along tokens made from a map's positions: a shift (a class token joined in front,
            # a slice) renumbers tokens and each keeps its field; a wider window (a conv1d over
            # ViT's patches) reaches positions no rectangle of the map describes, and the whole
            # input bounds them
            renumbers = all(k == 1 for k in window.kernel) and all(s == 1 for s in window.stride)
            return self if renumbers else ReceptiveField.whole(input_spatial)
        axes = map(
            Axis.step, self.axes, window.kernel, window.stride, window.padding, window.dilation
        )
        return ReceptiveField(tuple(axes), aligned=self.aligned)


def stepped(
    fields: Sequence[ReceptiveField], steps: Steps, input_spatial: Sequence[int]
) -> dict[int, ReceptiveField]:
    """Each input's field through its step, by input index; inputs read only for their shape
    add none."""
    per_input = steps if isinstance(steps, tuple) else (steps,) * len(fields)
    return {
        index: field.through(step, input_spatial)
        for index, (field, step) in enumerate(zip(fields, per_input, strict=True))
        if step != SHAPE_ONLY
    }


def merge(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    """Where paths meet, the output sees the largest field; flag paths that are not aligned.
    Learned tensors (a class token joining the patches) add nothing."""
    computed = [field for field in fields if not field.constant]
    fields = computed or fields[:1]
    if len(fields) == 1:
        return fields[0]
    if any(field.is_global for field in fields):
        return next(field for field in fields if field.is_global)
    along = list(zip(*[field.axes for field in fields], strict=True))
    axes = tuple([max(axis, key=_size) for axis in along])
    # aligned: every path's units have one stride and one centre along every axis
    aligned = all(field.aligned for field in fields) and all(
        len({(axis.jump, axis.start) for axis in paths}) == 1 for paths in along
    )
    return ReceptiveField(axes, aligned=aligned)


def _size(axis: Axis) -> Rational:
    return axis.size


def misalignment(fields: Mapping[str, ReceptiveField]) -> str | None:
    """Describe how the fields of merging paths differ, each path named by its label (the layer
    it comes from); None when they agree."""
    fields = {label: field for label, field in fields.items() if not field.constant}
    if any(field.is_global for field in fields.values()):
        return None
    for what, each, facet in (
        ("effective strides", "stride", _stride),
        ("receptive-field centres", "centre", _offset),
    ):
        if len({facet(field) for field in fields.values()}) > 1:
            listed = ", ".join(
                f"{each} {_per_axis([facet(field)])} from {label}"
                for label, field in fields.items()
            )
            return f"paths with different {what} meet here ({listed})"
    return None


def _stride(field: ReceptiveField) -> tuple[Rational, ...]:
    return field.stride


def _offset(field: ReceptiveField) -> tuple[Rational, ...]:
    return field.offset


def _per_axis(values: Sequence[tuple[Rational, ...]]) -> str:
    return " vs ".join("x".join(format_rational(value) for value in axes) for axes in values)
