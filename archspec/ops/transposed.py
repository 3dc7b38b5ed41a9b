"""Transposed convolution: the adjoint of a convolution, upsampling with learned weights."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    Channels,
    NonNegativePair,
    Op,
    PositivePair,
    Shape,
    Window,
    expect_rank,
    numel,
)
from archspec.ops.layouts import CHANNELS_FIRST
from archspec.ops.registry import register
from archspec.ops.resample import AxisWindow, window_of

if TYPE_CHECKING:
    import torch


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
    takes_layout = CHANNELS_FIRST
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
        return window_of([axis for axis, _ in self._axes()])

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
