"""Receptive field by the standard recurrence (size, jump, start), extended to merging paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from archspec.ops.base import GLOBAL, POINTWISE, Pair, Window

#: Where sizes, jumps and offsets saturate: strides multiplied through thousands of layers would
#: otherwise outgrow a float, and every figure below this is exact in one.
FIELD_LIMIT = 2**53


@dataclass(frozen=True)
class Axis:
    """Receptive field along one axis, in input pixels.

    size: pixels one output unit sees; jump: input pixels between neighbouring output units
    (effective stride); start: centre of the first output unit's field (may be half a pixel).
    """

    size: int
    jump: int
    start: float

    def step(self, kernel: int, stride: int, padding: int, dilation: int) -> Axis:
        effective = dilation * (kernel - 1) + 1
        start = self.start + ((effective - 1) / 2 - padding) * self.jump
        return Axis(
            size=min(self.size + (effective - 1) * self.jump, FIELD_LIMIT),
            jump=min(self.jump * stride, FIELD_LIMIT),
            start=max(-FIELD_LIMIT, min(start, FIELD_LIMIT)),
        )


@dataclass(frozen=True)
class ReceptiveField:
    """Per-axis (H, W) receptive field of one layer's output units."""

    height: Axis
    width: Axis
    is_global: bool = False  # every unit sees the whole input (after global pooling or flatten)
    aligned: bool = True  # False where paths of different stride or centre met

    @classmethod
    def of_input(cls) -> ReceptiveField:
        return cls(Axis(1, 1, 0.0), Axis(1, 1, 0.0))

    @classmethod
    def whole(cls, spatial: Pair) -> ReceptiveField:
        height, width = spatial
        return cls(
            Axis(height, height, (height - 1) / 2),
            Axis(width, width, (width - 1) / 2),
            is_global=True,
        )

    @property
    def size(self) -> Pair:
        return (self.height.size, self.width.size)

    @property
    def stride(self) -> Pair:
        return (self.height.jump, self.width.jump)

    @property
    def offset(self) -> tuple[float, float]:
        return (self.height.start, self.width.start)

    def through(self, window: Window | Literal["global"], input_spatial: Pair) -> ReceptiveField:
        if self.is_global or window == POINTWISE:
            return self
        if window == GLOBAL:
            return ReceptiveField.whole(input_spatial)
        return ReceptiveField(
            self.height.step(
                window.kernel[0], window.stride[0], window.padding[0], window.dilation[0]
            ),
            self.width.step(
                window.kernel[1], window.stride[1], window.padding[1], window.dilation[1]
            ),
            aligned=self.aligned,
        )


def merge(fields: Sequence[ReceptiveField]) -> ReceptiveField:
    """Where paths meet, the output sees the largest field; flag paths that are not aligned."""
    if len(fields) == 1:
        return fields[0]
    if any(field.is_global for field in fields):
        return next(field for field in fields if field.is_global)
    height = max((field.height for field in fields), key=lambda axis: axis.size)
    width = max((field.width for field in fields), key=lambda axis: axis.size)
    aligned = all(field.aligned for field in fields) and all(
        (field.height.jump, field.height.start, field.width.jump, field.width.start)
        == (
            fields[0].height.jump,
            fields[0].height.start,
            fields[0].width.jump,
            fields[0].width.start,
        )
        for field in fields
    )
    return ReceptiveField(height, width, aligned=aligned)


def misalignment(fields: Sequence[ReceptiveField]) -> str | None:
    """Describe how the fields of merging paths differ, or None when they agree."""
    if any(field.is_global for field in fields):
        return None
    strides = sorted({field.stride for field in fields})
    offsets = sorted({field.offset for field in fields})
    if len(strides) > 1:
        return f"paths with different effective strides meet here ({_pairs(strides)})"
    if len(offsets) > 1:
        return f"paths with different receptive-field centres meet here ({_pairs(offsets)})"
    return None


def _pairs(values: Sequence[tuple[float, float]]) -> str:
    return " vs ".join(f"{_number(a)}x{_number(b)}" for a, b in values)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
