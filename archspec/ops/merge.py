"""Ops that join paths: element-wise add (residual) and multiply (gating), channel concatenation."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from archspec.errors import ShapeError
from archspec.ops.base import (
    AXIS_LETTERS,
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
from archspec.ops.layouts import (
    ANY_LAYOUT,
    FEATURES,
    is_channels_first,
    layout_of,
    position_index,
)
from archspec.ops.registry import register


class Broadcasting(ParameterFree, Op):
    """An element-wise function of n inputs folded pairwise (a + b + c), broadcasting as torch
    does: along each axis, inputs of size 1 are stretched to the others' common size."""

    arity = (2, None)
    # add's backward passes the gradient on, mul's multiplies it by the other inputs: neither
    # reads the result
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    runs_in_place = False
    #: The two-input function, as `operator` names it.
    function: ClassVar[Callable[[Any, Any], Any]]

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        """Per-sample shapes of one rank, since the batch axis is shared; ShapeError naming two
        inputs that disagree along an axis where neither is 1."""
        first = inputs[0]
        output = list(first)
        for index, shape in enumerate(inputs[1:], start=1):
            if len(shape) != len(first):
                raise ShapeError(
                    f"{self.op} expects inputs of one rank (the batch axis is shared, so only "
                    f"axes of size 1 broadcast), got {format_shape(first)} and "
                    f"{format_shape(shape)} (input {index})"
                )
            for axis, size in enumerate(shape):
                if size == output[axis] or size == 1:
                    continue
                if output[axis] != 1:
                    other = next(j for j, seen in enumerate(inputs) if seen[axis] not in (1, size))
                    which = f"input {index}" if other == 0 else f"inputs {other} and {index}"
                    raise ShapeError(self.conflict(inputs[other], shape, axis, which))
                output[axis] = size
        return tuple(output)

    def conflict(self, first: Shape, second: Shape, axis: int, which: str) -> str:
        """Why inputs `which` of shapes `first` and `second` do not broadcast along `axis`."""
        return (
            f"{self.op} cannot broadcast {format_shape(first)} and {format_shape(second)} "
            f"({which}): along {_axis_name(len(first), axis)}, {first[axis]} and "
            f"{second[axis]} differ and neither is 1"
        )

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # n inputs take n - 1 operations per output element
        return (len(inputs) - 1) * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Steps:
        """POINTWISE when no input is stretched along a spatial axis; else each input's step.

        An input of one row stretched to H rows is read at that row by every output row: a
        window of 2H - 1 rows centred on the output row holds it wherever that row is, and holds
        no other row of the input (there is none), so the step is exact. Other axes alike.
        """
        spatial = self.output_shape(inputs)[1:]
        if all(shape[1:] == spatial for shape in inputs):
            return POINTWISE  # channels are not positions: stretching them moves no window
        steps: list[Step] = []
        for shape in inputs:
            reach = tuple(
                out - 1 if size == 1 else 0 for size, out in zip(shape[1:], spatial, strict=True)
            )
            steps.append(Window(tuple(2 * extra + 1 for extra in reach), padding=reach))
        return tuple(steps)

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        return TorchCall(self.function, chained=True)


def _axis_name(rank: int, axis: int) -> str:
    """`C`, `H`, ... as errors name the axes of (C, L), (C, H, W) and (C, T, H, W)."""
    if rank == 1:
        return "the features"
    return ("C" + AXIS_LETTERS[rank - 1])[axis]


@register
class Add(Broadcasting):
    """x_1 + x_2 + ...: the residual connection."""

    op: Literal["add"] = "add"
    drawing_symbol = "+"
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    function = operator.add
    runs_in_place = True

    def to_torch_in_place(self, inputs: Sequence[Shape]) -> TorchCall:
        """`x += shortcut`, as torchvision's residual blocks add; out of place where input 0 is
        stretched by broadcasting, since it cannot hold the sum."""
        if inputs[0] != self.output_shape(inputs):
            return self.to_torch(inputs)
        return TorchCall(operator.iadd, chained=True)

    def conflict(self, first: Shape, second: Shape, axis: int, which: str) -> str:
        # on a residual path, unequal sizes mean the shortcut needs a projection or a stride
        layout = layout_of(first)
        letter = layout[axis]
        if letter in FEATURES:
            projection = "a 1x1 conv" if is_channels_first(layout) else "a linear layer"
            return (
                f"add expects equal channels, got {first[axis]} and {second[axis]} ({which}); "
                f"{projection} on the shortcut can match them"
            )
        shapes = f"{format_shape(first)} and {format_shape(second)} ({which})"
        if letter == "L" and not is_channels_first(layout):
            return (
                f"add expects as many tokens on both paths, got {first[axis]} and "
                f"{second[axis]}: {shapes}"
            )
        return (
            f"add expects inputs of one shape (or of size 1 along an axis, to broadcast), got "
            f"{shapes}; strides differ on the paths"
        )


@register
class Mul(Broadcasting):
    """x_1 * x_2 * ...: gating, as squeeze-excitation's (C, H, W) * (C, 1, 1)."""

    op: Literal["mul"] = "mul"
    drawing_symbol = "\N{MULTIPLICATION SIGN}"
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    function = operator.mul


@register
class Concat(ParameterFree, Op):
    """Concatenate along `dim` (1, the channels, by default); other dimensions must agree."""

    op: Literal["concat"] = "concat"
    dim: Annotated[int, Field(ge=1)] = 1
    arity = (2, None)
    # cat's backward only slices the incoming gradient
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = "||"
    drawing_mark = None
    takes_layout = ANY_LAYOUT
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
        place = position_index(inputs[0], self.dim)
        if place is None:
            return POINTWISE  # each output position copies the same position of one input
        # joined along a position axis, input k starts where the earlier ones end: a shift by
        # their size
        index, count = place
        steps: list[Step] = []
        offset = 0
        for shape in inputs:
            padding = tuple(offset if axis == index else 0 for axis in range(count))
            steps.append(Window((1,) * count, padding=padding))
            offset += shape[self.dim - 1]
        return tuple(steps)

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.cat, {"dim": self.dim}, packed=True)
