"""Fully connected layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from archspec.ops.base import GLOBAL, POINTWISE, Channels, Op, Shape, Step, numel
from archspec.ops.layouts import FEATURES_LAST, POSITIONS, describe, layout_of
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
    #: What the last axis holds: features, as a linear layer expects, or positions it mixes on
    #: purpose (MLP-Mixer's token MLP, after a transpose puts the tokens last).
    over: Literal["features", "positions"] = "features"

    def layout_problem(self, shape: Shape) -> str | None:
        last = layout_of(shape)[-1]
        if self.over == "positions":
            if last in POSITIONS:
                return None
            return (
                f"linear over: positions mixes the positions of the last axis, but the last "
                f"axis of {describe(layout_of(shape))} holds {last}"
            )
        problem = self.takes_layout.problem(self.op, shape)
        if problem and last in POSITIONS and len(shape) == 2:
            return f"{problem}; or, to mix the positions along it (MLP-Mixer), over: positions"
        return problem

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

    def window(self, inputs: Sequence[Shape]) -> Step:
        # each position's features alone: no window across positions; mixing positions, every
        # output reads all of the axis
        return GLOBAL if self.over == "positions" else POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.Linear(inputs[0][-1], self.out_features, self.bias)
