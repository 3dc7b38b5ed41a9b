"""Ops that change the spatial size without weights: interpolation and pixel (un)shuffle."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    MAX_DIM,
    SHAPE_ONLY,
    Channels,
    Op,
    Pair,
    ParameterFree,
    PositivePair,
    Rational,
    Shape,
    Steps,
    TorchCall,
    Window,
    expect_rank,
    format_shape,
    numel,
)
from archspec.ops.layouts import CHANNELS_FIRST
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch

#: One axis of a receptive-field step: kernel, stride, padding, dilation.
AxisStep = tuple[int, Rational, Rational, int]
#: An axis's step, and whether it is exact (True) or a bound.
AxisWindow = tuple[AxisStep, bool]


def window_of(axes: Sequence[AxisStep]) -> Window:
    kernel, stride, padding, dilation = zip(*axes, strict=True)
    return Window(kernel, stride, padding, dilation)


def _scale_pair(value: Any) -> Any:
    """One factor for both axes, or [h, w]; true is refused rather than read as 1."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    if isinstance(value, int | float):
        return (value, value)
    return tuple(value) if isinstance(value, list) else value


def _positive_scale(value: int | float) -> int | float:
    if not 0 < value <= MAX_DIM:
        raise ValueError(f"a scale factor must be above 0 and at most {MAX_DIM}, got {value}")
    # a whole float names the integer factor: 2.0 must lower and sample exactly as 2 does
    return int(value) if isinstance(value, float) and value.is_integer() else value


ScaleFactor = Annotated[int | float, AfterValidator(_positive_scale)]
ScalePair = Annotated[
    tuple[ScaleFactor, ScaleFactor],
    BeforeValidator(_scale_pair, json_schema_input_type=float | tuple[float, float]),
]

# -- where torch's interpolation reads, per axis ---------------------------------------------------
# torch computes source coordinates in floating point (nearest always in float32). Where a
# coordinate is a whole pixel, rounding can move nearest one row early, or give bilinear's other
# neighbour a weight of 1e-16 instead of 0: a read. A window is declared exact only where that
# cannot happen, and is otherwise widened to a bound that holds those reads too.

#: Below this product of input and output size, float32's error in a source coordinate (about
#: in * 2^-22) stays under the least distance from a coordinate that is not whole to a whole one.
_FLOAT32_SAFE = 2**20


def _float32_holds(ratio: Fraction, out: int) -> bool:
    """Whether float32 holds the ratio and every coordinate (2o + 1) * ratio / 2 exactly: a
    power-of-two denominator, and numerators within float32's 24 bits."""
    denominator = ratio.denominator
    return denominator & (denominator - 1) == 0 and (2 * out + 1) * ratio.numerator < 2**24


def _float32_not_below(value: Fraction) -> bool:
    """Whether float32 rounds `value` (> 0) to itself or up: nearest, ties to even, 24 bits."""
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    if value < Fraction(2) ** exponent:
        exponent -= 1
    unit = Fraction(2) ** (exponent - 23)
    units, rest = divmod(value, unit)
    return rest == 0 or rest > unit / 2 or (rest == unit / 2 and units % 2 == 1)


def _nearest_axis(size: int, out: int) -> AxisWindow:
    """Unit o reads row floor(o r), r = size/out = a/b: the one row within half a row of
    o r - (b - 1)/(2b), so kernel 1, stride r, padding (b - 1)/(2b) (x2: 1/4)."""
    ratio = Fraction(size, out)
    # torch copies (x1) and shifts (x2) without arithmetic; elsewhere o times float32(r) floors
    # right when float32(r) is r or above it, the rows being 1/b apart
    if (
        out in (size, 2 * size)
        or _float32_holds(ratio, out)
        or (size * out < _FLOAT32_SAFE and _float32_not_below(ratio))
    ):
        return (1, ratio, Fraction(ratio.denominator - 1, 2 * ratio.denominator), 1), True
    # a row early (or, past the safe sizes, late): three rows centred on o r - 1/2 hold them
    return (3, ratio, Fraction(3, 2), 1), False


