"""The contract every op implements: fields, shape rule, counts, receptive-field step, lowering."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from archspec.errors import ShapeError
from archspec.ops.layouts import Layout, LayoutRule, default_layout, layout_of

if TYPE_CHECKING:
    import torch

Shape = tuple[int, ...]
#: A tensor, or an fx node standing for one.
TensorLike = TypeVar("TensorLike")
#: One int per spatial axis: (L,) for audio, (H, W) for images, (T, H, W) for video.
Axes = tuple[int, ...]
Pair = tuple[int, int]
#: An exact number of input pixels: an int when whole, else a Fraction (a stride of 5/2).
Rational = int | Fraction
RationalAxes = tuple[Rational, ...]
RationalPair = tuple[Rational, Rational]

#: Upper bound of a channel count, feature count or spatial size: beyond it a spec is absurd.
MAX_DIM = 1_000_000

#: Per spatial rank, the letters errors name the axes by and the per-sample layout they write.
AXIS_LETTERS = {1: "L", 2: "HW", 3: "THW"}
LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, T, H, W)"}
#: Per spatial rank, what a per-axis field's list holds, in order.
AXIS_WORDS = {1: "length", 2: "height, width", 3: "time, height, width"}


def _to_axes(rank: int) -> Callable[[Any], Any]:
    """Per-axis values are tuples of the rank's length from the first validator on."""

    def to_axes(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return (value,) * rank
        if isinstance(value, list | tuple):
            if len(value) != rank:
                raise ValueError(
                    f"expected one value or a list of {rank} ({AXIS_WORDS[rank]}), got a list "
                    f"of {len(value)}: {list(value)}"
                )
            return tuple(value)
        return value

    return to_axes


def _reject_bool(value: Any) -> Any:
    # pydantic reads true as 1; in a size that is always a mistake (`out_features: true`)
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {str(value).lower()}")
    return value


Channels = Annotated[int, BeforeValidator(_reject_bool), Field(ge=1, le=MAX_DIM)]
Offset = Annotated[int, BeforeValidator(_reject_bool), Field(ge=0, le=MAX_DIM)]
# the schema offers exactly what the validator takes: one int, or a list of the rank's length
_SingleInput = BeforeValidator(_to_axes(1), json_schema_input_type=int | tuple[int])
_PairInput = BeforeValidator(_to_axes(2), json_schema_input_type=int | tuple[int, int])
_TripleInput = BeforeValidator(_to_axes(3), json_schema_input_type=int | tuple[int, int, int])
#: Per-axis fields of 1-D, 2-D and 3-D ops (torch's _single, _pair, _triple).
PositiveSingle = Annotated[tuple[Channels], _SingleInput]
PositivePair = Annotated[tuple[Channels, Channels], _PairInput]
PositiveTriple = Annotated[tuple[Channels, Channels, Channels], _TripleInput]
NonNegativeSingle = Annotated[tuple[Offset], _SingleInput]
NonNegativePair = Annotated[tuple[Offset, Offset], _PairInput]
NonNegativeTriple = Annotated[tuple[Offset, Offset, Offset], _TripleInput]


@dataclass(frozen=True)
class Window:
    """How an output position reads its input, per spatial axis: one receptive-field step.

    Output unit o reads input positions o*stride - padding + i*dilation for i < kernel, along
    each axis of the kernel: (L,), (H, W) or (T, H, W). Stride and padding may be fractions, for
    windows that move by less or other than a whole pixel (adaptive pooling from 10 to 4 rows
    steps by 5/2; upsampling by 2 steps by 1/2). Left empty, stride and dilation are 1 and
    padding 0 along every axis of the kernel.
    """

    kernel: Axes
    stride: RationalAxes = ()
    padding: RationalAxes = ()  # leading (front, top, left) padding
    dilation: Axes = ()

    def __post_init__(self) -> None:
        rank = len(self.kernel)
        # whole fractions become ints, so windows compare and print as written
        stride = tuple(map(exact, self.stride)) if self.stride else (1,) * rank
        padding = tuple(map(exact, self.padding)) if self.padding else (0,) * rank
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)
        if not self.dilation:
            object.__setattr__(self, "dilation", (1,) * rank)
        if not len(stride) == len(padding) == len(self.dilation) == rank:
            raise ValueError(
                f"a window of kernel {self.kernel} needs {rank} strides, paddings and "
                f"dilations, got {stride}, {padding} and {self.dilation}"
            )


def exact(value: Rational) -> Rational:
    """`value` as an int when it is whole, else as a Fraction in lowest terms."""
    if isinstance(value, int):  # the common case, and the cheap one
        return value
    fraction = Fraction(value)
    return fraction.numerator if fraction.denominator == 1 else fraction


