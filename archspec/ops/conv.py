"""2-D convolution, including grouped, dilated and depthwise forms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    Channels,
    NonNegativePair,
    Op,
    Pair,
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


@register
class Conv2d(Op):
    """`nn.Conv2d`: (C_in, H, W) -> (out_channels, H', W')."""

    op: Literal["conv2d"] = "conv2d"
    arity = (1, 1)
    output_kept_for_backward = False
    running_statistics = False
    drawing_symbol = None
    runs_in_place = False
    out_channels: Channels
    kernel: PositivePair
    stride: PositivePair = (1, 1)
    padding: NonNegativePair | Literal["same", "valid"] = (0, 0)
    dilation: PositivePair = (1, 1)
    groups: Channels = 1
    bias: bool = True

    @model_validator(mode="after")
    def _check_same_padding(self) -> Conv2d:
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError("padding 'same' needs stride 1 (torch's rule)")
        if self.out_channels % self.groups:
            raise ValueError(
                f"groups (={self.groups}) must divide out_channels (={self.out_channels})"
            )
        return self

    @property
    def leading_padding(self) -> Pair:
        """Top and left padding; 'same' puts the odd pixel at the bottom and right, like torch."""
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            total = [d * (k - 1) for k, d in zip(self.kernel, self.dilation, strict=True)]
            return (total[0] // 2, total[1] // 2)
        return self.padding

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        in_channels = shape[0]
        if in_channels % self.groups:
            raise ShapeError(
                f"conv2d expects groups (={self.groups}) to divide in_channels (={in_channels})"
            )
        if self.padding == "same":
            return (self.out_channels, shape[1], shape[2])
        spatial = sliding_output(
            self,
            (shape[1], shape[2]),
            self.kernel,
            self.stride,
            self.leading_padding,
            self.dilation,
        )
        return (self.out_channels, *spatial)

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # C_out x (C_in/G x H_k x W_k + 1): each filter sees C_in/G channels, plus one bias
        fan_in = inputs[0][0] // self.groups * self.kernel[0] * self.kernel[1]
        return self.out_channels * (fan_in + int(self.bias))

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one multiply-accumulate per weight of the filter, for every output element
        return numel(output) * (inputs[0][0] // self.groups) * self.kernel[0] * self.kernel[1]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a multiply and an add per MAC, plus one bias add per output element
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias else 0)

    def window(self, inputs: Sequence[Shape]) -> Window:
        return Window(self.kernel, self.stride, self.leading_padding, self.dilation)

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        if self.padding == "same":
            return []
        spatial = (inputs[0][1], inputs[0][2])
        dropped = dropped_edges(
            spatial, self.kernel, self.stride, self.leading_padding, self.dilation
        )
        return [dropped] if dropped else []

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        padding: str | Pair = self.padding
        return nn.Conv2d(
            inputs[0][0],
            self.out_channels,
            self.kernel,
            self.stride,
            padding,
            self.dilation,
            self.groups,
            self.bias,
        )
