"""Normalisation layers: batch norm and AlexNet's local response norm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from archspec.ops.base import Channels, Op, Shape, expect_rank, numel
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class BatchNorm2d(Op):
    """`nn.BatchNorm2d`: (C, H, W) -> (C, H, W), a scale and a shift per channel."""

    op: Literal["batchnorm2d"] = "batchnorm2d"
    output_kept_for_backward: ClassVar[bool] = False
    running_statistics: ClassVar[bool] = True
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

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # at inference: one multiply and one add per element
        return 2 * numel(output)

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.BatchNorm2d(
            inputs[0][0], self.eps, self.momentum, self.affine, self.track_running_stats
        )


@register
class LocalResponseNorm(Op):
    """`nn.LocalResponseNorm`: (C, H, W) -> (C, H, W), normalised over `size` channels."""

    op: Literal["local_response_norm"] = "local_response_norm"
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

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.LocalResponseNorm(self.size, self.alpha, self.beta, self.k)