#: The window of ops that map each position to itself (activations, norms, adds), on inputs of
#: any spatial rank: a receptive field passes through it unchanged, whatever its axes.
POINTWISE = Window((1, 1))
#: Returned by ops whose every output sees the whole input (flatten, global pooling).
GLOBAL: Literal["global"] = "global"
#: For an input read only for its shape, never its values (upsampling or cropping to the size
#: of a second input): it adds nothing to the receptive field.
SHAPE_ONLY: Literal["shape"] = "shape"
#: One receptive-field step: how an output unit reads an input.
Step = Window | Literal["global", "shape"]
#: A step per input, for ops that read their inputs differently (concat along H shifts the later
#: inputs down); a single Step means every input is read the same way.
Steps = Step | tuple[Step, ...]


@dataclass(frozen=True)
class TorchCall:
    """A parameter-free op lowered to a function call on the inputs instead of a module."""

    function: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    packed: bool = False  # pass the inputs as one list (torch.cat) rather than positionally
    chained: bool = False  # fold n inputs pairwise (a + b + c)

    def apply(self, inputs: Sequence[TensorLike], call: Callable[..., TensorLike]) -> TensorLike:
        """`function` on `inputs` in the layout above; `call(function, args, kwargs)` makes each
        call, so an fx graph can record it (`graph.call_function`) or eager code can run it."""
        if self.packed:
            return call(self.function, (list(inputs),), self.kwargs)
        if self.chained:
            result = inputs[0]
            for item in inputs[1:]:
                result = call(self.function, (result, item), self.kwargs)
            return result
        return call(self.function, tuple(inputs), self.kwargs)


@dataclass(frozen=True)
class TorchTensor:
    """A learned tensor held at the layer's own name, so that its state_dict key is the layer's
    (torchvision's `class_token`), then `call` on (the tensor, *the layer's inputs).

    `init` names the `torch.nn.init` function that fills it (`trunc_normal_`), with `init_kwargs`.
    """

    shape: tuple[int, ...]
    init: str
    init_kwargs: dict[str, float]
    call: TorchCall


class Op(BaseModel):
    """Base of every op: a validated record of its fields plus the rules that use them.

    Every facet is abstract or a ClassVar without a value, so an op that forgets one fails at
    instantiation or in tests/test_op_contracts.py instead of passing with a made-up default.
    """

    # inf and nan are never a setting: `eps: .inf` would compile to a network of NaNs
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)

    op: str
    #: Fewest and most inputs the op takes (None: no upper bound).
    arity: ClassVar[tuple[int, int | None]]
    #: Whether torch's backward of this op reads its output. When it does not (conv, linear,
    #: batch norm, add), the activation reading that output alone may overwrite it in place.
    output_kept_for_backward: ClassVar[bool]
    #: Whether the output may be input 0 itself (dropout at inference): overwriting it then
    #: overwrites that input, so it may be overwritten only where input 0 may.
    output_is_input: ClassVar[bool]
    #: Whether its module keeps running statistics: frozen, it stays in eval mode so they hold.
    running_statistics: ClassVar[bool]
    #: The symbol a diagram draws the op as, in a circle ("+" for add); None draws a labelled box.
    drawing_symbol: ClassVar[str | None]
    #: A mark before the op's name in its diagram box: an arrow for resampling (up or down),
    #: a fork for taking a part of the channels; None for none.
    drawing_mark: ClassVar[str | None]
    #: Whether `to_torch_in_place` builds a module or call that overwrites input 0, saving one
    #: tensor when no other layer and no backward reads that input.
    runs_in_place: ClassVar[bool]
    #: The layouts of input its rules are written for (channels first for a conv, features last
    #: for a linear layer); the analysis refuses others with an error naming both.
    takes_layout: ClassVar[LayoutRule]

    @abstractmethod
    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        """Shapes are per sample, without the batch dimension: (F,), (C, L), (C, H, W) or
        (C, T, H, W)."""

    @abstractmethod
    def param_count(self, inputs: Sequence[Shape]) -> int:
        """Learnable parameters (weights and biases, not buffers)."""

    @abstractmethod
    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        """Multiply-accumulates with a weight, per sample (those of conv and matmul)."""

    @abstractmethod
    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        """Floating-point operations per sample at inference."""

    @abstractmethod
    def window(self, inputs: Sequence[Shape]) -> Steps:
        """The receptive-field step: a Window, POINTWISE or GLOBAL, or a tuple of one per input.

        It is exact where the op's reads are affine in the output position, and otherwise a
        bound: the declared region contains every position the unit reads.
        """

    def layout_problem(self, shape: Shape) -> str | None:
        """Why the op cannot take an input of `shape` (laid out), or None: what `takes_layout`
        says, unless a field widens it (a linear layer told to mix positions)."""
        return self.takes_layout.problem(self.op, shape)

    def output_layout(self, inputs: Sequence[Shape], output: Shape) -> Layout:
        """The layout of the output: input 0's where the rank is kept, as every op keeping its
        axes in place does; ops that move, merge or drop axes say how."""
        layout = layout_of(inputs[0]) if inputs else default_layout(len(output))
        return layout if len(layout) == len(output) else default_layout(len(output))

    def buffer_elements(self, inputs: Sequence[Shape]) -> int:
        """Elements of the tensors its module keeps that are not parameters, beyond running
        statistics (which `running_statistics` accounts for): Swin's index of relative
        positions. Most modules keep none."""
        return 0

    def working_elements(self, inputs: Sequence[Shape], output: Shape) -> int:
        """Elements per sample the op holds while it runs beyond its output: attention's score
        maps (heads x L x L). Most ops compute each output element from their inputs directly."""
        return 0

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        """Legal but suspicious uses worth a user's attention."""
        return []

    def mismatch_advice(self, layer: str, reader: str) -> str | None:
        """What `layer`, made by this op, could change when its output does not fit beside the
        other inputs of `reader` (a concat, an add); None when there is nothing specific."""
        return None

    @abstractmethod
    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module | TorchCall | TorchTensor:
        """The torch module computing the op, the call of a parameter-free function, or a
        learned tensor of the layer's own."""

    def to_torch_in_place(self, inputs: Sequence[Shape]) -> torch.nn.Module | TorchCall:
        """The module or call that overwrites input 0; only ops with `runs_in_place` have one."""
        raise NotImplementedError(f"{self.op} does not run in place")


