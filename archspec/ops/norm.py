"""Normalisation layers: batch norm and AlexNet's local response norm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from archspec.ops.base import (
    GLOBAL,
    POINTWISE,
    Channels,
    Op,
    ParameterFree,
    Shape,
    Window,
    expect_rank,
    numel,
)
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class BatchNorm2d(Op):
    """`nn.BatchNorm2d`: (C, H, W) -> (C, H, W), a scale and a shift per channel."""

    op: Literal["batchnorm2d"] = "batchnorm2d"
    arity = (1, 1)
    output_kept_for_backward = False
    running_statistics = True
    drawing_symbol = None
    runs_in_place = False
    eps: Annotated[float, Field(gt=0)] = 1e-5
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.1
    affine: bool = True
    track_running_stats: bool = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        return shape

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # weight and bias per channel; running mean and variance are buffers, not parameters
        return 2 * inputs[0][0] if self.affine else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the per-channel scale is no weight product of conv or matmul: counted in flops
        return 0

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # at inference: one multiply and one add per element
        return 2 * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        # without running statistics it normalises by the batch's even in eval mode, so every
        # position of the channel shifts and scales every unit
        return POINTWISE if self.track_running_stats else GLOBAL

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.BatchNorm2d(
            inputs[0][0], self.eps, self.momentum, self.affine, self.track_running_stats
        )


@register
class LocalResponseNorm(ParameterFree, Op):
    """`nn.LocalResponseNorm`: (C, H, W) -> (C, H, W), normalised over `size` channels."""

    op: Literal["local_response_norm"] = "local_response_norm"
    arity = (1, 1)
    # conservative: its last step, a divide, saves its operands and not its output
    output_kept_for_backward = True
    running_statistics = False
    drawing_symbol = None
    runs_in_place = False
    size: Channels
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        expect_rank(self, shape, 3, "(C, H, W)")
        return shape

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # per element: `size` squares summed, then scale, add, power and divide
        return (self.size + 4) * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Window:
        # it mixes neighbouring channels, never neighbouring positions
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.LocalResponseNorm(self.size, self.alpha, self.beta, self.k)
