"""Layer norm: each position's features normalised to zero mean and unit variance."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from archspec.errors import ShapeError
from archspec.ops.base import GLOBAL, POINTWISE, Op, Shape, Step
from archspec.ops.layouts import FEATURES_FIRST_OR_LAST, POSITIONS, is_features_last, layout_of
from archspec.ops.norm import _AFFINE_FLOPS, _OWN_STATISTICS_FLOPS
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class LayerNorm(Op):
    """`nn.LayerNorm` over the features: the last `axes` axes of a features-last input ((L, C)
    tokens, an (H, W, C) map), or the channels of a channels-first map, (C, H, W), as
    torchvision's LayerNorm2d in ConvNeXt. A scale and a shift per normalised element."""

    op: Literal["layer_norm"] = "layer_norm"
    arity = (1, 1)
    # its backward reads the input and the saved statistics, not the output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = FEATURES_FIRST_OR_LAST
    runs_in_place = False
    eps: Annotated[float, Field(gt=0)] = 1e-5
    elementwise_affine: bool = True
    bias: bool = True
    #: How many trailing axes are normalised together, for a features-last input.
    axes: Annotated[int, Field(ge=1, le=4)] = 1

    def normalized_shape(self, shape: Shape) -> Shape:
        if not is_features_last(layout_of(shape)):  # channels first: the channels alone
            if self.axes != 1:
                raise ShapeError(
                    f"layer_norm of a channels-first map normalises its channels alone, so "
                    f"axes must be 1, got {self.axes}"
                )
            return (shape[0],)
        if self.axes > len(shape):
            raise ShapeError(
                f"layer_norm over the last {self.axes} axes of an input of {len(shape)} "
                "(batch excluded)"
            )
        return tuple(shape[-self.axes :])

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        self.normalized_shape(shape)
        return shape

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # a weight, and a bias unless left out, per normalised element
        if not self.elementwise_affine:
            return 0
        return math.prod(self.normalized_shape(inputs[0])) * (1 + int(self.bias))

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the per-feature scale is no weight product of conv or matmul: counted in flops
        return 0

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # counted as group and instance norm count their own statistics
        affine = _AFFINE_FLOPS if self.elementwise_affine else 0
        return (_OWN_STATISTICS_FLOPS + affine) * math.prod(output)

    def window(self, inputs: Sequence[Shape]) -> Step:
        (shape,) = inputs
        normalised = layout_of(shape)[-self.axes :] if is_features_last(layout_of(shape)) else ""
        # statistics over features stay at each position; over positions, they span them
        return GLOBAL if any(axis in POSITIONS for axis in normalised) else POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        from archspec.ops import torch_modules

        (shape,) = inputs
        normalized = list(self.normalized_shape(shape))
        module_class = nn.LayerNorm
        if not is_features_last(layout_of(shape)):
            module_class = torch_modules.LayerNormOverChannels
        return module_class(normalized, self.eps, self.elementwise_affine, self.bias)