class ParameterFree:
    """Mixin an op chooses when it has no weights: no parameters and no multiply-accumulates."""

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # no weight or bias tensors
        return 0

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a MAC multiplies by a weight (as torch's FlopCounterMode counts them), and there are none
        return 0


def expect_rank(op: Op, shape: Shape, rank: int, layout: str) -> None:
    if len(shape) != rank:
        raise ShapeError(f"{op.op} expects an input of shape {layout}, got {format_shape(shape)}")


def format_shape(shape: Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def numel(shape: Shape) -> int:
    return math.prod(shape)


def sliding_output_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool = False
) -> int:
    """torch's rule for convolution and pooling: floor((H + 2p - d(k-1) - 1) / s) + 1.

    ceil_mode rounds up instead; 0 or less means no window fits.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    # torch drops the last window when it would start inside the right padding only
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def sliding_output(
    op: Op,
    spatial: Axes,
    kernel: Axes,
    stride: Axes,
    padding: Axes,
    dilation: Axes,
    ceil_mode: bool = False,
) -> Axes:
    """Output (L',), (H', W') or (T', H', W') of a sliding window, with errors that name the
    axis and the values."""
    sizes = []
    for axis, size, k, s, p, d in zip(
        AXIS_LETTERS[len(spatial)], spatial, kernel, stride, padding, dilation, strict=True
    ):
        out = sliding_output_size(size, k, s, p, d, ceil_mode)
        if out <= 0:
            effective = d * (k - 1) + 1
            dilated = f" (dilated to {effective})" if d > 1 else ""
            raise ShapeError(
                f"{op.op} kernel {k}{dilated} is larger than the padded input along {axis} "
                f"({size} + 2*{p} = {size + 2 * p}): the output would be empty"
            )
        sizes.append(out)
    return tuple(sizes)


#: Per spatial rank, what the positions along each axis are called, in the plural.
EDGE_WORDS = {1: ("positions",), 2: ("rows", "columns"), 3: ("frames", "rows", "columns")}


def dropped_edges(
    spatial: Axes, kernel: Axes, stride: Axes, padding: Axes, dilation: Axes
) -> str | None:
    """Say which positions (rows, columns, frames) a floor-mode sliding window never reads."""
    parts = []
    for axis, size, k, s, p, d in zip(
        EDGE_WORDS[len(spatial)], spatial, kernel, stride, padding, dilation, strict=True
    ):
        # the windows cover (out - 1) * s + d(k-1) + 1 of the padded size; the rest is never read
        unread = (size + 2 * p - d * (k - 1) - 1) % s - p
        # a window narrower than its stride subsamples on purpose (ResNet's 1x1/2 shortcut)
        if unread > 0 and d * (k - 1) + 1 >= s:
            parts.append(f"the last {axis[:-1]}" if unread == 1 else f"the last {unread} {axis}")
    if not parts:
        return None
    strides = "x".join(str(s) for s in stride)
    return f"stride {strides} never reads {' and '.join(parts)} of its input"
