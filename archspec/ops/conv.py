"""1-D, 2-D and 3-D convolution, including grouped, dilated and depthwise forms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    LAYOUTS,
    Axes,
    Channels,
    NonNegativePair,
    NonNegativeSingle,
    NonNegativeTriple,
    Op,
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


class ConvNd(Op):
    """Rules of `nn.Conv1d`, `nn.Conv2d` and `nn.Conv3d`: (C_in, *spatial) -> (out_channels,
    *spatial'), over the `spatial_rank` axes (L), (H, W) or (T, H, W).

    Each registered subclass states its rank and types its per-axis fields for that rank.
    """

    spatial_rank: ClassVar[int]
    arity = (1, 1)
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    out_channels: Channels
    kernel: Axes
    stride: Axes
    padding: Axes | Literal["same", "valid"]
    dilation: Axes
    groups: Channels = 1
    bias: bool = True

    @model_validator(mode="after")
    def _check_same_padding(self) -> ConvNd:
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError("padding 'same' needs stride 1 (torch's rule)")
        if self.out_channels % self.groups:
            raise ValueError(
                f"groups (={self.groups}) must divide out_channels (={self.out_channels})"
            )
        return self

    @property
    def leading_padding(self) -> Axes:
        """Front, top and left padding; 'same' puts the odd pixel at the end, like torch."""
        if self.padding == "valid":
            return (0,) * self.spatial_rank
        if self.padding == "same":
            return tuple(d * (k - 1) // 2 for k, d in zip(self.kernel, self.dilation, strict=True))
        return self.padding

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, self.spatial_rank + 1, LAYOUTS[self.spatial_rank])
        in_channels = shape[0]
        if in_channels % self.groups:
            raise ShapeError(
                f"{self.op} expects groups (={self.groups}) to divide in_channels (={in_channels})"
            )
        if self.padding == "same":
            return (self.out_channels, *shape[1:])
        spatial = sliding_output(
            self, shape[1:], self.kernel, self.stride, self.leading_padding, self.dilation
        )
        return (self.out_channels, *spatial)

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # C_out x (C_in/G x prod(kernel) + 1): each filter sees C_in/G channels, plus one bias
        fan_in = inputs[0][0] // self.groups * math.prod(self.kernel)
        return self.out_channels * (fan_in + int(self.bias))

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one multiply-accumulate per weight of the filter, for every output element
        return numel(output) * (inputs[0][0] // self.groups) * math.prod(self.kernel)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a multiply and an add per MAC, plus one bias add per output element
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias else 0)

    def window(self, inputs: Sequence[Shape]) -> Window:
        return self.sliding_window

    @cached_property
    def sliding_window(self) -> Window:
        """The window, whatever the input: built once, as layers written alike share one op."""
        return Window(self.kernel, self.stride, self.leading_padding, self.dilation)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        if self.padding == "same":
            return []
        dropped = dropped_edges(
            inputs[0][1:], self.kernel, self.stride, self.leading_padding, self.dilation
        )
        return [dropped] if dropped else []

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        modules: dict[int, Callable[..., nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
        padding: str | Axes = self.padding
        return modules[self.spatial_rank](
            inputs[0][0],
            self.out_channels,
            self.kernel,
            self.stride,
            padding,
            self.dilation,
            self.groups,
            self.bias,
        )


@register
class Conv1d(ConvNd):
    """`nn.Conv1d`: (C_in, L) -> (out_channels, L')."""

    op: Literal["conv1d"] = "conv1d"
    spatial_rank = 1
    kernel: PositiveSingle
    stride: PositiveSingle = (1,)
    padding: NonNegativeSingle | Literal["same", "valid"] = (0,)
    dilation: PositiveSingle = (1,)


@register
class Conv2d(ConvNd):
    """`nn.Conv2d`: (C_in, H, W) -> (out_channels, H', W')."""

    op: Literal["conv2d"] = "conv2d"
    spatial_rank = 2
    kernel: PositivePair
    stride: PositivePair = (1, 1)
    padding: NonNegativePair | Literal["same", "valid"] = (0, 0)
    dilation: PositivePair = (1, 1)


@register
class Conv3d(ConvNd):
    """`nn.Conv3d`: (C_in, T, H, W) -> (out_channels, T', H', W')."""

    op: Literal["conv3d"] = "conv3d"
    spatial_rank = 3
    kernel: PositiveTriple
    stride: PositiveTriple = (1, 1, 1)
    padding: NonNegativeTriple | Literal["same", "valid"] = (0, 0, 0)
    dilation: PositiveTriple = (1, 1, 1)
