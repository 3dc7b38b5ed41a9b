"""Ops that move or pass data without computing on it: flatten, dropout, identity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from archspec.errors import ShapeError
from archspec.ops.base import (
    GLOBAL,
    POINTWISE,
    Op,
    ParameterFree,
    Shape,
    TorchCall,
    Window,
    numel,
)
from archspec.ops.layouts import ANY_LAYOUT
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class Flatten(ParameterFree, Op):
    """`torch.flatten(x, start_dim)`: (C, H, W) -> (C*H*W,) with the default start_dim 1."""

    op: Literal["flatten"] = "flatten"
    arity = (1, 1)
    # its output is a view of its input: overwriting one would overwrite the other
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False
    start_dim: Annotated[int, Field(ge=1)] = 1  # 0 is the batch axis, which is never flattened

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        keep = self.start_dim - 1
        if keep >= len(shape):
            raise ShapeError(
                f"flatten start_dim {self.start_dim} does not exist in an input of "
                f"rank {len(shape) + 1} (batch included)"
            )
        return (*shape[:keep], numel(shape[keep:]))

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a reshape: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        return GLOBAL if self.start_dim < len(inputs[0]) else POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.flatten, {"start_dim": self.start_dim})


class IdentityAtInference:
    """Mixin of ops whose output at inference is their input (identity, dropout, stochastic
    depth): the same shape, no arithmetic, each position read alone."""

    # in training their backward reads the mask they drew, not their output
    output_kept_for_backward = False
    # at inference they return the input tensor itself
    output_is_input = True

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # what training draws or scales is not inference's work
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window:
        return POINTWISE


@register
class Dropout(IdentityAtInference, ParameterFree, Op):
    """`nn.Dropout`: zeroes elements with probability p during training; identity in eval."""

    op: Literal["dropout"] = "dropout"
    arity = (1, 1)
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = True
    p: Annotated[float, Field(ge=0, lt=1)] = 0.5

    #: The torch.nn class that drops: elements here, whole channels in Dropout2d.
    torch_class: ClassVar[str] = "Dropout"

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        module: torch.nn.Module = getattr(nn, self.torch_class)(self.p)
        return module

    def to_torch_in_place(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        module: torch.nn.Module = getattr(nn, self.torch_class)(self.p, inplace=True)
        return module


@register
class Identity(IdentityAtInference, ParameterFree, Op):
    """`nn.Identity`: passes its input through; a named placeholder."""

    op: Literal["identity"] = "identity"
    arity = (1, 1)
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from torch import nn

        return nn.Identity()
