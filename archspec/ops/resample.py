"""Ops that change the spatial size: interpolation, transposed convolution, pixel (un)shuffle."""

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
    NonNegativePair,
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
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch

#: One axis of a receptive-field step: kernel, stride, padding, dilation.
AxisStep = tuple[int, Rational, Rational, int]
#: An axis's step, and whether it is exact (True) or a bound.
AxisWindow = tuple[AxisStep, bool]


def _window(axes: Sequence[AxisStep]) -> Window:
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
        step = _window([axis for axis, _ in self._axes(inputs)])
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


def _transposed_axis(kernel: int, stride: int, padding: int, dilation: int) -> AxisWindow:
    """Output o gets input i through tap k where o = i s - p + k d: i in [(o + p - d(k - 1))/s,
    (o + p)/s], a span of d(k - 1)/s around (o + p - d(k - 1)/2)/s."""
    reach = dilation * (kernel - 1)
    if stride == 1 and padding <= reach:
        # the taps o + p - k d: a convolution with the kernel flipped, padded by d(k - 1) - p
        return (kernel, 1, reach - padding, dilation), True
    # the fewest whole steps of 1/s spanning more than reach/s, centred on that span
    width = reach // stride + 1
    centred = Fraction(width - 1, 2) + Fraction(reach - 2 * padding, 2 * stride)
    if centred < 0:
        # padding beyond the kernel's reach: from the unit's own position to (o + p)/s
        return (
            math.floor(Fraction(padding, stride) + Fraction(1, 2)) + 1,
            Fraction(1, stride),
            0,
            1,
        ), False
    # the inputs are every whole position of the span, when undilated, and no step of 1/s
    # further is whole: exactly when width lies within (k - 1)/s and (k + 1)/s
    exact = dilation == 1 and width * stride <= kernel + 1
    return (width, Fraction(1, stride), centred, 1), exact


@register
class ConvTranspose2d(Op):
    """`nn.ConvTranspose2d`: (C_in, H, W) -> (out_channels, H', W'), with
    H' = (H - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1."""

    op: Literal["conv_transpose2d"] = "conv_transpose2d"
    arity = (1, 1)
    output_kept_for_backward = False  # its backward reads the input and the weight
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{UPWARDS ARROW}"
    runs_in_place = False
    out_channels: Channels
    kernel: PositivePair
    stride: PositivePair = (1, 1)
    padding: NonNegativePair = (0, 0)
    output_padding: NonNegativePair = (0, 0)
    groups: Channels = 1
    bias: bool = True
    dilation: PositivePair = (1, 1)

    @model_validator(mode="after")
    def _check(self) -> ConvTranspose2d:
        if self.out_channels % self.groups:
            raise ValueError(
                f"groups (={self.groups}) must divide out_channels (={self.out_channels})"
            )
        for axis, extra, s, d in zip(
            "HW", self.output_padding, self.stride, self.dilation, strict=True
        ):
            if extra >= max(s, d):
                raise ValueError(
                    f"output_padding (={extra}) must be smaller than stride (={s}) or dilation "
                    f"(={d}) along {axis} (torch's rule)"
                )
        return self

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        if shape[0] % self.groups:
            raise ShapeError(
                f"conv_transpose2d expects groups (={self.groups}) to divide in_channels "
                f"(={shape[0]})"
            )
        sizes = []
        for axis, size, k, s, p, extra, d in zip(
            "HW",
            shape[1:],
            self.kernel,
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
            strict=True,
        ):
            out = (size - 1) * s - 2 * p + d * (k - 1) + extra + 1
            if out < 1:
                raise ShapeError(
                    f"conv_transpose2d padding {p} crops away its whole output along {axis}: "
                    f"({size} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {extra} + 1 = {out}"
                )
            sizes.append(out)
        return (self.out_channels, *sizes)

    def mismatch_advice(self, layer: str, reader: str) -> str | None:
        if max(self.stride) == 1:
            return None
        return (
            f"conv_transpose2d {layer!r} grows by up to stride - 1 more rows and columns with "
            "`output_padding`, or by padding less"
        )

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # weight (C_in, C_out/G, H_k, W_k): each input channel feeds its group's C_out/G outputs,
        # plus one bias per output channel
        weights = inputs[0][0] * (self.out_channels // self.groups) * math.prod(self.kernel)
        return weights + (self.out_channels if self.bias else 0)

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every input element times every weight of its group: C_in x H x W x C_out/G x H_k x W_k,
        # products landing in the cropped padding included (torch computes and counts them)
        return numel(inputs[0]) * (self.out_channels // self.groups) * math.prod(self.kernel)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a multiply and an add per MAC, plus one bias add per output element
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias else 0)

    def _axes(self) -> list[AxisWindow]:
        return list(map(_transposed_axis, self.kernel, self.stride, self.padding, self.dilation))

    def window(self, inputs: Sequence[Shape]) -> Window:
        return _window([axis for axis, _ in self._axes()])

    def window_is_exact(self, inputs: Sequence[Shape]) -> bool:
        """Whether `window` is exact rather than a bound (see _transposed_axis)."""
        return all(exact for _, exact in self._axes())

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        messages = []
        for axis, k, s, d in zip(
            ("rows", "columns"), self.kernel, self.stride, self.dilation, strict=True
        ):
            # output o is reached through tap k when k d = o + p (mod s): some residues never are
            if len({i * d % s for i in range(min(k, s))}) < s:
                dilated = f" dilated by {d}" if d > 1 else ""
                messages.append(
                    f"conv_transpose2d kernel {k}{dilated} with stride {s}: some output {axis} "
                    "receive no input, only the bias"
                )
        return messages

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.ConvTranspose2d(
            inputs[0][0],
            self.out_channels,
            self.kernel,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.bias,
            self.dilation,
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
