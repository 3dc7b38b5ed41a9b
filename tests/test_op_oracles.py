"""Every registered op against torch, value by value and window by window (tinygrad's
helper_test_op): the lowered module or call must compute what an independent reference computes
from the op's own fields, and one output unit must read exactly the input region its declared
Window, POINTWISE or GLOBAL says.

A lowering that passes a wrong argument (stride for padding, a dropped ceil_mode or
count_include_pad, eps for momentum) keeps shapes and parameter counts (tests/test_ops.py) but
changes values or windows, which is what these tests see.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracle import position_axes, position_sizes
from strategies import OP_STRATEGIES, OpCase, family_references
from torch import nn

from archspec.ops import GLOBAL, OPS, POINTWISE, Op, Shape, TorchCall, Window
from archspec.ops.base import SHAPE_ONLY, Rational, Step, TorchTensor
from archspec.ops.layouts import FEATURES, POSITIONS, LaidOut, Layout, layout_of

BATCH = 2
DTYPE = torch.float64  # exact enough that every comparison below is at float64's tolerance

# torch warns, once per process, that 'same' padding with an even kernel copies the input: a
# performance notice about a legal convolution, nothing to do with what is checked here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)

Tensors = list[torch.Tensor]
Lowered = nn.Module | TorchCall


class LearnedTensor(nn.Module):
    """A learned tensor as the torch backend installs it: a parameter filled by its init, and
    its call on (the parameter, *the layer's inputs)."""

    def __init__(self, lowered: TorchTensor) -> None:
        super().__init__()
        self.tensor = nn.Parameter(torch.empty(lowered.shape))
        with torch.no_grad():
            getattr(nn.init, lowered.init)(self.tensor, **lowered.init_kwargs)
        self.call = lowered.call

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return run(self.call, [self.tensor, *inputs])


def build(name: str, case: OpCase) -> tuple[Op, Lowered]:
    """The op from the case's fields and its lowering, in float64 with random weights."""
    op = OPS[name].model_validate(case.fields)
    built = op.to_torch(case.inputs)
    lowered = LearnedTensor(built) if isinstance(built, TorchTensor) else built
    if isinstance(lowered, nn.Module):
        lowered.to(DTYPE)
        with torch.no_grad():
            for parameter in lowered.parameters():
                parameter.uniform_(-1, 1)
    return op, lowered


def run(lowered: Lowered, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(lowered, TorchCall):
        return lowered.apply(tensors, lambda function, args, kwargs: function(*args, **kwargs))
    return lowered(*tensors)


def random_inputs(shapes: Sequence[Shape], low: float = -2, high: float = 2) -> Tensors:
    return [torch.empty(BATCH, *shape, dtype=DTYPE).uniform_(low, high) for shape in shapes]


# -- independent references ---------------------------------------------------------------------
# Each computes the op from its fields (never from the lowered module's attributes) and from the
# module's weights and buffers, which are the only things the op leaves to torch.


def _taps(out: int, kernel: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """(out, kernel) input positions read by each output position: o*s - p + i*d."""
    origins = torch.arange(out)[:, None] * stride - padding
    return origins + torch.arange(kernel)[None, :] * dilation


def _windows(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, fill: float) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H', W', KH, KW): the taps' values, `fill` outside the input."""
    height, width = x.shape[-2:]
    top, left = max(0, -int(rows.min())), max(0, -int(cols.min()))
    bottom = max(0, int(rows.max()) - height + 1)
    right = max(0, int(cols.max()) - width + 1)
    padded = F.pad(x, (left, right, top, bottom), value=fill)
    return padded[:, :, (rows + top)[:, None, :, None], (cols + left)[None, :, None, :]]


def _window_taps(op: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of a sliding pool, from its fields and its static output shape."""
    out = op.output_shape([tuple(x.shape[1:])])
    stride = op.stride or op.kernel  # torch's default stride is the kernel
    dilation = getattr(op, "dilation", (1, 1))
    axes = [
        _taps(out[axis + 1], op.kernel[axis], stride[axis], op.padding[axis], dilation[axis])
        for axis in (0, 1)
    ]
    return axes[0], axes[1]


def conv2d_reference(op: Any, module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if op.padding == "same":
        # torch puts the odd pixel of an even total at the bottom and right
        totals = [d * (k - 1) for k, d in zip(op.kernel, op.dilation, strict=True)]
        pads = (
            totals[1] // 2,
            totals[1] - totals[1] // 2,
            totals[0] // 2,
            totals[0] - totals[0] // 2,
        )
        x, padding = F.pad(x, pads), (0, 0)
    else:
        padding = (0, 0) if op.padding == "valid" else op.padding
    assert module.weight.shape == (op.out_channels, x.shape[1] // op.groups, *op.kernel)
    assert (module.bias is not None) == op.bias
    return F.conv2d(x, module.weight, module.bias, op.stride, padding, op.dilation, op.groups)


def linear_reference(op: Any, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    assert (module.bias is not None) == op.bias
    y = x @ module.weight.T
    return y + module.bias if module.bias is not None else y


def max_pool2d_reference(op: Any, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    rows, cols = _window_taps(op, x)
    return _windows(x, rows, cols, -math.inf).amax(dim=(-2, -1))


def avg_pool2d_reference(op: Any, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Sum over the taps inside the input, divided by the taps inside the padded input
    (count_include_pad) or inside the input; a ceil_mode window's overhang past the padding
    counts in neither."""
    rows, cols = _window_taps(op, x)
    total = _windows(x, rows, cols, 0.0).sum(dim=(-2, -1))
    counts = []
    for taps, size, pad in zip((rows, cols), x.shape[-2:], op.padding, strict=True):
        low, high = (-pad, size + pad) if op.count_include_pad else (0, size)
        counts.append(((taps >= low) & (taps < high)).sum(1).to(DTYPE))
    return total / (counts[0][:, None] * counts[1][None, :])


def adaptive_avg_pool2d_reference(op: Any, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Window i along an axis of size H spans [floor(i H / o), ceil((i + 1) H / o))."""
    (height, width), (out_h, out_w) = x.shape[-2:], op.output_size
    y = x.new_empty(*x.shape[:2], out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * height // out_h, -(-(i + 1) * height // out_h))
            cols = slice(j * width // out_w, -(-(j + 1) * width // out_w))
            y[:, :, i, j] = x[:, :, rows, cols].mean(dim=(-2, -1))
    return y


def _channels(tensor: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over (N, C, H, W)."""
    return tensor[None, :, None, None]


def batchnorm2d_reference(op: Any, module: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """In eval mode: running statistics when tracked, else the batch's (biased variance)."""
    assert module.eps == op.eps
    if op.track_running_stats:
        mean, var = _channels(module.running_mean), _channels(module.running_var)
    else:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + op.eps)
    if op.affine:
        y = y * _channels(module.weight) + _channels(module.bias)
    return y


def local_response_norm_reference(op: Any, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """b_c = a_c / (k + alpha/n sum of a^2 over channels c - n/2 .. c + (n-1)/2)^beta."""
    squares = F.pad(x**2, (0, 0, 0, 0, op.size // 2, (op.size - 1) // 2))
    sums = torch.stack([squares[:, c : c + op.size].sum(1) for c in range(x.shape[1])], dim=1)
    return x / (op.k + op.alpha / op.size * sums) ** op.beta


def _pointwise(function: Callable[[Any, torch.Tensor], torch.Tensor]) -> Callable[..., Any]:
    return lambda op, lowered, x: function(op, x)


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu(op: Any, x: torch.Tensor) -> torch.Tensor:
    if op.approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _softmax(op: Any, x: torch.Tensor) -> torch.Tensor:
    exp = torch.exp(x - x.amax(dim=op.dim, keepdim=True))
    return exp / exp.sum(dim=op.dim, keepdim=True)


def _flatten(op: Any, x: torch.Tensor) -> torch.Tensor:
    last = x.dim() - 1 if op.end_dim == -1 else op.end_dim
    return x.reshape(*x.shape[: op.start_dim], -1, *x.shape[last + 1 :])


def _dropout(op: Any, lowered: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Identity in eval; in train every element is dropped or scaled by 1 / (1 - p)."""
    lowered.train()
    kept = lowered(x)
    ratio = kept[kept != 0] / x[kept != 0]
    torch.testing.assert_close(ratio, torch.full_like(ratio, 1 / (1 - op.p)))
    lowered.eval()
    return x


def _add(op: Any, lowered: Lowered, *xs: torch.Tensor) -> torch.Tensor:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _concat(op: Any, lowered: Lowered, *xs: torch.Tensor) -> torch.Tensor:
    """Built by writing each input into its slice, not with torch.cat."""
    sizes = [x.shape[op.dim] for x in xs]
    shape = list(xs[0].shape)
    shape[op.dim] = sum(sizes)
    y = xs[0].new_empty(shape)
    offset = 0
    for x, size in zip(xs, sizes, strict=True):
        y.narrow(op.dim, offset, size).copy_(x)
        offset += size
    return y


#: op name -> reference(op, lowered, *inputs); test_every_op_has_oracles fails on a missing one.
VALUE_ORACLES: dict[str, Callable[..., torch.Tensor]] = {
    "conv2d": conv2d_reference,
    "linear": linear_reference,
    "max_pool2d": max_pool2d_reference,
    "avg_pool2d": avg_pool2d_reference,
    "adaptive_avg_pool2d": adaptive_avg_pool2d_reference,
    "batchnorm2d": batchnorm2d_reference,
    "local_response_norm": local_response_norm_reference,
    "relu": _pointwise(lambda op, x: torch.where(x > 0, x, 0.0)),
    "relu6": _pointwise(lambda op, x: x.clamp(0, 6)),
    "leaky_relu": _pointwise(lambda op, x: torch.where(x > 0, x, op.negative_slope * x)),
    "gelu": _pointwise(_gelu),
    "silu": _pointwise(lambda op, x: x / (1 + torch.exp(-x))),
    "sigmoid": _pointwise(lambda op, x: 1 / (1 + torch.exp(-x))),
    "tanh": _pointwise(lambda op, x: (torch.exp(2 * x) - 1) / (torch.exp(2 * x) + 1)),
    "hardswish": _pointwise(lambda op, x: x * (x + 3).clamp(0, 6) / 6),
    "softmax": _pointwise(_softmax),
    "flatten": _pointwise(_flatten),
    "dropout": _dropout,
    "identity": _pointwise(lambda op, x: x),
    "add": _add,
    "concat": _concat,
    **family_references(),
}


def _randomise_buffers(module: nn.Module) -> None:
    """Running statistics away from their defaults (mean 0, variance 1), which hide mistakes."""
    norms = nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d
    if isinstance(module, norms) and module.running_mean is not None:
        module.running_mean.uniform_(-1, 1)
        module.running_var.uniform_(0.5, 2)


def test_every_op_has_oracles():
    missing = sorted(set(OPS) - set(VALUE_ORACLES))
    assert not missing, f"ops without a value oracle in tests/test_op_oracles.py: {missing}"
    # the window oracle runs on every op with (C, L), (C, H, W) or (C, T, H, W) inputs: it reads
    # op.window() itself
    for named in (NOT_SPATIAL, MAX_POOLS, ADAPTIVE_POOLS):
        assert set(named) <= set(OPS), f"{sorted(set(named) - set(OPS))} are not registered"


@pytest.mark.parametrize("name", sorted(OPS))
@settings(deadline=None)
@given(data=st.data())
def test_values_match_reference(name, data):
    case = data.draw(OP_STRATEGIES[name], label="case")
    op, lowered = build(name, case)
    if isinstance(lowered, nn.Module):
        lowered.eval()  # inference: running statistics, no dropout
        with torch.no_grad():
            _randomise_buffers(lowered)
    tensors = random_inputs(case.inputs)
    reference = VALUE_ORACLES[name]
    # tensors do not carry a layout: a reference that needs one (where are the features?) asks
    wanted = "layouts" in inspect.signature(reference).parameters
    layouts = {"layouts": [layout_of(shape) for shape in case.inputs]} if wanted else {}
    with torch.no_grad():
        expected = reference(op, lowered, *tensors, **layouts)
        actual = run(lowered, tensors)
    assert tuple(actual.shape) == (BATCH, *op.output_shape(case.inputs))
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("init", ["zeros", "ones", "constant", "normal", "trunc_normal"])
def test_learned_tensor_is_filled_as_its_fields_say(init):
    """zeros, ones and constant exactly; normal and trunc_normal at mean 0 with the std asked."""
    std, value = 0.05, 0.7
    fields: dict[str, Any] = {"shape": [64, 64], "init": init}
    if init == "constant":
        fields["value"] = value
    elif init in ("normal", "trunc_normal"):
        fields["std"] = std
    lowered = OPS["parameter"].model_validate(fields).to_torch([(3, 5)])
    assert isinstance(lowered, TorchTensor)
    torch.manual_seed(0)
    tensor = LearnedTensor(lowered).tensor.detach()
    exact = {"zeros": 0.0, "ones": 1.0, "constant": value}
    if init in exact:
        assert torch.equal(tensor, torch.full_like(tensor, exact[init]))
    else:
        # 4096 draws: the mean is within 4 standard errors of 0, the deviation within 5% of std
        assert abs(tensor.mean().item()) < 4 * std / math.sqrt(tensor.numel())
        assert abs(tensor.std().item() / std - 1) < 0.05


@settings(deadline=None)
@given(case=OP_STRATEGIES["batchnorm2d"])
def test_batchnorm_training_step_matches_reference(case):
    """In train mode: batch statistics, and running ones moved by `momentum` (unbiased variance)."""
    op, module = build("batchnorm2d", case)
    assert isinstance(module, nn.BatchNorm2d)
    (x,) = random_inputs(case.inputs)
    assume(x[:, 0].numel() > 1)  # torch refuses batch statistics of one value per channel
    with torch.no_grad():
        _randomise_buffers(module)
        before = (
            (module.running_mean.clone(), module.running_var.clone())
            if op.track_running_stats
            else None
        )
        module.train()
        y = module(x)
    mean = x.mean(dim=(0, 2, 3))
    expected = (x - _channels(mean)) / torch.sqrt(
        _channels(x.var(dim=(0, 2, 3), unbiased=False)) + op.eps
    )
    if op.affine:
        expected = expected * _channels(module.weight) + _channels(module.bias)
    torch.testing.assert_close(y, expected)
    if before is not None:
        old_mean, old_var = before
        unbiased = x.var(dim=(0, 2, 3), unbiased=True)
        torch.testing.assert_close(
            module.running_mean, (1 - op.momentum) * old_mean + op.momentum * mean
        )
        torch.testing.assert_close(
            module.running_var, (1 - op.momentum) * old_var + op.momentum * unbiased
        )


# -- receptive-field step -----------------------------------------------------------------------
# One output unit (every feature at one position, weighted by random positive numbers, so no
# softmax sum stays constant) is backpropagated to the inputs; the input positions with a
# non-zero gradient must be the ones its declared step reads. Inputs and weights are positive,
# so no gradient cancels to zero by accident. Positions are the axes a layout names L, T, H or W,
# wherever they are: (C, H, W) and (H, W, C) both have (H, W). An output keeping the input's
# position axes has a unit per position; one whose positions are regrouped (a map flattened into
# tokens) has a unit per position too, at the same place in row-major order; any other output
# is one unit.


@dataclass(frozen=True)
class Unit:
    """One output unit: its index into sample 0's output, and the input position its step is
    taken from, along the input's position axes; both None for the whole output."""

    index: tuple[int | slice, ...] | None
    position: tuple[int, ...] | None


WHOLE_OUTPUT = Unit(None, None)


def _positive(lowered: Lowered) -> None:
    """Every weight positive, and each weight matrix divided by its fan-in: attention's scores
    stay about 1, so that no softmax weight underflows to an exact 0 (the unit would seem not to
    read a token it does read) and no masked one outweighs torchvision's -100."""
    if isinstance(lowered, nn.Module):
        with torch.no_grad():
            for parameter in lowered.parameters():
                parameter.abs_().add_(0.1)
                if parameter.dim() >= 2:
                    parameter.div_(parameter[0].numel())
        lowered.eval()
        lowered.requires_grad_(False)


def _unit(output: torch.Tensor, unit: Unit) -> torch.Tensor:
    """Sample 0's features at the unit (or its whole output), weighted by positive numbers."""
    values = output[0] if unit.index is None else output[0][unit.index]
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(values.shape, generator=generator, dtype=DTYPE) + 0.5
    return (values * weights).sum()


def _feature_axes(shape: Shape) -> tuple[int, ...]:
    """The axes of one sample that are not positions: channels, features, unknown."""
    return tuple(axis for axis, letter in enumerate(layout_of(shape)) if letter not in POSITIONS)


#: torchvision masks a shifted window's scores by adding -100, which float64 still sees:
#: e^-100 ~ 4e-44 of a weight. Gradients this small beside the largest are a masked read.
MASKED = 1e-30


def gradient_region(
    lowered: Lowered, shapes: Sequence[Shape], unit: Unit, negligible: float = 0.0
) -> list[torch.Tensor | None]:
    """Per input, the positions of sample 0 whose gradient is non-zero (above `negligible` of the
    largest); None for an input whose values the op never reads (one that gives only its shape,
    as a target size, or the batch size of a learned tensor)."""
    tensors = [t.requires_grad_(True) for t in random_inputs(shapes, 0.5, 1.5)]
    probe = _unit(run(lowered, tensors), unit)
    if not probe.requires_grad:  # no input reaches the output at all
        return [None] * len(tensors)
    grads = torch.autograd.grad(probe, tensors, allow_unused=True)
    regions: list[torch.Tensor | None] = []
    for shape, grad in zip(shapes, grads, strict=True):
        if grad is None:
            regions.append(None)
            continue
        features = _feature_axes(shape)
        magnitude = grad[0].abs().sum(features) if features else grad[0].abs()
        regions.append(magnitude > negligible * magnitude.max())
    return regions


def spike_region(lowered: Lowered, shapes: Sequence[Shape], unit: Unit) -> list[torch.Tensor]:
    """For max pooling, whose gradient reaches one element per window: the positions where a
    value above all others (2 in [0, 1)) changes the unit, all spatial spikes in one batch.
    Max pools take channels first, (C, *positions)."""
    ((channels, *spatial),) = shapes
    count = math.prod(spatial)
    base = torch.rand(1, channels, *spatial, dtype=DTYPE)
    spiked = base.repeat(count, 1, *(1,) * len(spatial))
    spiked.view(count, channels, count)[torch.arange(count), :, torch.arange(count)] = 2.0
    with torch.no_grad():
        outputs = run(lowered, [torch.cat([base, spiked])])
    units = outputs if unit.index is None else outputs[(slice(None), *unit.index)]
    changed = (units[1:] != units[:1]).flatten(1).any(1)
    return [changed.view(*spatial)]


def declared_region(window: Step, shape: Shape, position: tuple[int, ...] | None) -> torch.Tensor:
    """The positions the unit at input `position` reads by the declared step, clipped to the
    input; for the whole output (`position` None), every position: a window then says nothing
    about which, so only a known bound may declare one there."""
    spatial = position_sizes(shape)
    if window == SHAPE_ONLY:
        return torch.zeros(spatial, dtype=torch.bool)
    if window == GLOBAL or position is None:
        return torch.ones(spatial, dtype=torch.bool)
    assert isinstance(window, Window)
    if window == POINTWISE:  # every op may return it, whatever the input's rank
        window = Window((1,) * len(spatial))
    assert len(window.kernel) == len(spatial), f"{window} on an input of shape {shape}"
    reads = []
    for axis, size in enumerate(spatial):
        along = _declared_reads(
            position[axis],
            window.kernel[axis],
            window.stride[axis],
            window.padding[axis],
            window.dilation[axis],
        )
        # shaped to broadcast along its own axis only, so the reads index a box
        shape_along = [1] * len(spatial)
        shape_along[axis] = -1
        reads.append(along[(along >= 0) & (along < size)].view(shape_along))
    mask = torch.zeros(spatial, dtype=torch.bool)
    mask[tuple(reads)] = True
    return mask


def _declared_reads(
    unit: int, kernel: int, stride: Rational, padding: Rational, dilation: int
) -> torch.Tensor:
    """Input positions unit `unit` reads along one axis: its taps u*s - p + i*d when whole;
    with a fractional stride or padding, the pixels whose centres lie strictly within the
    window's span, as receptive_field.Axis counts them."""
    if isinstance(stride, int) and isinstance(padding, int):
        return _taps(unit + 1, kernel, stride, padding, dilation)[-1]
    assert dilation == 1, "fractional windows are contiguous"
    centre = unit * Fraction(stride) - Fraction(padding) + Fraction(kernel - 1, 2)
    first = math.floor(centre - Fraction(kernel, 2)) + 1
    last = math.ceil(centre + Fraction(kernel, 2)) - 1
    return torch.arange(first, last + 1)


def _index(layout: Layout, coordinates: dict[str, int]) -> tuple[int | slice, ...]:
    """An index into one sample laid out as `layout`: the coordinate along each position axis,
    every feature."""
    return tuple(coordinates.get(letter, slice(None)) for letter in layout)


def unit_at(
    steps: Sequence[Step], shape: Shape, output: Shape, output_layout: Layout, place: int
) -> Unit:
    """The output unit numbered `place` in row-major order over the output's positions (taken
    modulo their count), and the input position its step starts from: the same letters' same
    coordinates where the output keeps the input's position axes; the same place in row-major
    order where a pointwise op regroups them; the whole output otherwise."""
    laid_out = LaidOut(output, output_layout)
    letters, sizes = position_axes(shape), position_sizes(shape)
    out_letters, out_sizes = position_axes(laid_out), position_sizes(laid_out)
    kept = bool(out_letters) and sorted(out_letters) == sorted(letters)
    # one position in, none out (a (C, 1) reshaped to (C,)) is regrouped too: one unit, one read
    regrouped = all(step == POINTWISE for step in steps) and math.prod(out_sizes) == math.prod(
        sizes
    )
    if not (kept or regrouped):
        return WHOLE_OUTPUT
    place %= math.prod(out_sizes)
    out_coordinates = dict(zip(out_letters, _unravel(place, out_sizes), strict=True))
    if kept:
        position = tuple(out_coordinates[letter] for letter in letters)
    else:
        position = _unravel(place, sizes)
    return Unit(_index(output_layout, out_coordinates), position)


def _unravel(place: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """Row-major coordinates of `place` in a grid of `sizes`."""
    coordinates = []
    for size in reversed(sizes):
        place, coordinate = divmod(place, size)
        coordinates.append(coordinate)
    return tuple(reversed(coordinates))


#: Per spatial rank, the words _describe names the axes by.
AXIS_NAMES = {1: ("positions",), 2: ("rows", "cols"), 3: ("frames", "rows", "cols")}


def _describe(mask: torch.Tensor) -> str:
    reached = torch.nonzero(mask)
    if len(reached) == 0:
        return "nothing"
    return ", ".join(
        f"{name} {sorted(set(reached[:, axis].tolist()))}"
        for axis, name in enumerate(AXIS_NAMES[mask.dim()])
    )


#: Ops that never take an input with positions, so their units have no receptive field.
NOT_SPATIAL: dict[str, str] = {}
#: Ops whose gradient reaches one element per window: their region is measured by spikes.
MAX_POOLS = {"max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool2d"}
ADAPTIVE_POOLS = {
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool2d",
}

#: Where an op's declared step is a bound rather than exact: the declared region contains the
#: measured one, because the op's reads are not affine in the output position. Each is shown to be
#: strictly larger by an example in test_bounds_are_strict.


def known_bound(name: str, op: Any, inputs: Sequence[Shape]) -> str | None:
    """Why the op's declared step is only a bound for these inputs, or None when it is exact."""
    shape = inputs[0]
    layout = layout_of(shape)
    if name == "softmax" and shape[op.dim - 1] == 1:
        return "softmax over one element is constantly 1: its unit reads nothing"
    if name == "softmax" and op.dim >= 2:
        return "softmax over one spatial axis reads a line, not the whole input"
    if name in ADAPTIVE_POOLS and op.warnings(inputs):
        return "windows of sizes that do not divide drift around an affine centre"
    if name == "pad" and op.mode in ("reflect", "replicate"):
        return "reflect and replicate padding read mirrored or edge pixels: no affine window"
    if name in ("upsample", "conv_transpose2d") and not op.window_is_exact(inputs):
        return "reads not affine in the output position, or moved by float rounding"
    if name == "select" and layout[op.dim - 1] not in FEATURES:
        return "one position of the axis it drops, which no step over the others names"
    if name in ("reshape", "view") and op.window(inputs) == GLOBAL:
        return "positions regrouped: each unit reads the one at its place in row-major order"
    if name == "layer_norm" and layout[-1] in FEATURES:
        normalised = [letter in layout[-op.axes :] for letter in position_axes(shape)]
        if any(normalised) and not all(normalised):
            return "statistics over some position axes: a unit reads a line or plane of them"
    if name == "shifted_window_attention" and op.window(inputs) != GLOBAL:
        return "a token reads its own window, which the 2w - 1 centred on it contains"
    return None


def measured_and_declared(
    name: str, op: Op, lowered: Lowered, inputs: Sequence[Shape], unit: Unit
) -> list[tuple[torch.Tensor | None, torch.Tensor]]:
    """Per input, the positions torch reads for the unit (None: no value read) and the ones the
    op declares."""
    _positive(lowered)
    steps = op.window(inputs)
    per_input = steps if isinstance(steps, tuple) else (steps,) * len(inputs)
    if name in MAX_POOLS:
        seen: Sequence[torch.Tensor | None] = spike_region(lowered, inputs, unit)
    else:
        negligible = MASKED if name == "shifted_window_attention" else 0.0
        seen = gradient_region(lowered, inputs, unit, negligible)
    return [
        (region, declared_region(step, shape, unit.position))
        for shape, step, region in zip(inputs, per_input, seen, strict=True)
    ]


@pytest.mark.parametrize("name", sorted(set(OPS) - set(NOT_SPATIAL)))
# inputs without positions, such as (features,), are filtered out
@settings(deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_window_matches_gradient(name, data):
    """A random output unit reads exactly (or, for a known bound, at most) its declared region."""
    case = data.draw(OP_STRATEGIES[name], label="case")
    layouts = {layout_of(shape) for shape in case.inputs}
    # fields are over positions: every input of one layout, with a position axis
    assume(len(layouts) == 1 and position_axes(case.inputs[0]))
    op, lowered = build(name, case)
    bound = known_bound(name, op, case.inputs)
    output = op.output_shape(case.inputs)
    steps = op.window(case.inputs)
    per_input = steps if isinstance(steps, tuple) else (steps,) * len(case.inputs)
    place = data.draw(st.integers(0, math.prod(output) - 1), label="unit")
    unit = unit_at(per_input, case.inputs[0], output, op.output_layout(case.inputs, output), place)
    if unit == WHOLE_OUTPUT and bound is None:
        assert not any(isinstance(step, Window) for step in per_input), (
            f"a window keeps the positions, yet the output {output} does not: "
            f"{op.output_layout(case.inputs, output)}"
        )
    regions = measured_and_declared(name, op, lowered, case.inputs, unit)
    for index, (seen, declared) in enumerate(regions):
        if seen is None:  # an input read for its shape only: no unit reads any of its positions
            assert not declared.any(), f"input {index} is never read, yet declared {declared}"
            continue
        message = (
            f"input {index}, unit {unit}: declared {_describe(declared)}, torch {_describe(seen)}"
        )
        if bound is None:
            assert torch.equal(seen, declared), message
        else:
            assert not (seen & ~declared).any(), message


@pytest.mark.parametrize(
    ("name", "fields", "inputs", "position"),
    [
        # 2 -> 7: window 2 is row 0; the longest (2 rows) centred at 2.5 * 2/7 - 1/2 reads 0, 1
        ("adaptive_avg_pool2d", {"output_size": [7, 1]}, [(1, 2, 1)], (2, 0)),
        ("pad", {"padding": 1, "mode": "reflect"}, [(1, 3, 3)], (2, 2)),
        ("pad", {"padding": 1, "mode": "replicate"}, [(1, 3, 3)], (2, 2)),
        # torch reads row 6 where the exact answer is 7
        ("upsample", {"size": [46, 1]}, [(1, 14, 1)], (23, 0)),
        ("upsample", {"mode": "bilinear", "scale_factor": [3, 1]}, [(1, 2, 1)], (1, 0)),
        (
            "upsample",
            {"mode": "bilinear", "align_corners": True, "size": [4, 1]},
            [(1, 3, 1)],
            (1, 0),
        ),
        ("conv_transpose2d", {"out_channels": 1, "kernel": 1, "stride": 3}, [(1, 3, 3)], (1, 1)),
        ("adaptive_max_pool2d", {"output_size": [7, 1]}, [(1, 2, 1)], (2, 0)),
        ("adaptive_avg_pool1d", {"output_size": 7}, [(1, 2)], (2,)),
        ("adaptive_avg_pool3d", {"output_size": [1, 7, 1]}, [(1, 1, 2, 1)], (0, 2, 0)),
        # exact, not a bound: a column of 3, not the whole 3 x 3 input
        ("softmax", {"dim": 2}, [(1, 3, 3)], (1, 1)),
        # the class token: one of 3 tokens
        ("select", {"dim": 1, "index": 0}, [LaidOut((3, 2), "LC")], None),
        # row 1 of a map, declared global
        ("select", {"dim": 2, "index": 1}, [(1, 3, 3)], None),
        # output row 1 is input row 2: declared global
        ("reshape", {"shape": [1, 2, 8]}, [(1, 4, 4)], (1, 0)),
        # statistics over the row's columns: row 0 of 2
        ("layer_norm", {"axes": 2}, [LaidOut((2, 3, 2), "HWC")], (0, 0)),
        # token (1, 1) reads the window of rows and columns 0 and 1, declared 0 to 2
        (
            "shifted_window_attention",
            {"num_heads": 1, "window_size": 2},
            [LaidOut((4, 4, 2), "HWC")],
            (1, 1),
        ),
    ],
)
def test_bounds_are_strict(name, fields, inputs, position):
    """Fails once an op's step becomes exact: then drop its case from known_bound. `position`
    is along the output's position axes, which are the input's here; None: the whole output."""
    op, lowered = build(name, OpCase(fields, tuple(inputs)))
    assert known_bound(name, op, inputs) is not None
    unit = WHOLE_OUTPUT
    if position is not None:
        output_layout = op.output_layout(inputs, op.output_shape(inputs))
        coordinates = dict(zip(position_axes(inputs[0]), position, strict=True))
        unit = Unit(_index(output_layout, coordinates), position)
    regions = measured_and_declared(name, op, lowered, inputs, unit)
    assert not all(seen is not None and torch.equal(seen, declared) for seen, declared in regions)


# -- layouts ------------------------------------------------------------------------------------
# The window oracle finds the positions by the output's layout; an op that names an axis wrongly
# would send a later op's rules (and this oracle) to the wrong axis.


def _axes_held(name: str, op: Any, rank: int) -> list[list[int]]:
    """Per output axis of an op that moves, drops or merges axes, the input axes it holds."""
    axes = [[axis] for axis in range(rank)]
    if name == "permute":
        return [[dim - 1] for dim in op.dims[1:]]
    if name == "transpose":
        axes[op.dim0 - 1], axes[op.dim1 - 1] = axes[op.dim1 - 1], axes[op.dim0 - 1]
    elif name == "select":
        del axes[op.dim - 1]
    elif name == "flatten":
        last = rank if op.end_dim == -1 else op.end_dim
        axes[op.start_dim - 1 : last] = [list(range(op.start_dim - 1, last))]
    return axes


def _merged_name(layout: Layout, held: list[int]) -> str:
    """The letter of one input axis kept; for several merged, L when all are positions, else F."""
    if len(held) == 1:
        return layout[held[0]]
    return "L" if all(layout[axis] in POSITIONS for axis in held) else "F"


@pytest.mark.parametrize("name", ["permute", "transpose", "select", "slice", "flatten"])
@given(data=st.data())
def test_axes_keep_their_letters(name, data):
    """An axis moved or kept is named as before; merged axes are a sequence (L) when all are
    positions, else features (F)."""
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = OPS[name].model_validate(case.fields)
    (shape,) = case.inputs
    layout = layout_of(shape)
    expected = "".join(_merged_name(layout, held) for held in _axes_held(name, op, len(shape)))
    assume(len(set(expected)) == len(expected))  # else no layout names it: a default's case
    assert op.output_layout(case.inputs, op.output_shape(case.inputs)) == expected
