"""Ops that grow or cut the spatial borders without arithmetic: pad and crop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    SHAPE_ONLY,
    Channels,
    Offset,
    Op,
    ParameterFree,
    Shape,
    Step,
    Steps,
    TorchCall,
    Window,
    format_shape,
)
from archspec.ops.channels import SIDES, SPATIAL_AXES, SpatialSizes, shift, spatial_axes
from archspec.ops.layouts import CHANNELS_FIRST
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


_PAD_MODULES = {
    "constant": "ConstantPad",
    "reflect": "ReflectionPad",
    "replicate": "ReplicationPad",
    "circular": "CircularPad",
}


@register
class Pad(ParameterFree, Op):
    """`nn.ConstantPad2d` and its kin: (C, H, W) -> (C, top + H + bottom, left + W + right).

    `padding` is one int for every side, or (before, after) per spatial axis in the shape's
    order: [left, right] of (C, L), [top, bottom, left, right] of (C, H, W), [front, back, top,
    bottom, left, right] of (C, T, H, W). (F.pad takes them last axis first.)
    """

    op: Literal["pad"] = "pad"
    arity = (1, 1)
    # it writes a new tensor, even for zero padding (tests/test_ops_plumbing.py checks), and its
    # backward reads no output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    padding: Offset | Annotated[tuple[Offset, ...], Field(min_length=2, max_length=6)]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = 0.0  # what mode constant pads with

    @model_validator(mode="after")
    def _check(self) -> Pad:
        if isinstance(self.padding, tuple) and len(self.padding) % 2:
            raise ValueError(
                f"padding takes a (before, after) pair per spatial axis, got "
                f"{len(self.padding)} values"
            )
        if self.value != 0 and self.mode != "constant":
            raise ValueError(
                f"value (={self.value}) is what mode constant pads with; mode {self.mode} "
                "pads with the input's own values"
            )
        return self

    def sides(self, shape: Shape) -> tuple[tuple[int, int], ...]:
        """(before, after) per spatial axis of `shape`, in the shape's order."""
        axes = spatial_axes(self, shape)
        count = 2 * len(axes)
        values = self.padding if isinstance(self.padding, tuple) else (self.padding,) * count
        if len(values) != count:
            names = ", ".join(side for axis in axes for side in SIDES[axis])
            raise ShapeError(
                f"pad takes {count} padding values ([{names}]) for an input of shape "
                f"{format_shape(shape)}, got {len(values)}"
            )
        return tuple(zip(values[::2], values[1::2], strict=True))

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        sides = self.sides(shape)
        for axis, size, pair in zip(spatial_axes(self, shape), shape[1:], sides, strict=True):
            for side, amount in zip(SIDES[axis], pair, strict=True):
                # torch's rules: a reflection never repeats the edge, a wrap goes round once
                if self.mode == "reflect" and amount >= size:
                    raise ShapeError(
                        f"pad mode reflect needs each padding below the input's size: {side} "
                        f"(={amount}) is not below {axis} (={size})"
                    )
                if self.mode == "circular" and amount > size:
                    raise ShapeError(
                        f"pad mode circular wraps around at most once: {side} (={amount}) is "
                        f"more than {axis} (={size})"
                    )
        return (shape[0], *(size + sum(pair) for size, pair in zip(shape[1:], sides, strict=True)))

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a copy: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Step:
        (shape,) = inputs
        steps = [
            _pad_step(self.mode, before, after, size)
            for (before, after), size in zip(self.sides(shape), shape[1:], strict=True)
        ]
        kernel, padding, dilation = zip(*steps, strict=True)
        return Window(kernel, padding=padding, dilation=dilation)

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        sides = self.sides(inputs[0])
        pads = tuple(amount for pair in reversed(sides) for amount in pair)  # F.pad's order
        module_class = getattr(nn, f"{_PAD_MODULES[self.mode]}{len(sides)}d")
        module: nn.Module = (
            module_class(pads, self.value) if self.mode == "constant" else module_class(pads)
        )
        return module


