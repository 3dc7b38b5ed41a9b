"""Normalisation layers: batch, group and instance norm, and AlexNet's local response norm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from archspec.errors import ShapeError
from archspec.ops.base import (
    GLOBAL,
    POINTWISE,
    Channels,
    Op,
    ParameterFree,
    Shape,
    Step,
    Window,
    expect_rank,
    format_shape,
    numel,
)
from archspec.ops.layouts import CHANNELS_FIRST
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


class ChannelNorm(Op):
    """Shared rules of batch and instance norm: (C, ...) -> (C, ...), a scale and a shift per
    channel, normalised by running statistics in eval mode when it tracks them."""

    arity = (1, 1)
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = True
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    #: Per-sample ranks the torch module takes, the layout an error names, and its nn class.
    ranks: ClassVar[tuple[int, ...]]
    layout: ClassVar[str]
    torch_class: ClassVar[str]
    eps: Annotated[float, Field(gt=0)] = 1e-5
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.1
    affine: bool = True
    track_running_stats: bool = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if len(shape) not in self.ranks:
            raise ShapeError(
                f"{self.op} expects an input of shape {self.layout}, got {format_shape(shape)}"
            )
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

    def window(self, inputs: Sequence[Shape]) -> Step:
        # without running statistics it normalises by the batch's (or the instance's) even in
        # eval mode, so every position of the channel shifts and scales every unit
        return POINTWISE if self.track_running_stats else GLOBAL

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        module: nn.Module = getattr(nn, self.torch_class)(
            inputs[0][0], self.eps, self.momentum, self.affine, self.track_running_stats
        )
        return module


@register
class BatchNorm1d(ChannelNorm):
    """`nn.BatchNorm1d`: (C,) or (C, L) -> the same, a scale and a shift per channel."""

    op: Literal["batchnorm1d"] = "batchnorm1d"
    ranks = (1, 2)
    layout = "(C,) or (C, L)"
    torch_class = "BatchNorm1d"


@register
class BatchNorm2d(ChannelNorm):
    """`nn.BatchNorm2d`: (C, H, W) -> (C, H, W), a scale and a shift per channel."""

    op: Literal["batchnorm2d"] = "batchnorm2d"
    ranks = (3,)
    layout = "(C, H, W)"
    torch_class = "BatchNorm2d"


@register
class BatchNorm3d(ChannelNorm):
    """`nn.BatchNorm3d`: (C, T, H, W) -> (C, T, H, W), a scale and a shift per channel."""

    op: Literal["batchnorm3d"] = "batchnorm3d"
    ranks = (4,)
    layout = "(C, T, H, W)"
    torch_class = "BatchNorm3d"


#: Per element, normalising by statistics computed on the fly: a sum for the mean, a subtract,
#: a square and a sum for the variance, a multiply by 1/std (per-group work is negligible).
_OWN_STATISTICS_FLOPS = 5
#: Per element, the affine weight and bias: a multiply and an add.
_AFFINE_FLOPS = 2


@register
class InstanceNorm(ChannelNorm):
    """`nn.InstanceNorm2d`: (C, H, W) -> (C, H, W), each sample's channel normalised by its own
    mean and variance over (H, W); running statistics only with `track_running_stats`."""

    op: Literal["instance_norm"] = "instance_norm"
    ranks = (3,)
    layout = "(C, H, W)"
    torch_class = "InstanceNorm2d"
    affine: bool = False
    track_running_stats: bool = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        shape = super().output_shape(inputs)
        if shape[1] * shape[2] == 1:
            # torch refuses it in training, and a plane of one value normalises to 0 anyway
            raise ShapeError(
                f"instance_norm needs more than one position per channel, got "
                f"{format_shape(shape)}: each value would be its own mean"
            )
        return shape

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        if self.track_running_stats:
            # in eval mode the running statistics fold into a scale and a shift, as batch norm's
            return 2 * numel(output)
        return (_OWN_STATISTICS_FLOPS + (_AFFINE_FLOPS if self.affine else 0)) * numel(output)


@register
class GroupNorm(Op):
    """`nn.GroupNorm`: (C, ...) -> (C, ...), normalised per sample over groups of C/G channels and
    all their positions; a scale and a shift per channel."""

    op: Literal["group_norm"] = "group_norm"
    arity = (1, 1)
    # its backward reads the input and the saved statistics, not the output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
    runs_in_place = False
    num_groups: Channels
    eps: Annotated[float, Field(gt=0)] = 1e-5
    affine: bool = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if shape[0] % self.num_groups:
            raise ShapeError(
                f"group_norm expects num_groups (={self.num_groups}) to divide the channels "
                f"(={shape[0]})"
            )
        return shape

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        if numel(inputs[0]) == self.num_groups:
            return [
                f"group_norm with {self.num_groups} groups of one value each: every value is its "
                "group's mean, so the output is the bias whatever the input"
            ]
        return []

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # weight and bias per channel
        return 2 * inputs[0][0] if self.affine else 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the per-channel scale is no weight product of conv or matmul: counted in flops
        return 0

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        return (_OWN_STATISTICS_FLOPS + (_AFFINE_FLOPS if self.affine else 0)) * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Step:
        # every unit is normalised by its group's statistics over the whole plane
        return GLOBAL

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.GroupNorm(self.num_groups, inputs[0][0], self.eps, self.affine)


@register
class LocalResponseNorm(ParameterFree, Op):
    """`nn.LocalResponseNorm`: (C, H, W) -> (C, H, W), normalised over `size` channels."""

    op: Literal["local_response_norm"] = "local_response_norm"
    arity = (1, 1)
    # conservative: its last step, a divide, saves its operands and not its output
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_FIRST
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
