"""Ops that move, regroup or pick axes without arithmetic: permute, transpose, reshape, select,
slice. They change a shape's layout as they change its axes, so later ops know where the
channels are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import GLOBAL, MAX_DIM, POINTWISE, Op, ParameterFree, Shape, Step, TorchCall
from archspec.ops.channels import shift
from archspec.ops.layouts import (
    ANY_LAYOUT,
    LETTERS,
    POSITIONS,
    Layout,
    default_layout,
    format_layout,
    is_channels_first,
    layout_of,
)
from archspec.ops.registry import register

#: An axis numbered with the batch as 0, which these ops never move or drop.
Dim = Annotated[int, Field(ge=1)]


class AxisOp(ParameterFree, Op):
    """Shared facets: one input, no arithmetic, each position kept (its field unchanged)."""

    arity = (1, 1)
    # its output is a view of its input: overwriting one would overwrite the other
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a view or a copy: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Step:
        # the positions are the same, only their order in memory changes
        return POINTWISE

    def check_dim(self, dim: int, shape: Shape, field: str = "dim") -> None:
        if dim > len(shape):
            raise ShapeError(
                f"{self.op} {field} {dim} does not exist in an input of rank {len(shape) + 1} "
                "(batch included)"
            )


def _positions(layout: Layout, shape: Shape) -> list[tuple[str, int]]:
    """The position axes of a laid-out shape, in order: their letters and sizes."""
    return [(axis, size) for axis, size in zip(layout, shape, strict=True) if axis in POSITIONS]


def _batch_first(value: Any) -> Any:
    if isinstance(value, list | tuple) and value and value[0] != 0:
        raise ValueError(
            f"dims list the batch axis first, as torch's permute does ([0, 2, 3, 1]), got "
            f"{list(value)}"
        )
    return value


@register
class Permute(AxisOp):
    """`x.permute(dims)`, dims numbered with the batch as 0 and listing it first:
    [0, 2, 3, 1] takes (C, H, W) to channels last (H, W, C)."""

    op: Literal["permute"] = "permute"
    dims: Annotated[tuple[Annotated[int, Field(ge=0)], ...], BeforeValidator(_batch_first)]

    @field_validator("dims")
    @classmethod
    def _a_permutation(cls, dims: tuple[int, ...]) -> tuple[int, ...]:
        if sorted(dims) != list(range(len(dims))):
            raise ValueError(
                f"dims must hold each axis 0 to {len(dims) - 1} once, got {list(dims)}"
            )
        return dims

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if len(self.dims) != len(shape) + 1:
            raise ShapeError(
                f"permute dims {list(self.dims)} order {len(self.dims)} axes, but the input "
                f"has {len(shape) + 1} (batch included): {format_layout(layout_of(shape))}"
            )
        return tuple(shape[dim - 1] for dim in self.dims[1:])

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        layout = layout_of(inputs[0])
        return "".join(layout[dim - 1] for dim in self.dims[1:])

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.permute, {"dims": list(self.dims)})


@register
class Transpose(AxisOp):
    """`x.transpose(dim0, dim1)`: two axes swapped, numbered with the batch as 0."""

    op: Literal["transpose"] = "transpose"
    dim0: Dim
    dim1: Dim

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        self.check_dim(self.dim0, shape, "dim0")
        self.check_dim(self.dim1, shape, "dim1")
        sizes = list(shape)
        first, second = self.dim0 - 1, self.dim1 - 1
        sizes[first], sizes[second] = sizes[second], sizes[first]
        return tuple(sizes)

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        axes = list(layout_of(inputs[0]))
        first, second = self.dim0 - 1, self.dim1 - 1
        axes[first], axes[second] = axes[second], axes[first]
        return "".join(axes)

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.transpose, {"dim0": self.dim0, "dim1": self.dim1})


def _layout_letters(value: Any) -> Any:
    if isinstance(value, str) and (
        not value or any(axis not in LETTERS for axis in value) or len(set(value)) != len(value)
    ):
        raise ValueError(
            f"a layout is distinct letters of {LETTERS}, one per axis (C channels or features, "
            f"L T H W positions), got {value!r}"
        )
    return value


@register
class Reshape(AxisOp):
    """`x.reshape(N, *shape)`: the per-sample shape, batch kept; one size may be -1, the rest
    of the elements. `layout` names the new axes (default: channels first)."""

    op: Literal["reshape"] = "reshape"
    shape: Annotated[
        tuple[Annotated[int, Field(ge=-1, le=MAX_DIM)], ...], Field(min_length=1, max_length=6)
    ]
    layout: Annotated[str | None, BeforeValidator(_layout_letters)] = None

    @model_validator(mode="after")
    def _check_sizes(self) -> Reshape:
        if 0 in self.shape:
            raise ValueError(f"shape {list(self.shape)} has a size 0: every axis holds one or more")
        if self.shape.count(-1) > 1:
            raise ValueError(f"shape {list(self.shape)} has more than one -1; give all but one")
        if self.layout is not None and len(self.layout) != len(self.shape):
            raise ValueError(
                f"layout {self.layout!r} names {len(self.layout)} axes, the shape has "
                f"{len(self.shape)}"
            )
        return self

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        elements = math.prod(shape)
        known = math.prod(size for size in self.shape if size != -1)
        wanted = list(self.shape)
        if -1 in self.shape:
            if elements % known:
                raise ShapeError(
                    f"reshape to {list(self.shape)}: {elements:,} elements per sample do not "
                    f"divide by the {known:,} of the given sizes"
                )
            wanted[wanted.index(-1)] = elements // known
        elif known != elements:
            raise ShapeError(
                f"reshape to {list(self.shape)} holds {known:,} elements per sample, the input "
                f"{tuple(shape)} holds {elements:,}"
            )
        return tuple(wanted)

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        return self.layout or default_layout(len(output))

    def window(self, inputs: Sequence[Shape]) -> Step:
        # channels kept in front: the positions are only regrouped (a map into tokens) and
        # each keeps its field; any other regrouping mixes channels with positions
        (shape,) = inputs
        output = self.output_shape(inputs)
        layout, output_layout = layout_of(shape), self.output_layout(inputs, output)
        kept = (
            is_channels_first(layout) and is_channels_first(output_layout) and shape[0] == output[0]
        )
        # regrouped under their own names, positions would claim places they are not at:
        # (C, 4, 4) as (C, 2, 8) puts input row 2 at output row 1
        before, after = _positions(layout, shape), _positions(output_layout, output)
        renamed = {axis for axis, _ in before} != {axis for axis, _ in after}
        return POINTWISE if kept and (renamed or before == after) else GLOBAL

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        # -1 for the batch, so one module serves every batch size (and ONNX keeps it dynamic)
        return TorchCall(torch.reshape, {"shape": [-1, *self.output_shape(inputs)]})


@register
class View(Reshape):
    """`x.view(N, *shape)`: reshape by torch's other name (lowered as a reshape, which also
    takes a permuted, non-contiguous input)."""

    op: Literal["view"] = "view"  # type: ignore[assignment]


@register
class Select(AxisOp):
    """`x.select(dim, index)`: one position along `dim`, which disappears (the class token,
    `x[:, 0]`, is `dim: 1, index: 0`). A negative index counts from the end."""

    op: Literal["select"] = "select"
    dim: Dim
    index: Annotated[int, Field(ge=-MAX_DIM, le=MAX_DIM)]

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        self.check_dim(self.dim, shape)
        size = shape[self.dim - 1]
        if not -size <= self.index < size:
            raise ShapeError(f"select index {self.index} is outside dim {self.dim}, of size {size}")
        if len(shape) == 1:
            raise ShapeError("select would leave no axis per sample; slice keeps one")
        return shape[: self.dim - 1] + shape[self.dim :]

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        layout = layout_of(inputs[0])
        return layout[: self.dim - 1] + layout[self.dim :]

    def window(self, inputs: Sequence[Shape]) -> Step:
        # one row of a map leaves positions the field's axes no longer describe
        along_positions = is_channels_first(layout_of(inputs[0])) and self.dim > 1
        return GLOBAL if along_positions else POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.select, {"dim": self.dim, "index": self.index})


@register
class Slice(AxisOp):
    """`x.narrow(dim, start, end - start)`: positions `start` to `end` (excluded) along `dim`;
    negative values count from the end and `end` left out is the end, as in `x[:, 1:]`."""

    op: Literal["slice"] = "slice"
    dim: Dim
    start: Annotated[int, Field(ge=-MAX_DIM, le=MAX_DIM)] = 0
    end: Annotated[int | None, Field(ge=-MAX_DIM, le=MAX_DIM)] = None

    def bounds(self, shape: Shape) -> tuple[int, int]:
        self.check_dim(self.dim, shape)
        size = shape[self.dim - 1]
        start = self.start + size if self.start < 0 else self.start
        end = size if self.end is None else self.end + size if self.end < 0 else self.end
        if not 0 <= start < end <= size:
            raise ShapeError(
                f"slice {self.start}:{'' if self.end is None else self.end} of dim {self.dim} "
                f"(size {size}) is empty or out of range"
            )
        return start, end - start

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _, length = self.bounds(shape)
        return (*shape[: self.dim - 1], length, *shape[self.dim :])

    def window(self, inputs: Sequence[Shape]) -> Step:
        (shape,) = inputs
        layout = layout_of(shape)
        axis = layout[self.dim - 1]
        if axis not in POSITIONS:
            return POINTWISE  # a part of the features: each position keeps its own field
        # a part of the positions, wherever they are ((C, H, W), (H, W, C), (L, C)): output
        # position o is input position o + start along the sliced one
        start, _ = self.bounds(shape)
        return shift([start if letter == axis else 0 for letter in layout if letter in POSITIONS])

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        start, length = self.bounds(inputs[0])
        return TorchCall(torch.narrow, {"dim": self.dim, "start": start, "length": length})
