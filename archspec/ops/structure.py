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
from archspec.ops.layouts import ANY_LAYOUT, POSITIONS, Layout, default_layout, layout_of
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


@register
class Flatten(ParameterFree, Op):
    """`torch.flatten(x, start_dim, end_dim)`: (C, H, W) -> (C*H*W,) by default; with start_dim
    2, (C, H, W) -> (C, H*W), a map's positions as a sequence."""

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
    end_dim: Annotated[int, Field(ge=-1)] = -1  # -1: the last axis

    def _range(self, shape: Shape) -> tuple[int, int]:
        """The flattened axes as indices into the per-sample shape, first and last."""
        last = len(shape) if self.end_dim == -1 else self.end_dim
        if self.start_dim > len(shape) or not self.start_dim <= last <= len(shape):
            raise ShapeError(
                f"flatten from dim {self.start_dim} to {self.end_dim} does not fit an input of "
                f"rank {len(shape) + 1} (batch included)"
            )
        return self.start_dim - 1, last - 1

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        first, last = self._range(shape)
        return (*shape[:first], numel(shape[first : last + 1]), *shape[last + 1 :])

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        (shape,) = inputs
        layout = layout_of(shape)
        first, last = self._range(shape)
        if first == last:
            return layout  # one axis flattened is that axis unchanged
        merged = layout[first : last + 1]
        # positions alone become a sequence; anything with features, features
        letter = "L" if all(axis in POSITIONS for axis in merged) else "F"
        result = layout[:first] + letter + layout[last + 1 :]
        return result if len(set(result)) == len(result) else default_layout(len(result))

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a reshape: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        (shape,) = inputs
        first, last = self._range(shape)
        if first == last:
            return POINTWISE
        # positions merged into a sequence keep their fields; merged with features, none does
        merged = layout_of(shape)[first : last + 1]
        return POINTWISE if all(axis in POSITIONS for axis in merged) else GLOBAL

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        arguments = {"start_dim": self.start_dim}
        if self.end_dim != -1:
            arguments["end_dim"] = self.end_dim
        return TorchCall(torch.flatten, arguments)


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
