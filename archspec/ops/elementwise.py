"""Single-input ops that keep or reduce axes: mean, channel dropout, stochastic depth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from archspec.errors import ShapeError
from archspec.ops.base import (
    GLOBAL,
    POINTWISE,
    Op,
    ParameterFree,
    Shape,
    Step,
    TorchCall,
    Window,
    format_shape,
    numel,
)
from archspec.ops.layouts import (
    ANY_LAYOUT,
    CHANNELS_FIRST,
    Layout,
    layout_of,
    position_index,
    position_sizes,
)
from archspec.ops.registry import register
from archspec.ops.structure import Dropout, IdentityAtInference

if TYPE_CHECKING:
    import torch


def _axes(value: Any) -> Any:
    """`dims` as a spec writes it: a list of distinct axes, or one axis alone."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, list | tuple):
        return value  # pydantic names the type it expected
    if not value:
        raise ValueError("expected at least one axis to average, got []")
    for item in value:
        # pydantic reads true as 1, the channel axis: always a mistake here
        if isinstance(item, bool):
            raise ValueError(f"expected axis numbers, got {str(item).lower()}")
    counts = Counter(item for item in value if isinstance(item, int))  # pydantic checks the rest
    repeated = sorted(item for item, count in counts.items() if count > 1)
    if repeated:
        raise ValueError(f"dim {repeated[0]} is listed twice; each axis is averaged once")
    return value


#: An axis numbered with the batch as 0, which is never reduced.
Dim = Annotated[int, Field(ge=1)]
#: Axes to average; the schema offers what `_axes` takes: one axis, or a list of at least one.
Dims = Annotated[
    tuple[Dim, ...],
    BeforeValidator(_axes, json_schema_input_type=Dim | Annotated[list[Dim], Field(min_length=1)]),
]
#: A drop probability: 1 would drop everything and leave nothing to scale back.
DropProbability = Annotated[float, Field(ge=0, lt=1)]


@register
class Mean(ParameterFree, Op):
    """`torch.mean(x, dims, keepdim)`: the average over `dims`, numbered with the batch as 0,
    so [2, 3] averages (N, C, H, W) over H and W."""

    op: Literal["mean"] = "mean"
    dims: Dims
    keepdim: bool = False
    arity = (1, 1)
    # its backward spreads the gradient evenly, knowing only the input's shape
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        beyond = [dim for dim in self.dims if dim > len(shape)]
        if beyond:
            raise ShapeError(
                f"mean dim {beyond[0]} does not exist in an input of rank {len(shape) + 1} "
                f"(batch included)"
            )
        reduced = {dim - 1 for dim in self.dims}
        if self.keepdim:
            return tuple(1 if axis in reduced else size for axis, size in enumerate(shape))
        kept = tuple(size for axis, size in enumerate(shape) if axis not in reduced)
        if not kept:
            raise ShapeError(
                f"mean over dims {list(self.dims)} averages every axis of {format_shape(shape)} "
                f"away, leaving one number per sample; keepdim: true keeps them as size 1"
            )
        return kept

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        layout = layout_of(inputs[0])
        if self.keepdim:
            return layout
        return "".join(axis for index, axis in enumerate(layout) if index + 1 not in self.dims)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one add per input element into its sum, one divide per output element
        return numel(inputs[0]) + numel(output)

    def window(self, inputs: Sequence[Shape]) -> Step:
        (shape,) = inputs
        places = [position_index(shape, dim) for dim in self.dims]
        averaged = {place[0] for place in places if place is not None}
        sizes = position_sizes(shape)
        if not averaged:
            return POINTWISE  # every position keeps its own, averaged over features at most
        if not self.keepdim or len(averaged) == len(sizes):
            # either every unit reads everything, or the output's axes are no longer the
            # input's, so that no unit keeps a position (as after flatten)
            return GLOBAL
        # a line or plane through the unit's position: a pool whose kernel spans those axes
        return Window(tuple(size if axis in averaged else 1 for axis, size in enumerate(sizes)))

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.mean, {"dim": list(self.dims), "keepdim": self.keepdim})


@register
class Dropout2d(Dropout):
    """`nn.Dropout2d`: zeroes whole channels with probability p during training; identity in
    eval."""

    op: Literal["dropout2d"] = "dropout2d"  # type: ignore[assignment]
    torch_class = "Dropout2d"
    takes_layout = CHANNELS_FIRST

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        # torch reads a (N, C, L) input as channels of length L, and warns: feature maps only
        if len(shape) != 3:
            raise ShapeError(
                f"dropout2d expects an input of shape (C, H, W), got {format_shape(shape)}; "
                f"dropout drops single features"
            )
        return shape


@register
class StochasticDepth(IdentityAtInference, ParameterFree, Op):
    """torchvision's `StochasticDepth`: in training, drops a residual branch per sample ("row")
    or for the whole batch ("batch") with probability p, scaling survivors by 1 / (1 - p);
    identity in eval."""

    op: Literal["stochastic_depth"] = "stochastic_depth"
    p: DropProbability
    mode: Literal["row", "batch"] = "row"
    arity = (1, 1)
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from archspec.ops import torch_modules

        return torch_modules.StochasticDepth(self.p, self.mode)


@register
class Scale(ParameterFree, Op):
    """`x * factor`, a constant: (...) -> (...), as DeiT averages its two heads' logits."""

    op: Literal["scale"] = "scale"
    factor: float
    arity = (1, 1)
    # its backward multiplies the gradient by the factor: the output is not needed
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    runs_in_place = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # one multiply per element
        return numel(output)

    def window(self, inputs: Sequence[Shape]) -> Step:
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        import torch

        return TorchCall(torch.mul, {"other": self.factor})
