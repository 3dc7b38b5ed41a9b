"""Ops that select or reorder channels without arithmetic: chunk, split, channel shuffle."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    POINTWISE,
    Channels,
    Offset,
    Op,
    ParameterFree,
    Shape,
    Step,
    TorchCall,
    Window,
    format_shape,
)
from archspec.ops.layouts import ANY_LAYOUT, CHANNELS_FIRST, position_index
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch

#: The spatial axes of each per-sample layout that has some, by rank.
SPATIAL_AXES = {2: ("L",), 3: ("H", "W"), 4: ("T", "H", "W")}
#: The sides of each spatial axis, as `padding` lists them.
SIDES = {
    "L": ("left", "right"),
    "T": ("front", "back"),
    "H": ("top", "bottom"),
    "W": ("left", "right"),
}
#: One size per spatial axis: (L,), (H, W) or (T, H, W).
SpatialSizes = Annotated[tuple[Channels, ...], Field(min_length=1, max_length=3)]


def spatial_axes(op: Op, shape: Shape) -> tuple[str, ...]:
    """The names of `shape`'s spatial axes; ShapeError when it has none."""
    if len(shape) not in SPATIAL_AXES:
        raise ShapeError(
            f"{op.op} expects an input of shape (C, L), (C, H, W) or (C, T, H, W), "
            f"got {format_shape(shape)}"
        )
    return SPATIAL_AXES[len(shape)]


def shift_along(shape: Shape, dim: int, start: int) -> Step:
    """The step of a part of `shape` from `start` along axis `dim`: a shift where that axis
    holds positions, POINTWISE where it holds features (a part of the channels keeps every
    position)."""
    place = position_index(shape, dim)
    if place is None:
        return POINTWISE
    index, count = place
    return shift([start if axis == index else 0 for axis in range(count)])


def shift(starts: Sequence[int]) -> Window:
    """The step of output position o reading input position o + start along each spatial axis:
    one pixel, with a negative leading padding because the read starts inside the input."""
    return Window((1,) * len(starts), padding=tuple(-start for start in starts))


class Part(ParameterFree, Op):
    """Shared rules of chunk and split: the input's part `index` along `dim`."""

    arity = (1, 1)
    # the part is a view of its input: overwriting one would overwrite the other
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{PITCHFORK}"
    takes_layout = ANY_LAYOUT
    runs_in_place = False
    index: Offset  # 0-based; a ShuffleNet unit has one layer per part
    dim: Annotated[int, Field(ge=1)] = 1  # 0 is the batch axis, which is never split

    @abstractmethod
    def bounds(self, size: int) -> tuple[int, int]:
        """Start and length of the part along `dim`, of size `size`; ShapeError when none."""

    def _bounds(self, shape: Shape) -> tuple[int, int]:
        if self.dim > len(shape):
            raise ShapeError(
                f"{self.op} dim {self.dim} does not exist in an input of rank "
                f"{len(shape) + 1} (batch included)"
            )
        return self.bounds(shape[self.dim - 1])

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _, length = self._bounds(shape)
        return (*shape[: self.dim - 1], length, *shape[self.dim :])

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a view: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Step:
        (shape,) = inputs
        return shift_along(shape, self.dim, self._bounds(shape)[0])

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        start, length = self._bounds(inputs[0])
        # one call that torch.export and ONNX keep as a slice, unlike indexing chunk()'s tuple
        return TorchCall(torch.narrow, {"dim": self.dim, "start": start, "length": length})


@register
class Chunk(Part):
    """Part `index` of torch's `x.chunk(chunks, dim)`: parts of ceil(size / chunks), the last one
    smaller, and fewer than `chunks` parts when that many do not fit (5 into 4: 2, 2, 1)."""

    op: Literal["chunk"] = "chunk"
    chunks: Channels

    @model_validator(mode="after")
    def _check_index(self) -> Chunk:
        if self.index >= self.chunks:
            raise ValueError(
                f"index (={self.index}) must be below chunks (={self.chunks}): parts are "
                "numbered from 0"
            )
        return self

    def parts(self, size: int) -> tuple[int, int, int]:
        """torch's split of `size`: the part size, the number of parts and the last one's size."""
        step = -(-size // self.chunks)  # ceil(size / chunks)
        count = -(-size // step)
        return step, count, size - (count - 1) * step

    def bounds(self, size: int) -> tuple[int, int]:
        step, count, last = self.parts(size)
        if self.index >= count:
            raise ShapeError(
                f"chunk index {self.index} does not exist: torch chunks dim {self.dim} (={size}) "
                f"into {_describe_parts(step, count, last)}, not {self.chunks}"
            )
        return self.index * step, last if self.index == count - 1 else step

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        size = inputs[0][self.dim - 1]
        if size % self.chunks == 0:
            return []
        step, count, last = self.parts(size)
        return [
            f"chunks (={self.chunks}) do not divide dim {self.dim} (={size}): torch makes "
            f"{_describe_parts(step, count, last)}"
        ]


def _describe_parts(step: int, count: int, last: int) -> str:
    if count == 1:
        return "1 part"
    if last == step:
        return f"{count} parts of {step}"
    return f"{count} parts of {step}, the last of {last}"


@register
class Split(Part):
    """Part `index` of torch's `x.split(sizes, dim)`; the sizes add up to the axis."""

    op: Literal["split"] = "split"
    sizes: Annotated[tuple[Channels, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_index(self) -> Split:
        if self.index >= len(self.sizes):
            raise ValueError(
                f"index (={self.index}) must be below the number of sizes (={len(self.sizes)}): "
                "parts are numbered from 0"
            )
        return self

    def bounds(self, size: int) -> tuple[int, int]:
        if sum(self.sizes) != size:
            raise ShapeError(
                f"split sizes {list(self.sizes)} add up to {sum(self.sizes)}, but dim "
                f"{self.dim} has {size}"
            )
        return sum(self.sizes[: self.index]), self.sizes[self.index]


@register
class ChannelShuffle(ParameterFree, Op):
    """`nn.ChannelShuffle` (ShuffleNet): (C, ...) -> (C, ...); with C = G * n, input channel
    g * n + i becomes output channel i * G + g, so the next grouped conv mixes the groups."""

    op: Literal["channel_shuffle"] = "channel_shuffle"
    arity = (1, 1)
    # it copies, even with one group (tests/test_ops_plumbing.py checks), and its backward
    # shuffles the gradient back without reading the output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    groups: Channels

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        spatial_axes(self, shape)  # torch shuffles (N, C, *) with at least one more axis
        if shape[0] % self.groups:
            raise ShapeError(
                f"channel_shuffle expects groups (={self.groups}) to divide the channels "
                f"(={shape[0]})"
            )
        return shape

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a permutation: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window:
        # it moves channels, never positions
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.ChannelShuffle(self.groups)


#: What each mode's torch modules are called: nn.ReflectionPad2d for reflect on (C, H, W).
