"""A learned tensor as a layer: a class token, a position embedding, a layer scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import SHAPE_ONLY, Channels, Op, Shape, Step, TorchCall, TorchTensor
from archspec.ops.layouts import ANY_LAYOUT
from archspec.ops.registry import register

#: torch.nn.init's function for each `init`.
_INIT_FUNCTIONS = {
    "zeros": "zeros_",
    "ones": "ones_",
    "constant": "constant_",
    "normal": "normal_",
    "trunc_normal": "trunc_normal_",
}


@register
class Parameter(Op):
    """A learned tensor of `shape`, held at the layer's own name (the state_dict key is the
    layer's: `class_token`, `encoder.pos_embedding`), one per sample of the input's batch.

    `shape` is the tensor as torch keeps it. It meets the input as torch broadcasting would,
    from the last axis: one axis more than the input's sample is a batch axis of 1 (ViT's
    (1, 1, 768) class token beside (196, 768) tokens is one (1, 768) per sample); fewer axes
    are size 1 in front (ConvNeXt's (768, 1, 1) scale beside a (768, 7, 7) map). The input is
    read for its batch size only.
    """

    op: Literal["parameter"] = "parameter"
    arity = (1, 1)
    # its output is a view of the tensor itself: overwriting it would overwrite the weights
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False
    shape: Annotated[tuple[Channels, ...], Field(min_length=1, max_length=5)]
    init: Literal["zeros", "ones", "constant", "normal", "trunc_normal"] = "zeros"
    std: Annotated[float, Field(gt=0)] = 0.02  # of normal and trunc_normal
    value: float = 0.0  # of constant

    @model_validator(mode="after")
    def _settings_used(self) -> Parameter:
        given = self.model_fields_set
        if "std" in given and self.init not in ("normal", "trunc_normal"):
            raise ValueError(f"std is a setting of init normal or trunc_normal, not {self.init}")
        if "value" in given and self.init != "constant":
            raise ValueError(f"value is the setting of init constant, not {self.init}")
        if math.prod(self.shape) > 2**31:
            raise ValueError(f"shape {list(self.shape)} holds over 2**31 values")
        return self

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        rank = len(self.shape)
        if rank == len(shape) + 1:
            if self.shape[0] != 1:
                raise ShapeError(
                    f"parameter of shape {list(self.shape)} has one axis more than the input's "
                    f"sample {tuple(shape)}, so its first is the batch axis, which must be 1"
                )
            return self.shape[1:]
        if rank > len(shape):
            raise ShapeError(
                f"parameter of shape {list(self.shape)} has more axes than the input's sample "
                f"{tuple(shape)} and its batch axis"
            )
        return (1,) * (len(shape) - rank) + self.shape

    def mismatch_advice(self, layer: str, reader: str) -> str | None:
        return (
            f"{layer!r} is a learned tensor of the shape the spec gives it, whatever the input: "
            "size it from a parameter (the image size) and set that parameter rather than "
            "--input-shape"
        )

    def param_count(self, inputs: Sequence[Shape]) -> int:
        return math.prod(self.shape)

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a tensor read, nothing computed
        return 0

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 0

    def window(self, inputs: Sequence[Shape]) -> Step:
        # the input gives the batch size; its values are never read
        return SHAPE_ONLY

    def to_torch(self, inputs: Sequence[Shape]) -> TorchTensor:
        from archspec.ops import torch_modules

        init_kwargs = {}
        if self.init in ("normal", "trunc_normal"):
            init_kwargs = {"std": self.std}
        elif self.init == "constant":
            init_kwargs = {"val": self.value}
        per_sample = list(self.output_shape(inputs))
        call = TorchCall(torch_modules.batch_expand, {"sizes": per_sample})
        return TorchTensor(self.shape, _INIT_FUNCTIONS[self.init], init_kwargs, call)