def _bilinear_axis(size: int, out: int) -> AxisWindow:
    """Unit o reads the rows within one row of c = (o + 1/2) r - 1/2 (clamped at 0), r =
    size/out: kernel 2, stride r, padding 1 - r/2 (x2: 3/4); at a whole c, c alone."""
    ratio = Fraction(size, out)
    # c is whole for some o only when both terms of r = a/b are odd (b > 1): (2o + 1)a = b mod 2b
    whole = ratio.numerator % 2 == 1 and ratio.denominator % 2 == 1 and ratio.denominator > 1
    unrounded = _float32_holds(ratio, out) or (size * out < _FLOAT32_SAFE and not whole)
    if ratio <= 2 and unrounded:
        return (2, ratio, 1 - ratio / 2, 1), True
    # within one row of c, float neighbours included; a kernel of r at least keeps padding >= 0
    kernel = max(3, math.ceil(ratio))
    return (kernel, ratio, (kernel - ratio) / 2, 1), False


def _aligned_axis(size: int, out: int) -> AxisWindow:
    """align_corners maps corner to corner, o to c = o (size - 1)/(out - 1): kernel 2,
    padding 1/2. With one row in or out, every unit reads row 0, whatever the stride."""
    if size == 1 or out == 1:
        return (2, Fraction(size, out), Fraction(1, 2), 1), True
    ratio = Fraction(size - 1, out - 1)
    if _float32_holds(ratio, out):
        return (2, ratio, Fraction(1, 2), 1), True
    # the last c is whole (size - 1), and rounded it may weigh the row before by 1e-16
    return (3, ratio, 1, 1), False


_AXES = {"nearest": _nearest_axis, "bilinear": _bilinear_axis}


@register
class Upsample(ParameterFree, Op):
    """`nn.Upsample`: (C, H, W) -> (C, H', W'), sized by `scale_factor`, by `size`, or like
    input 1 (FPN's and U-Net's "to the size of the skip"), whose values are never read."""

    op: Literal["upsample"] = "upsample"
    arity = (1, 2)
    output_kept_for_backward = False  # torch's backward needs the sizes only
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{UPWARDS ARROW}"
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    mode: Literal["nearest", "bilinear"] = "nearest"
    #: Per axis, an int, or a float giving floor(H * s) rows sampled as `size` would sample them
    #: (torch's recompute_scale_factor).
    scale_factor: ScalePair | None = None
    size: PositivePair | None = None
    align_corners: bool = False

    @model_validator(mode="after")
    def _check_sizing(self) -> Upsample:
        if self.scale_factor is not None and self.size is not None:
            raise ValueError("upsample takes scale_factor or size, not both")
        if self.align_corners and self.mode != "bilinear":
            raise ValueError(f"align_corners applies to bilinear only, not to {self.mode}")
        return self

    def output_size(self, inputs: Sequence[Shape]) -> Pair:
        """(H', W'), with errors that say which sizing is missing or doubled."""
        shape = inputs[0]
        expect_rank(self, shape, 3, "(C, H, W)")
        if len(inputs) == 2:
            if self.scale_factor is not None or self.size is not None:
                given = "scale_factor" if self.scale_factor is not None else "size"
                raise ShapeError(f"upsample takes {given} or a second input to match, not both")
            reference = inputs[1]
            if len(reference) != 3:
                raise ShapeError(
                    "upsample expects input 1 of shape (C, H, W), to take its H and W, got "
                    f"{format_shape(reference)}"
                )
            return reference[1], reference[2]
        if self.size is not None:
            return self.size
        if self.scale_factor is None:
            raise ShapeError("upsample needs scale_factor, size, or a second input to match")
        sizes = []
        for axis, size, factor in zip("HW", shape[1:], self.scale_factor, strict=True):
            out = math.floor(size * factor)  # torch's rule, in double precision as torch has it
            if out < 1:
                raise ShapeError(
                    f"upsample scale_factor {factor} takes {axis} from {size} to {size * factor:g}"
                    ": the output would be empty"
                )
            sizes.append(out)
        return sizes[0], sizes[1]

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return (inputs[0][0], *self.output_size(inputs))

    def mismatch_advice(self, layer: str, reader: str) -> str | None:
        if self.scale_factor is not None:
            given = f"scale_factor: {list(self.scale_factor)}"
        elif self.size is not None:
            given = f"size: {list(self.size)}"
        else:
            return None  # sized like its second input already
        return (
            f"upsample {layer!r} can take the size of the layer it meets in {reader!r}: "
            f"`inputs: [its input, that layer]` in place of `{given}`"
        )

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # nearest copies; bilinear weighs 4 neighbours: 4 multiplies and 3 adds per output element
        return 7 * numel(output) if self.mode == "bilinear" else 0

    def _axes(self, inputs: Sequence[Shape]) -> list[AxisWindow]:
        axis = _aligned_axis if self.align_corners else _AXES[self.mode]
        sizes = zip(inputs[0][1:], self.output_size(inputs), strict=True)
        return [axis(size, out) for size, out in sizes]

    def window(self, inputs: Sequence[Shape]) -> Steps:
        step = window_of([axis for axis, _ in self._axes(inputs)])
        return step if len(inputs) == 1 else (step, SHAPE_ONLY)  # input 1: its size alone

    def window_is_exact(self, inputs: Sequence[Shape]) -> bool:
        """Whether `window` is exact for these inputs rather than a bound: an exact step per
        axis."""
        return all(exact for _, exact in self._axes(inputs))

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module | TorchCall:
        from torch import nn

        align_corners = self.align_corners if self.mode == "bilinear" else None
        if len(inputs) == 2:
            from archspec.ops.torch_modules import upsample_like

            return TorchCall(upsample_like, {"mode": self.mode, "align_corners": align_corners})
        if self.scale_factor is None:
            return nn.Upsample(
                self.output_size(inputs), mode=self.mode, align_corners=align_corners
            )
        height, width = self.scale_factor
        whole = isinstance(height, int) and isinstance(width, int)
        return nn.Upsample(
            scale_factor=height if height == width else (height, width),
            mode=self.mode,
            align_corners=align_corners,
            # a fractional factor samples by the sizes' ratio, as `size` does, so it is exact
            recompute_scale_factor=None if whole else True,
        )


