"""Max, average and adaptive (global) average pooling."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from archspec.ops.base import (
    GLOBAL,
    NonNegativePair,
    Op,
    Pair,
    ParameterFree,
    PositivePair,
    Shape,
    Window,
    dropped_edges,
    expect_rank,
    numel,
    sliding_output,
)
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


class SlidingPool(ParameterFree, Op):
    """Shared rules of max and average pooling: (C, H, W) -> (C, H', W')."""

    arity = (1, 1)
    # conservative: max pooling saves its indices and average pooling nothing
    output_kept_for_backward = True
    running_statistics = False
    drawing_symbol = None
    runs_in_place = False
    kernel: PositivePair
    stride: PositivePair | None = None  # torch's default: the kernel size
    padding: NonNegativePair = (0, 0)
    ceil_mode: bool = False

    @property
    def effective_stride(self) -> Pair:
        return self.stride or self.kernel

    @property
    def effective_dilation(self) -> Pair:
        return (1, 1)

    @model_validator(mode="after")
    def _check_padding(self) -> SlidingPool:
        for k, p in zip(self.kernel, self.padding, strict=True):
            # torch compares with the undilated kernel, whatever the dilation
            if p > k // 2:
                raise ValueError(
                    f"padding (={p}) must be at most half the kernel (={k}) (torch's rule)"
                )
        return self

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        spatial = sliding_output(
            self,
            (shape[1], shape[2]),
            self.kernel,
            self.effective_stride,
            self.padding,
            self.effective_dilation,
            self.ceil_mode,
        )
        return (shape[0], *spatial)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one compare (max) or add (average) per window element, per output element
        return numel(output) * self.kernel[0] * self.kernel[1]

    def window(self, inputs: Sequence[Shape]) -> Window:
        return Window(self.kernel, self.effective_stride, self.padding, self.effective_dilation)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        if self.ceil_mode:
            return []
        spatial = (inputs[0][1], inputs[0][2])
        dropped = dropped_edges(
            spatial, self.kernel, self.effective_stride, self.padding, self.effective_dilation
        )
        return [dropped] if dropped else []


@register
class MaxPool2d(SlidingPool):
    """`nn.MaxPool2d`."""

    op: Literal["max_pool2d"] = "max_pool2d"
    dilation: PositivePair = (1, 1)

    @property
    def effective_dilation(self) -> Pair:
        return self.dilation

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.MaxPool2d(
            self.kernel,
            self.effective_stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
        )


@register
class AvgPool2d(SlidingPool):
    """`nn.AvgPool2d`."""

    op: Literal["avg_pool2d"] = "avg_pool2d"
    count_include_pad: bool = True

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.AvgPool2d(
            self.kernel, self.effective_stride, self.padding, self.ceil_mode, self.count_include_pad
        )


@register
class AdaptiveAvgPool2d(ParameterFree, Op):
    """`nn.AdaptiveAvgPool2d`: (C, H, W) -> (C, *output_size); output_size 1 is global pooling."""

    op: Literal["adaptive_avg_pool2d"] = "adaptive_avg_pool2d"
    arity = (1, 1)
    # conservative: average pooling saves nothing for backward
    output_kept_for_backward = True
    running_statistics = False
    drawing_symbol = None
    runs_in_place = False
    output_size: PositivePair = (1, 1)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        return (shape[0], *self.output_size)

    def window_sizes(self, spatial: Pair) -> tuple[list[int], list[int]]:
        """Per axis, torch's window i spans [floor(i*H/o), ceil((i+1)*H/o)); their lengths."""
        axes = [
            [-(-(i + 1) * size // out) - i * size // out for i in range(out)]
            for size, out in zip(spatial, self.output_size, strict=True)
        ]
        return axes[0], axes[1]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every window element added once per channel, then one divide per output element
        heights, widths = self.window_sizes((inputs[0][1], inputs[0][2]))
        return inputs[0][0] * sum(heights) * sum(widths) + numel(output)

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        if self.output_size == (1, 1):
            return GLOBAL
        spatial = (inputs[0][1], inputs[0][2])
        heights, widths = self.window_sizes(spatial)
        kernel = (max(heights), max(widths))
        # window o spans [floor(o*r), ceil((o+1)*r)) for r = H/o': exact when r divides (kernel r,
        # stride r); otherwise the windows drift around the centres (o + 1/2)r - 1/2, each less
        # than half a pixel away, so the longest window placed on those centres bounds them all
        height_ratio = Fraction(spatial[0], self.output_size[0])
        width_ratio = Fraction(spatial[1], self.output_size[1])
        padding = ((kernel[0] - height_ratio) / 2, (kernel[1] - width_ratio) / 2)
        return Window(kernel, (height_ratio, width_ratio), padding)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        spatial = (inputs[0][1], inputs[0][2])
        if all(size % out == 0 for size, out in zip(spatial, self.output_size, strict=True)):
            return []
        return [
            f"adaptive pooling from {spatial[0]}x{spatial[1]} to "
            f"{self.output_size[0]}x{self.output_size[1]} uses overlapping windows of unequal "
            "size; its receptive field is an upper bound"
        ]

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool2d(self.output_size)
