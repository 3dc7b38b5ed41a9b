"""Ops that join paths: element-wise add (residual) and channel concatenation."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from archspec.errors import ShapeError
from archspec.ops.base import (
    POINTWISE,
    Op,
    ParameterFree,
    Shape,
    Step,
    Steps,
    TorchCall,
    Window,
    format_shape,
    numel,
)
from archspec.ops.registry import register


@register
class Add(ParameterFree, Op):
    """x_1 + x_2 + ...: all inputs of one shape, the residual connection."""

    op: Literal["add"] = "add"
    arity = (2, None)
    output_kept_for_backward = False
    running_statistics = False
    drawing_symbol = "+"
    runs_in_place = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        for index, shape in enumerate(inputs[1:], start=1):
            if len(shape) != len(first):
                raise ShapeError(
                    f"add expects inputs of one shape, got {format_shape(first)} and "
                    f"{format_shape(shape)} (input {index})"
                )
            if shape[0] != first[0]:
                raise ShapeError(
                    f"add expects equal channels, got {first[0]} and {shape[0]} "
                    f"(input {index}); a 1x1 conv on the shortcut can match them"
                )
            if shape != first:
                raise ShapeError(
                    f"add expects inputs of one shape, got {format_shape(first)} and "
                    f"{format_shape(shape)} (input {index}); strides differ on the paths"
                )
        return first

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # n inputs take n - 1 adds per output element
        return (len(inputs) - 1) * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Window:
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        return TorchCall(operator.add, chained=True)


@register
class Concat(ParameterFree, Op):
    """Concatenate along `dim` (1, the channels, by default); other dimensions must agree."""

    op: Literal["concat"] = "concat"
    dim: Annotated[int, Field(ge=1)] = 1
    arity = (2, None)
    # conservative: cat's backward only slices the incoming gradient, so False would hold
    output_kept_for_backward = True
    running_statistics = False
    drawing_symbol = "||"
    runs_in_place = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        first = inputs[0]
        axis = self.dim - 1
        if axis >= len(first):
            raise ShapeError(
                f"concat dim {self.dim} does not exist in an input of rank "
                f"{len(first) + 1} (batch included)"
            )
        for index, shape in enumerate(inputs[1:], start=1):
            if len(shape) != len(first) or any(
                a != b for i, (a, b) in enumerate(zip(shape, first, strict=True)) if i != axis
            ):
                raise ShapeError(
                    f"concat along dim {self.dim} expects the other dimensions to "
                    f"agree, got {format_shape(first)} and {format_shape(shape)} "
                    f"(input {index})"
                )
        return (*first[:axis], sum(shape[axis] for shape in inputs), *first[axis + 1 :])

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a copy: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Steps:
        spatial_axis = self.dim - 2  # 0 for H, 1 for W
        if spatial_axis not in (0, 1) or len(inputs[0]) != 3:
            return POINTWISE  # each output position copies the same position of one input
        # joined along H or W, input k starts where the earlier ones end: a shift by their size
        steps: list[Step] = []
        offset = 0
        for shape in inputs:
            padding = (offset, 0) if spatial_axis == 0 else (0, offset)
            steps.append(Window((1, 1), padding=padding))
            offset += shape[self.dim - 1]
        return tuple(steps)

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.cat, {"dim": self.dim}, packed=True)