@register
class PixelShuffle(ParameterFree, Op):
    """`nn.PixelShuffle`: (C r^2, H, W) -> (C, H r, W r), each r^2 channels spread over an
    r x r block (ESPCN's sub-pixel convolution)."""

    op: Literal["pixel_shuffle"] = "pixel_shuffle"
    arity = (1, 1)
    output_kept_for_backward = False  # its backward is the inverse permutation
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{UPWARDS ARROW}"
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    upscale_factor: Channels

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        r = self.upscale_factor
        if shape[0] % (r * r):
            raise ShapeError(
                f"pixel_shuffle expects upscale_factor^2 (={r * r}) to divide the channels "
                f"(={shape[0]})"
            )
        return (shape[0] // (r * r), shape[1] * r, shape[2] * r)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a permutation of the elements: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window:
        # output (y, x) reads position (y // r, x // r): nearest upsampling's step
        r = self.upscale_factor
        return Window((1, 1), (Fraction(1, r),) * 2, (Fraction(r - 1, 2 * r),) * 2)

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.PixelShuffle(self.upscale_factor)


@register
class PixelUnshuffle(ParameterFree, Op):
    """`nn.PixelUnshuffle`: (C, H r, W r) -> (C r^2, H, W), each r x r block stacked into r^2
    channels."""

    op: Literal["pixel_unshuffle"] = "pixel_unshuffle"
    arity = (1, 1)
    output_kept_for_backward = False  # its backward is the inverse permutation
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{DOWNWARDS ARROW}"
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    downscale_factor: Channels

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        r = self.downscale_factor
        if shape[1] % r or shape[2] % r:
            raise ShapeError(
                f"pixel_unshuffle expects downscale_factor (={r}) to divide H (={shape[1]}) and "
                f"W (={shape[2]})"
            )
        return (shape[0] * r * r, shape[1] // r, shape[2] // r)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a permutation of the elements: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window:
        # a unit's r^2 channels at (y, x) read the r x r block at (y r, x r)
        r = self.downscale_factor
        return Window((r, r), (r, r))

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.PixelUnshuffle(self.downscale_factor)