def _pad_step(mode: str, before: int, after: int, size: int) -> tuple[int, int, int]:
    """Kernel, padding and dilation of padded position o along one axis: it reads o - before
    inside the input, and elsewhere what the mode fills in."""
    if mode == "constant" or before == after == 0:
        return 1, before, 1  # exact: the constant reads nothing
    if mode == "circular":
        # exact: a wrapped read is o - before + size (leading side) or - size (trailing side),
        # and of the taps o - before + k * size only the one inside the input is ever read
        if before and after:
            return 3, before + size, size
        return (2, before, size) if before else (2, size, size)
    if mode == "replicate":
        # a bound: the edge pixel lies up to `before` ahead of o - before, or `after` behind
        return before + after + 1, before + after, 1
    # reflect, a bound: the mirrored pixel lies up to 2 before ahead or 2 after behind
    return 2 * (before + after) + 1, before + 2 * after, 1


@register
class Crop(ParameterFree, Op):
    """Centre crop of input 0 to `size`, or to the spatial size of input 1 (the unpadded U-Net's
    skip connection): (C, H, W) -> (C, h, w) from row (H - h) // 2 and column (W - w) // 2."""

    op: Literal["crop"] = "crop"
    arity = (1, 2)
    # with a second input it lowers to a view of input 0: overwriting one would overwrite both
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    #: One size for every spatial axis or one per axis; None: the size of input 1.
    size: Channels | SpatialSizes | None = None

    def box(self, inputs: Sequence[Shape]) -> tuple[tuple[int, int], ...]:
        """(start, length) per spatial axis of input 0."""
        shape = inputs[0]
        axes = spatial_axes(self, shape)
        target = self._target(inputs, axes)
        box = []
        for axis, have, want in zip(axes, shape[1:], target, strict=True):
            if want > have:
                larger = ": input 1 is larger than input 0" if len(inputs) == 2 else ""
                raise ShapeError(f"crop cannot grow {axis} from {have} to {want}{larger}")
            box.append(((have - want) // 2, want))
        return tuple(box)

    def _target(self, inputs: Sequence[Shape], axes: tuple[str, ...]) -> tuple[int, ...]:
        if len(inputs) == 2:
            if self.size is not None:
                raise ShapeError("crop takes `size` or a second input to match, not both")
            reference = inputs[1]
            if len(reference) != len(inputs[0]):
                raise ShapeError(
                    f"crop expects input 1 of input 0's rank, to take its spatial size: got "
                    f"{format_shape(inputs[0])} and {format_shape(reference)}"
                )
            return reference[1:]
        if self.size is None:
            raise ShapeError("crop needs `size` or a second input, the layer whose size to match")
        if isinstance(self.size, int):
            return (self.size,) * len(axes)
        if len(self.size) != len(axes):
            raise ShapeError(
                f"crop size {list(self.size)} has {len(self.size)} values, but an input of shape "
                f"{format_shape(inputs[0])} has {len(axes)} spatial axes ({', '.join(axes)})"
            )
        return self.size

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return (inputs[0][0], *(length for _, length in self.box(inputs)))

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        messages = []
        axes = SPATIAL_AXES[len(inputs[0])]
        for axis, size, (start, length) in zip(axes, inputs[0][1:], self.box(inputs), strict=True):
            if (size - length) % 2:
                messages.append(
                    f"crop of {axis} from {size} to {length} is off-centre by half a pixel: it "
                    f"drops {start} at the {SIDES[axis][0]} and {start + 1} at the {SIDES[axis][1]}"
                )
        return messages

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a copy (or a view): no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Steps:
        step = shift([start for start, _ in self.box(inputs)])
        return step if len(inputs) == 1 else (step, SHAPE_ONLY)  # input 1: its size alone

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        from torch.nn import functional

        box = self.box(inputs)
        if len(inputs) == 2:
            from archspec.ops.torch_modules import centre_crop

            return TorchCall(
                centre_crop,
                {"starts": [start for start, _ in box], "lengths": [length for _, length in box]},
            )
        # a negative padding removes: one call, which torch.export and ONNX (Pad) keep
        trims = [
            (start, size - start - length)
            for (start, length), size in zip(box, inputs[0][1:], strict=True)
        ]
        pads = tuple(-amount for pair in reversed(trims) for amount in pair)  # F.pad's order
        return TorchCall(functional.pad, {"pad": pads})
