"""Max, average and adaptive (global) pooling over 1, 2 or 3 spatial axes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    AXIS_LETTERS,
    GLOBAL,
    LAYOUTS,
    Axes,
    NonNegativePair,
    NonNegativeSingle,
    NonNegativeTriple,
    Op,
    ParameterFree,
    PositivePair,
    PositiveSingle,
    PositiveTriple,
    Shape,
    Window,
    dropped_edges,
    expect_rank,
    numel,
    sliding_output,
)
from archspec.ops.layouts import CHANNELS_FIRST
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


class SlidingPool(ParameterFree, Op):
    """Shared rules of max and average pooling: (C, *spatial) -> (C, *spatial'), over the
    `spatial_rank` axes (L), (H, W) or (T, H, W)."""

    spatial_rank: ClassVar[int]
    arity = (1, 1)
    # conservative: max pooling saves its indices and average pooling nothing
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    kernel: Axes
    stride: Axes | None = None  # torch's default: the kernel size
    padding: Axes
    ceil_mode: bool = False

    @property
    def effective_stride(self) -> Axes:
        return self.stride or self.kernel

    @property
    def effective_dilation(self) -> Axes:
        return (1,) * self.spatial_rank

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
        expect_rank(self, shape, self.spatial_rank + 1, LAYOUTS[self.spatial_rank])
        spatial = sliding_output(
            self,
            shape[1:],
            self.kernel,
            self.effective_stride,
            self.padding,
            self.effective_dilation,
            self.ceil_mode,
        )
        return (shape[0], *spatial)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one compare (max) or add (average) per window element, per output element
        return numel(output) * math.prod(self.kernel)

    def window(self, inputs: Sequence[Shape]) -> Window:
        return self.sliding_window

    @cached_property
    def sliding_window(self) -> Window:
        """The window, whatever the input: built once, as layers written alike share one op."""
        return Window(self.kernel, self.effective_stride, self.padding, self.effective_dilation)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        if self.ceil_mode:
            return []
        dropped = dropped_edges(
            inputs[0][1:],
            self.kernel,
            self.effective_stride,
            self.padding,
            self.effective_dilation,
        )
        return [dropped] if dropped else []


class MaxPoolNd(SlidingPool):
    """`nn.MaxPool1d`, `nn.MaxPool2d` or `nn.MaxPool3d`, by `spatial_rank`."""

    dilation: Axes

    @property
    def effective_dilation(self) -> Axes:
        return self.dilation

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        modules: dict[int, Callable[..., nn.Module]] = {
            1: nn.MaxPool1d,
            2: nn.MaxPool2d,
            3: nn.MaxPool3d,
        }
        return modules[self.spatial_rank](
            self.kernel,
            self.effective_stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
        )


@register
class MaxPool1d(MaxPoolNd):
    """`nn.MaxPool1d`: (C, L) -> (C, L')."""

    op: Literal["max_pool1d"] = "max_pool1d"
    spatial_rank = 1
    kernel: PositiveSingle
    stride: PositiveSingle | None = None
    padding: NonNegativeSingle = (0,)
    dilation: PositiveSingle = (1,)


@register
class MaxPool2d(MaxPoolNd):
    """`nn.MaxPool2d`."""

    op: Literal["max_pool2d"] = "max_pool2d"
    spatial_rank = 2
    kernel: PositivePair
    stride: PositivePair | None = None
    padding: NonNegativePair = (0, 0)
    dilation: PositivePair = (1, 1)


@register
class MaxPool3d(MaxPoolNd):
    """`nn.MaxPool3d`: (C, T, H, W) -> (C, T', H', W')."""

    op: Literal["max_pool3d"] = "max_pool3d"
    spatial_rank = 3
    kernel: PositiveTriple
    stride: PositiveTriple | None = None
    padding: NonNegativeTriple = (0, 0, 0)
    dilation: PositiveTriple = (1, 1, 1)


class AvgPoolNd(SlidingPool):
    """`nn.AvgPool1d`, `nn.AvgPool2d` or `nn.AvgPool3d`, by `spatial_rank`."""

    count_include_pad: bool = True

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        modules: dict[int, Callable[..., nn.Module]] = {
            1: nn.AvgPool1d,
            2: nn.AvgPool2d,
            3: nn.AvgPool3d,
        }
        return modules[self.spatial_rank](
            self.kernel, self.effective_stride, self.padding, self.ceil_mode, self.count_include_pad
        )


@register
class AvgPool1d(AvgPoolNd):
    """`nn.AvgPool1d`: (C, L) -> (C, L')."""

    op: Literal["avg_pool1d"] = "avg_pool1d"
    spatial_rank = 1
    kernel: PositiveSingle
    stride: PositiveSingle | None = None
    padding: NonNegativeSingle = (0,)


@register
class AvgPool2d(AvgPoolNd):
    """`nn.AvgPool2d`."""

    op: Literal["avg_pool2d"] = "avg_pool2d"
    spatial_rank = 2
    kernel: PositivePair
    stride: PositivePair | None = None
    padding: NonNegativePair = (0, 0)


@register
class AvgPool3d(AvgPoolNd):
    """`nn.AvgPool3d`: (C, T, H, W) -> (C, T', H', W')."""

    op: Literal["avg_pool3d"] = "avg_pool3d"
    spatial_rank = 3
    kernel: PositiveTriple
    stride: PositiveTriple | None = None
    padding: NonNegativeTriple = (0, 0, 0)

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        output = super().output_shape(inputs)
        # unlike its 1-D and 2-D forms, torch's avg_pool3d checks the kernel against the input
        # before padding
        for axis, size, k in zip(AXIS_LETTERS[3], inputs[0][1:], self.kernel, strict=True):
            if size < k:
                raise ShapeError(
                    f"avg_pool3d kernel {k} is larger than the input along {axis} ({size}), "
                    "which torch refuses whatever the padding"
                )
        return output


class AdaptivePool(ParameterFree, Op):
    """Shared rules of adaptive pooling: (C, *spatial) -> (C, *output_size), over the
    `spatial_rank` axes; output_size 1 along every axis is global pooling."""

    spatial_rank: ClassVar[int]
    arity = (1, 1)
    # conservative: average pooling saves nothing for backward, max pooling its indices
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    output_size: Axes

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, self.spatial_rank + 1, LAYOUTS[self.spatial_rank])
        return (shape[0], *self.output_size)

    def window_sizes(self, spatial: Axes) -> list[list[int]]:
        """Per axis, torch's window i spans [floor(i*H/o), ceil((i+1)*H/o)); their lengths."""
        return [
            [-(-(i + 1) * size // out) - i * size // out for i in range(out)]
            for size, out in zip(spatial, self.output_size, strict=True)
        ]

    def window_reads(self, inputs: Sequence[Shape]) -> int:
        """Input elements read over all windows: each window element once per channel."""
        return inputs[0][0] * math.prod(sum(sizes) for sizes in self.window_sizes(inputs[0][1:]))

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        if all(out == 1 for out in self.output_size):
            return GLOBAL
        spatial = inputs[0][1:]
        kernel = tuple(max(sizes) for sizes in self.window_sizes(spatial))
        # window o spans [floor(o*r), ceil((o+1)*r)) for r = H/o': exact when r divides (kernel r,
        # stride r); otherwise the windows drift around the centres (o + 1/2)r - 1/2, each less
        # than half a pixel away, so the longest window placed on those centres bounds them all
        ratios = tuple(
            Fraction(size, out) for size, out in zip(spatial, self.output_size, strict=True)
        )
        padding = tuple((k - ratio) / 2 for k, ratio in zip(kernel, ratios, strict=True))
        return Window(kernel, ratios, padding)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        spatial = inputs[0][1:]
        if all(size % out == 0 for size, out in zip(spatial, self.output_size, strict=True)):
            return []
        sizes, outputs = ("x".join(str(v) for v in axes) for axes in (spatial, self.output_size))
        return [
            f"adaptive pooling from {sizes} to {outputs} uses overlapping windows of unequal "
            "size; its receptive field is an upper bound"
        ]


class AdaptiveAvgPoolNd(AdaptivePool):
    """`nn.AdaptiveAvgPool1d`, `nn.AdaptiveAvgPool2d` or `nn.AdaptiveAvgPool3d`."""

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every window element added once per channel, then one divide per output element
        return self.window_reads(inputs) + numel(output)

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        modules: dict[int, Callable[..., nn.Module]] = {
            1: nn.AdaptiveAvgPool1d,
            2: nn.AdaptiveAvgPool2d,
            3: nn.AdaptiveAvgPool3d,
        }
        return modules[self.spatial_rank](self.output_size)


@register
class AdaptiveAvgPool1d(AdaptiveAvgPoolNd):
    """`nn.AdaptiveAvgPool1d`: (C, L) -> (C, output_size); output_size 1 is global pooling."""

    op: Literal["adaptive_avg_pool1d"] = "adaptive_avg_pool1d"
    spatial_rank = 1
    output_size: PositiveSingle = (1,)


@register
class AdaptiveAvgPool2d(AdaptiveAvgPoolNd):
    """`nn.AdaptiveAvgPool2d`: (C, H, W) -> (C, *output_size); output_size 1 is global pooling."""

    op: Literal["adaptive_avg_pool2d"] = "adaptive_avg_pool2d"
    spatial_rank = 2
    output_size: PositivePair = (1, 1)


@register
class AdaptiveAvgPool3d(AdaptiveAvgPoolNd):
    """`nn.AdaptiveAvgPool3d`: (C, T, H, W) -> (C, *output_size); output_size 1 is global
    pooling."""

    op: Literal["adaptive_avg_pool3d"] = "adaptive_avg_pool3d"
    spatial_rank = 3
    output_size: PositiveTriple = (1, 1, 1)


@register
class AdaptiveMaxPool2d(AdaptivePool):
    """`nn.AdaptiveMaxPool2d`: (C, H, W) -> (C, *output_size); output_size 1 is global max
    pooling."""

    op: Literal["adaptive_max_pool2d"] = "adaptive_max_pool2d"
    spatial_rank = 2
    output_size: PositivePair = (1, 1)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one compare per window element, per channel; nothing to divide
        return self.window_reads(inputs)

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.AdaptiveMaxPool2d(self.output_size)
