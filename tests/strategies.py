"""Hypothesis strategies: for every registered op, fields it accepts and input shapes it fits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from archspec.ops.layouts import LaidOut, default_layout

Shape = tuple[int, ...]
Pair = tuple[int, int]


@dataclass(frozen=True)
class OpCase:
    """One op to build: its fields as a spec would write them, and the shapes of its inputs."""

    fields: dict[str, Any]
    inputs: tuple[Shape, ...]


def _pair_field(draw: st.DrawFn, pair: Pair) -> int | list[int]:
    """A per-axis value written as a spec would: one int when square (sometimes), else [h, w]."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return list(pair)


def _pair(draw: st.DrawFn, low: int, high: int) -> Pair:
    """Mostly square, sometimes not: per-axis values are never assumed equal."""
    first = draw(st.integers(low, high))
    return (first, first) if draw(st.booleans()) else (first, draw(st.integers(low, high)))


def _extent(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def _spatial_at_least(draw: st.DrawFn, minimum: Pair) -> Pair:
    """(H, W), each from its minimum to a dozen more, so odd and even sizes both come up."""
    low = (max(1, minimum[0]), max(1, minimum[1]))
    return draw(st.integers(low[0], low[0] + 12)), draw(st.integers(low[1], low[1] + 12))


def shapes(rank: int | None = None) -> st.SearchStrategy[Shape]:
    """(F,) or (C, H, W), small enough to run in a few milliseconds."""
    flat = st.tuples(st.integers(1, 64))
    spatial = st.tuples(st.integers(1, 8), st.integers(1, 12), st.integers(1, 12))
    if rank == 1:
        return flat
    if rank == 3:
        return spatial
    return flat | spatial


#: Per layout, the largest size drawn along each axis: small enough to run in milliseconds.
LAYOUT_SIZES: dict[str, tuple[int, ...]] = {
    "F": (24,),
    "CL": (6, 12),
    "CHW": (6, 8, 8),
    "CTHW": (4, 4, 5, 5),
    "LC": (12, 8),
    "HWC": (8, 8, 6),
}


def laid_out_shapes(layouts: Sequence[str] = tuple(LAYOUT_SIZES)) -> st.SearchStrategy[Shape]:
    """Shapes of the given layouts: plain tuples when channels first, as a spec's input is
    (what a shape without a layout means), LaidOut otherwise."""

    def of(layout: str) -> st.SearchStrategy[Shape]:
        sizes = st.tuples(*(st.integers(1, high) for high in LAYOUT_SIZES[layout]))
        if layout == default_layout(len(layout)):
            return sizes
        return sizes.map(lambda drawn: LaidOut(drawn, layout))

    return st.one_of(*(of(layout) for layout in layouts))


@st.composite
def conv2d_cases(draw: st.DrawFn) -> OpCase:
    groups = draw(st.integers(1, 4))
    in_channels = groups * draw(st.integers(1, 3))
    kernel = _pair(draw, 1, 5)
    dilation = _pair(draw, 1, 3)
    mode = draw(st.sampled_from(["explicit", "same", "valid"]))
    fields: dict[str, Any] = {
        "out_channels": groups * draw(st.integers(1, 3)),
        "kernel": _pair_field(draw, kernel),
        "dilation": _pair_field(draw, dilation),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    padding = (0, 0)
    if mode == "same":
        fields["padding"] = "same"  # torch allows it with stride 1 only
    else:
        fields["stride"] = _pair_field(draw, _pair(draw, 1, 3))
        if mode == "valid":
            fields["padding"] = "valid"
        else:
            padding = _pair(draw, 0, 4)  # even more than the kernel needs: torch allows it
            fields["padding"] = _pair_field(draw, padding)
    if mode == "same":
        spatial = _spatial_at_least(draw, (1, 1))
    else:
        extents = [_extent(k, d) - 2 * p for k, d, p in zip(kernel, dilation, padding, strict=True)]
        spatial = _spatial_at_least(draw, (extents[0], extents[1]))
    return OpCase(fields, ((in_channels, *spatial),))


@st.composite
def linear_cases(draw: st.DrawFn) -> OpCase:
    fields: dict[str, Any] = {"out_features": draw(st.integers(1, 64)), "bias": draw(st.booleans())}
    if draw(st.booleans()):  # positions last, mixed on purpose: MLP-Mixer's token MLP
        fields["over"] = "positions"
        return OpCase(fields, (draw(laid_out_shapes(("CL",))),))
    # features, tokens (L, C) or a channels-last map (H, W, C): it acts on the last axis
    return OpCase(fields, (draw(shapes(1) | laid_out_shapes(("LC", "HWC"))),))


def _pool_common(draw: st.DrawFn, dilation: Pair) -> tuple[dict[str, Any], Pair]:
    """Kernel, stride (or torch's default), padding within torch's rule, ceil_mode; and (H, W)."""
    kernel = _pair(draw, 1, 4)
    # torch: "pad should be at most half of kernel size" -- of the kernel, not the dilated extent
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    fields: dict[str, Any] = {
        "kernel": _pair_field(draw, kernel),
        "padding": _pair_field(draw, padding),
        "ceil_mode": draw(st.booleans()),
    }
    stride = _pair(draw, 1, 3) if draw(st.booleans()) else kernel  # torch's default: the kernel
    if stride != kernel or draw(st.booleans()):
        fields["stride"] = _pair_field(draw, stride)
    # the padded input must hold one window; in ceil_mode its start is enough (s - 1 fewer pixels)
    slack = [s - 1 if fields["ceil_mode"] else 0 for s in stride]
    extents = [
        _extent(k, d) - 2 * p - e
        for k, d, p, e in zip(kernel, dilation, padding, slack, strict=True)
    ]
    return fields, _spatial_at_least(draw, (extents[0], extents[1]))


@st.composite
def max_pool2d_cases(draw: st.DrawFn) -> OpCase:
    dilation = _pair(draw, 1, 3)
    fields, spatial = _pool_common(draw, dilation)
    fields["dilation"] = _pair_field(draw, dilation)
    return OpCase(fields, ((draw(st.integers(1, 4)), *spatial),))


@st.composite
def avg_pool2d_cases(draw: st.DrawFn) -> OpCase:
    fields, spatial = _pool_common(draw, (1, 1))
    fields["count_include_pad"] = draw(st.booleans())
    return OpCase(fields, ((draw(st.integers(1, 4)), *spatial),))


@st.composite
def adaptive_avg_pool2d_cases(draw: st.DrawFn) -> OpCase:
    output_size = _pair(draw, 1, 7)
    if draw(st.booleans()):  # sizes that divide: equal, disjoint windows
        spatial = (
            output_size[0] * draw(st.integers(1, 4)),
            output_size[1] * draw(st.integers(1, 4)),
        )
    else:  # any size, smaller than the output included: unequal, overlapping windows
        spatial = (draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    fields = {"output_size": _pair_field(draw, output_size)}
    return OpCase(fields, ((draw(st.integers(1, 4)), *spatial),))


@st.composite
def batchnorm2d_cases(draw: st.DrawFn) -> OpCase:
    fields = {
        "eps": draw(st.floats(1e-6, 1e-2)),
        "momentum": draw(st.floats(0, 1)),
        "affine": draw(st.booleans()),
        "track_running_stats": draw(st.booleans()),
    }
    return OpCase(fields, (draw(shapes(3)),))


@st.composite
def local_response_norm_cases(draw: st.DrawFn) -> OpCase:
    fields = {
        "size": draw(st.integers(1, 7)),
        "alpha": draw(st.floats(1e-5, 1e-2)),
        "beta": draw(st.floats(0.5, 1)),
        "k": draw(st.floats(1, 2)),
    }
    return OpCase(fields, (draw(shapes(3)),))


def _unary(fields: st.SearchStrategy[dict[str, Any]] | None = None) -> st.SearchStrategy[OpCase]:
    """Element-wise ops: any rank, and the given fields (none by default)."""
    drawn = fields if fields is not None else st.just({})
    return st.builds(lambda f, shape: OpCase(f, (shape,)), drawn, shapes())


@st.composite
def softmax_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(shapes())
    return OpCase({"dim": draw(st.integers(1, len(shape)))}, (shape,))


@st.composite
def flatten_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(shapes() | laid_out_shapes())
    start_dim = draw(st.integers(1, len(shape)))
    fields: dict[str, Any] = {"start_dim": start_dim}
    if draw(st.booleans()):  # else to the last axis, torch's default
        fields["end_dim"] = draw(st.sampled_from([-1, *range(start_dim, len(shape) + 1)]))
    return OpCase(fields, (shape,))


@st.composite
def add_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(shapes())
    return OpCase({}, (shape,) * draw(st.integers(2, 4)))


@st.composite
def concat_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(shapes())
    dim = draw(st.integers(1, len(shape)))
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    inputs = tuple((*shape[: dim - 1], size, *shape[dim:]) for size in sizes)
    return OpCase({"dim": dim}, inputs)


#: Every registered op's strategy; tests/test_ops.py fails when an op has none.
OP_STRATEGIES: dict[str, st.SearchStrategy[OpCase]] = {
    "conv2d": conv2d_cases(),
    "linear": linear_cases(),
    "max_pool2d": max_pool2d_cases(),
    "avg_pool2d": avg_pool2d_cases(),
    "adaptive_avg_pool2d": adaptive_avg_pool2d_cases(),
    "batchnorm2d": batchnorm2d_cases(),
    "local_response_norm": local_response_norm_cases(),
    "relu": _unary(),
    "relu6": _unary(),
    "leaky_relu": _unary(st.fixed_dictionaries({"negative_slope": st.floats(0, 1)})),
    "gelu": _unary(st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])})),
    "silu": _unary(),
    "sigmoid": _unary(),
    "tanh": _unary(),
    "hardswish": _unary(),
    "softmax": softmax_cases(),
    "flatten": flatten_cases(),
    "dropout": _unary(st.fixed_dictionaries({"p": st.floats(0, 1, exclude_max=True)})),
    "identity": _unary(),
    "add": add_cases(),
    "concat": concat_cases(),
}

# the op families' strategies (tests/op_families/), imported last: they use the helpers above
# family_references is re-exported: importing op_families first would be circular
from op_families import FAMILY_STRATEGIES, family_references  # noqa: E402, F401

OP_STRATEGIES.update(FAMILY_STRATEGIES)
