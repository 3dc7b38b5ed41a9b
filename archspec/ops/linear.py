"""Fully connected layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from archspec.ops.base import POINTWISE, Channels, Op, Shape, Window, numel
from archspec.ops.layouts import FEATURES_LAST
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class Linear(Op):
    """`nn.Linear` over the last axis: (..., F_in) -> (..., out_features)."""

    op: Literal["linear"] = "linear"
    arity = (1, 1)
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = FEATURES_LAST
    runs_in_place = False
    out_features: Channels
    bias: bool = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        # the features are last: (F,), tokens (L, F) or a channels-last map (H, W, F)
        return (*inputs[0][:-1], self.out_features)

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # F_out x (F_in + 1): one weight per input feature, plus one bias
        return self.out_features * (inputs[0][-1] + int(self.bias))

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # F_in x F_out at each position: one multiply-accumulate per weight
        return numel(inputs[0]) * self.out_features

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a multiply and an add per MAC, plus one bias add per output element
        return 2 * self.macs(inputs, output) + (numel(output) if self.bias else 0)

    def window(self, inputs: Sequence[Shape]) -> Window:
        # each position's features alone: no window across positions
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.Linear(inputs[0][-1], self.out_features, self.bias)
