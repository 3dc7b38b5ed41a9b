"""Element-wise activations: one class per torch module, all shape-preserving."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from archspec.errors import ShapeError
from archspec.ops.base import GLOBAL, POINTWISE, Op, ParameterFree, Shape, Window, numel
from archspec.ops.layouts import ANY_LAYOUT, position_index
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch


class ElementwiseFunction(Op):
    """Shape-preserving element-wise function; counts `flops_per_element` per output element.

    Each one states `runs_in_place`: True when its torch module takes `inplace`.
    """

    arity = (1, 1)
    # the conservative answer: relu, sigmoid and tanh differentiate through their output
    output_kept_for_backward = True
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = ANY_LAYOUT
    torch_name: ClassVar[str]
    flops_per_element: ClassVar[int] = 1

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the function's cost per element, once per output element
        return self.flops_per_element * numel(output)

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        return POINTWISE

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {}

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        return self._module(self.torch_arguments(inputs))

    def to_torch_in_place(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        if not self.runs_in_place:
            raise NotImplementedError(f"torch.nn.{self.torch_name} has no inplace option")
        return self._module({**self.torch_arguments(inputs), "inplace": True})

    def _module(self, arguments: dict[str, object]) -> torch.nn.Module:
        from torch import nn

        module: torch.nn.Module = getattr(nn, self.torch_name)(**arguments)
        return module


class Activation(ParameterFree, ElementwiseFunction):
    """An element-wise function without weights."""


@register
class ReLU(Activation):
    """max(0, x)."""

    op: Literal["relu"] = "relu"
    torch_name = "ReLU"
    runs_in_place = True


@register
class ReLU6(Activation):
    """min(max(0, x), 6), MobileNet's activation."""

    op: Literal["relu6"] = "relu6"
    torch_name = "ReLU6"
    runs_in_place = True


@register
class LeakyReLU(Activation):
    """x if x > 0 else negative_slope * x."""

    op: Literal["leaky_relu"] = "leaky_relu"
    negative_slope: Annotated[float, Field(ge=0)] = 0.01
    torch_name = "LeakyReLU"
    runs_in_place = True

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"negative_slope": self.negative_slope}


@register
class GELU(Activation):
    """x * Phi(x), exact or with the tanh approximation."""

    op: Literal["gelu"] = "gelu"
    approximate: Literal["none", "tanh"] = "none"
    torch_name = "GELU"
    runs_in_place = False
    flops_per_element = 8

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"approximate": self.approximate}


@register
class SiLU(Activation):
    """x * sigmoid(x) (swish)."""

    op: Literal["silu"] = "silu"
    torch_name = "SiLU"
    runs_in_place = True
    flops_per_element = 5


@register
class Sigmoid(Activation):
    """1 / (1 + exp(-x))."""

    op: Literal["sigmoid"] = "sigmoid"
    torch_name = "Sigmoid"
    runs_in_place = False
    flops_per_element = 4


@register
class Tanh(Activation):
    """tanh(x)."""

    op: Literal["tanh"] = "tanh"
    torch_name = "Tanh"
    runs_in_place = False
    flops_per_element = 5


@register
class Hardswish(Activation):
    """x * relu6(x + 3) / 6 (MobileNetV3)."""

    op: Literal["hardswish"] = "hardswish"
    torch_name = "Hardswish"
    runs_in_place = True
    flops_per_element = 4


@register
class Softmax(Activation):
    """exp(x) / sum(exp(x)) along `dim` (1 is the channel or feature axis; 0 is the batch)."""

    op: Literal["softmax"] = "softmax"
    dim: Annotated[int, Field(ge=1)] = 1
    torch_name = "Softmax"
    runs_in_place = False
    flops_per_element = 3  # exp, sum, divide

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        if self.dim > len(shape):
            raise ShapeError(
                f"softmax dim {self.dim} does not exist in an input of rank "
                f"{len(shape) + 1} (batch included)"
            )
        return shape

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"dim": self.dim}

    def window(self, inputs: Sequence[Shape]) -> Window | Literal["global"]:
        # softmax over a position axis mixes every position along it; over features, none
        return POINTWISE if position_index(inputs[0], self.dim) is None else GLOBAL


@register
class Hardsigmoid(Activation):
    """relu6(x + 3) / 6 (MobileNetV3's gates)."""

    op: Literal["hardsigmoid"] = "hardsigmoid"
    torch_name = "Hardsigmoid"
    runs_in_place = True
    # its backward never reads the result, run in place or not (tests/test_ops_elementwise.py)
    output_kept_for_backward = False
    output_is_input = False
    flops_per_element = 3  # add, clamp, divide


@register
class Mish(Activation):
    """x * tanh(softplus(x))."""

    op: Literal["mish"] = "mish"
    torch_name = "Mish"
    runs_in_place = True
    # its backward never reads the result, run in place or not (tests/test_ops_elementwise.py)
    output_kept_for_backward = False
    output_is_input = False
    flops_per_element = 9  # softplus 3 (exp, add, log), tanh 5, multiply


@register
class ELU(Activation):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    op: Literal["elu"] = "elu"
    alpha: Annotated[float, Field(ge=0)] = 1.0
    torch_name = "ELU"
    runs_in_place = True
    # run in place, its backward differentiates through the result: it must stay unchanged
    output_kept_for_backward = True
    output_is_input = False
    flops_per_element = 4  # exp, subtract, multiply, select

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"alpha": self.alpha}


@register
class Softplus(Activation):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""

    op: Literal["softplus"] = "softplus"
    beta: Annotated[float, Field(gt=0)] = 1.0
    threshold: float = 20.0
    torch_name = "Softplus"
    runs_in_place = False
    # its backward reads the input, not the result
    output_kept_for_backward = False
    output_is_input = False
    flops_per_element = 5  # multiply, exp, add, log, divide

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"beta": self.beta, "threshold": self.threshold}


def _one_or_channels(value: Any) -> Any:
    # pydantic reads true as 1: `num_parameters: true` is a mistake, not one slope
    if isinstance(value, bool):
        raise ValueError(f"expected 1 or 'channels', got {str(value).lower()}")
    return value


@register
class PReLU(ElementwiseFunction):
    """x if x > 0 else a * x, with a learned slope a: one, or one per channel."""

    op: Literal["prelu"] = "prelu"
    num_parameters: Annotated[Literal[1, "channels"], BeforeValidator(_one_or_channels)] = 1
    init: float = 0.25  # the slopes' initial value
    torch_name = "PReLU"
    runs_in_place = False
    # its backward reads the input and the slopes, not the result
    output_kept_for_backward = False
    output_is_input = False
    flops_per_element = 1  # the select of x or a * x, as leaky_relu counts it

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # one slope, or one per channel (per feature of an (F,) input)
        return 1 if self.num_parameters == 1 else inputs[0][0]

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the slope is a weight, but a MAC is what torch's FlopCounterMode counts: conv and
        # matmul only
        return 0

    def torch_arguments(self, inputs: Sequence[Shape]) -> dict[str, object]:
        return {"num_parameters": self.param_count(inputs), "init": self.init}
