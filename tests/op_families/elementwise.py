"""Strategies and references of the elementwise family:
mul, broadcasting add, hardsigmoid, mish, elu, prelu, softplus, mean, dropout2d, stochastic_depth.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

import archspec.ops.elementwise  # noqa: F401  (registers mean, dropout2d, stochastic_depth)

if TYPE_CHECKING:
    from strategies import OpCase


def _helpers() -> Any:
    """tests/strategies.py, imported when a case is first drawn: it imports this package as it
    finishes loading, so importing it here first (as test_op_oracles does) would be circular."""
    import strategies

    return strategies


def shapes(rank: int | None = None) -> st.SearchStrategy[tuple[int, ...]]:
    return st.deferred(lambda: _helpers().shapes(rank))


def layouts() -> st.SearchStrategy[tuple[int, ...]]:
    """(F,), (C, L), (C, H, W) or (C, T, H, W): every layout these ops take, small."""
    sequences = st.tuples(st.integers(1, 8), st.integers(1, 24))
    videos = st.tuples(*(st.integers(1, size) for size in (4, 5, 6, 6)))
    return shapes() | sequences | videos


def case(fields: dict[str, Any], inputs: tuple[tuple[int, ...], ...]) -> OpCase:
    return _helpers().OpCase(fields, inputs)


@st.composite
def broadcasting_cases(draw: st.DrawFn) -> OpCase:
    """2 to 4 inputs of one rank, each of size 1 along some axes of the output: squeeze-excitation's
    (C, 1, 1), spatial attention's (1, H, W), and equal shapes when nothing is stretched."""
    output = draw(layouts())
    count = draw(st.integers(2, 4))
    inputs = tuple(
        tuple(1 if draw(st.booleans()) else size for size in output) for _ in range(count)
    )
    return case({}, inputs)


def _unary(fields: st.SearchStrategy[dict[str, Any]], shape: st.SearchStrategy[Any]) -> Any:
    return st.builds(lambda f, s: case(f, (s,)), fields, shape)


@st.composite
def mean_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(layouts())
    rank = len(shape) + 1  # numbered with the batch, which is never reduced
    dims = draw(st.lists(st.integers(1, rank - 1), min_size=1, max_size=rank - 1, unique=True))
    # averaging every axis away leaves no per-sample shape: keepdim is needed then
    keepdim = len(dims) == len(shape) or draw(st.booleans())
    return case({"dims": dims, "keepdim": keepdim}, (shape,))


_probability = st.floats(0, 1, exclude_max=True)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "mul": broadcasting_cases(),
    "add": broadcasting_cases(),
    # a factor of 0 reads nothing: its window could not be seen in a gradient
    "scale": _unary(
        st.fixed_dictionaries({"factor": st.floats(-4, 4).filter(lambda f: abs(f) > 1e-3)}),
        layouts(),
    ),
    "hardsigmoid": _unary(st.just({}), layouts()),
    "mish": _unary(st.just({}), layouts()),
    "elu": _unary(st.fixed_dictionaries({"alpha": st.floats(0, 3)}), layouts()),
    "softplus": _unary(
        # thresholds within the inputs' range [-2, 2] take both branches
        st.fixed_dictionaries({"beta": st.floats(0.1, 5), "threshold": st.floats(-2, 20)}),
        layouts(),
    ),
    "prelu": _unary(
        st.fixed_dictionaries(
            {"num_parameters": st.sampled_from([1, "channels"]), "init": st.floats(-1, 1)}
        ),
        layouts(),
    ),
    "mean": mean_cases(),
    "dropout2d": _unary(st.fixed_dictionaries({"p": _probability}), shapes(3)),
    "stochastic_depth": _unary(
        st.fixed_dictionaries({"p": _probability, "mode": st.sampled_from(["row", "batch"])}),
        layouts(),
    ),
}


def references() -> dict[str, Any]:
    """Imported lazily: torch is needed here only."""
    import torch

    def stretched(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """`x` read at index 0 along its axes of size 1, by indexing, not by broadcasting."""
        for axis, size in enumerate(shape):
            if x.shape[axis] != size:
                x = x.index_select(axis, torch.zeros(size, dtype=torch.long))
        return x

    def product(op: Any, lowered: Any, *xs: torch.Tensor) -> torch.Tensor:
        shape = tuple(max(sizes) for sizes in zip(*(x.shape for x in xs), strict=True))
        result = stretched(xs[0], shape).clone()
        for x in xs[1:]:
            result.mul_(stretched(x, shape))
        return result

    def total(op: Any, lowered: Any, *xs: torch.Tensor) -> torch.Tensor:
        shape = tuple(max(sizes) for sizes in zip(*(x.shape for x in xs), strict=True))
        result = stretched(xs[0], shape).clone()
        for x in xs[1:]:
            result.add_(stretched(x, shape))
        return result

    def softplus(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        smooth = torch.log(1 + torch.exp(op.beta * x)) / op.beta
        return torch.where(op.beta * x > op.threshold, x, smooth)

    def mish(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        twice = torch.exp(2 * torch.log(1 + torch.exp(x)))  # exp(2 softplus(x))
        return x * (twice - 1) / (twice + 1)

    def prelu(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        slopes = lowered.weight
        assert slopes.numel() == (1 if op.num_parameters == 1 else x.shape[1])
        # one slope per channel, along axis 1 of (N, C, ...)
        shaped = slopes.reshape(1, -1, *[1] * (x.dim() - 2))
        return torch.where(x > 0, x, shaped * x)

    def mean(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        count = math.prod(x.shape[dim] for dim in op.dims)
        summed = x
        for dim in sorted(op.dims, reverse=True):  # from the last, so the others keep their place
            summed = summed.sum(dim, keepdim=op.keepdim)
        return summed / count

    def dropout2d(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """Identity in eval; in train each channel of each sample is dropped or scaled whole."""
        lowered.train()
        ratio = (lowered(x) / x).flatten(2)  # (N, C, H*W)
        lowered.eval()
        dropped = (ratio == 0).all(2)
        kept = ((ratio - 1 / (1 - op.p)).abs() < 1e-9).all(2)
        assert (dropped | kept).all(), "a channel was partly dropped or scaled wrongly"
        return x

    def stochastic_depth(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """Identity in eval; in train each sample ("row") or the batch is dropped or scaled."""
        lowered.train()
        ratio = (lowered(x) / x).flatten(1)  # (N, elements)
        lowered.eval()
        if op.mode == "batch":
            ratio = ratio.flatten()[None]
        dropped = (ratio == 0).all(1)
        kept = ((ratio - 1 / (1 - op.p)).abs() < 1e-9).all(1)
        assert (dropped | kept).all(), f"a {op.mode} was partly dropped or scaled wrongly"
        return x

    return {
        "mul": product,
        "add": total,
        "scale": lambda op, lowered, x: x * op.factor,
        "hardsigmoid": lambda op, lowered, x: torch.where(
            x <= -3, 0.0, torch.where(x >= 3, 1.0, x / 6 + 0.5)
        ),
        "mish": mish,
        "elu": lambda op, lowered, x: torch.where(x > 0, x, op.alpha * (torch.exp(x) - 1)),
        "softplus": softplus,
        "prelu": prelu,
        "mean": mean,
        "dropout2d": dropout2d,
        "stochastic_depth": stochastic_depth,
    }
