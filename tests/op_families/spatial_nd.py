"""Strategies and references of the spatial_nd family:
conv1d, conv3d, max/avg/adaptive pooling in 1-D and 3-D, and adaptive_max_pool2d.

Every strategy and reference here is generic over the number of spatial axes: (C, L) audio,
(C, H, W) images, (C, T, H, W) video. References compute each output from the op's fields by
explicit windows (the taps o*s - p + i*d along each axis), never through the lowering.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    import torch
    from strategies import OpCase

Axes = tuple[int, ...]

#: Per spatial rank, the largest kernel and dilation drawn and how far an input may exceed the
#: smallest that fits: 3-D inputs stay small, because the window oracle spikes every position.
KERNELS = {1: 7, 2: 5, 3: 3}
DILATIONS = {1: 3, 2: 3, 3: 2}
SLACK = {1: 24, 2: 12, 3: 4}


def _case(fields: dict[str, Any], inputs: tuple[tuple[int, ...], ...]) -> OpCase:
    """tests/strategies.py's OpCase, imported when a case is drawn: strategies imports this
    package as it finishes loading, so importing it at the top (test_op_oracles imports the
    package first) would be circular."""
    from strategies import OpCase

    return OpCase(fields, inputs)


def _axes(draw: st.DrawFn, rank: int, low: int, high: int) -> Axes:
    """Mostly one value along every axis, sometimes not: per-axis values are never assumed equal."""
    first = draw(st.integers(low, high))
    if draw(st.booleans()):
        return (first,) * rank
    return (first, *(draw(st.integers(low, high)) for _ in range(rank - 1)))


def _axes_field(draw: st.DrawFn, axes: Axes) -> int | list[int]:
    """A per-axis value written as a spec would: one int when all agree (sometimes), else a list."""
    if len(set(axes)) == 1 and draw(st.booleans()):
        return axes[0]
    return list(axes)


def _extent(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def _sizes_at_least(draw: st.DrawFn, minimum: Axes) -> Axes:
    """Each spatial size from its minimum to SLACK more, so odd and even sizes both come up."""
    slack = SLACK[len(minimum)]
    return tuple(draw(st.integers(max(1, low), max(1, low) + slack)) for low in minimum)


@st.composite
def conv_cases(draw: st.DrawFn, rank: int) -> OpCase:
    groups = draw(st.integers(1, 4))
    in_channels = groups * draw(st.integers(1, 3))
    kernel = _axes(draw, rank, 1, KERNELS[rank])
    dilation = _axes(draw, rank, 1, DILATIONS[rank])
    mode = draw(st.sampled_from(["explicit", "same", "valid"]))
    fields: dict[str, Any] = {
        "out_channels": groups * draw(st.integers(1, 3)),
        "kernel": _axes_field(draw, kernel),
        "dilation": _axes_field(draw, dilation),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    padding = (0,) * rank
    if mode == "same":
        fields["padding"] = "same"  # torch allows it with stride 1 only
    else:
        fields["stride"] = _axes_field(draw, _axes(draw, rank, 1, 3))
        if mode == "valid":
            fields["padding"] = "valid"
        else:
            padding = _axes(draw, rank, 0, 4)  # even more than the kernel needs: torch allows it
            fields["padding"] = _axes_field(draw, padding)
    minimum = (1,) * rank
    if mode != "same":
        minimum = tuple(
            _extent(k, d) - 2 * p for k, d, p in zip(kernel, dilation, padding, strict=True)
        )
    return _case(fields, ((in_channels, *_sizes_at_least(draw, minimum)),))


def _pool_common(
    draw: st.DrawFn, rank: int, dilation: Axes, unpadded: bool = False
) -> tuple[dict[str, Any], Axes]:
    """Kernel, stride (or torch's default), padding within torch's rule, ceil_mode; the sizes.

    `unpadded`: the input holds the kernel before padding (torch's rule for avg_pool3d).
    """
    kernel = _axes(draw, rank, 1, KERNELS[rank] - 1)
    # torch: "pad should be at most half of kernel size" -- of the kernel, not the dilated extent
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    fields: dict[str, Any] = {
        "kernel": _axes_field(draw, kernel),
        "padding": _axes_field(draw, padding),
        "ceil_mode": draw(st.booleans()),
    }
    stride = _axes(draw, rank, 1, 3) if draw(st.booleans()) else kernel  # torch's default
    if stride != kernel or draw(st.booleans()):
        fields["stride"] = _axes_field(draw, stride)
    # the padded input must hold one window; in ceil_mode its start is enough (s - 1 fewer pixels)
    slack = [s - 1 if fields["ceil_mode"] else 0 for s in stride]
    minimum = tuple(
        max(_extent(k, d) - 2 * p - e, k if unpadded else 1)
        for k, d, p, e in zip(kernel, dilation, padding, slack, strict=True)
    )
    return fields, _sizes_at_least(draw, minimum)


@st.composite
def max_pool_cases(draw: st.DrawFn, rank: int) -> OpCase:
    dilation = _axes(draw, rank, 1, DILATIONS[rank])
    fields, spatial = _pool_common(draw, rank, dilation)
    fields["dilation"] = _axes_field(draw, dilation)
    return _case(fields, ((draw(st.integers(1, 4)), *spatial),))


@st.composite
def avg_pool_cases(draw: st.DrawFn, rank: int) -> OpCase:
    fields, spatial = _pool_common(draw, rank, (1,) * rank, unpadded=rank == 3)
    fields["count_include_pad"] = draw(st.booleans())
    return _case(fields, ((draw(st.integers(1, 4)), *spatial),))


@st.composite
def adaptive_pool_cases(draw: st.DrawFn, rank: int) -> OpCase:
    output_size = _axes(draw, rank, 1, 7 if rank < 3 else 4)
    if draw(st.booleans()):  # sizes that divide: equal, disjoint windows
        spatial = tuple(out * draw(st.integers(1, 4 if rank < 3 else 2)) for out in output_size)
    else:  # any size, smaller than the output included: unequal, overlapping windows
        spatial = tuple(draw(st.integers(1, 20 if rank < 3 else 9)) for _ in range(rank))
    fields = {"output_size": _axes_field(draw, output_size)}
    return _case(fields, ((draw(st.integers(1, 4)), *spatial),))


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "conv1d": conv_cases(1),
    "conv3d": conv_cases(3),
    "max_pool1d": max_pool_cases(1),
    "max_pool3d": max_pool_cases(3),
    "avg_pool1d": avg_pool_cases(1),
    "avg_pool3d": avg_pool_cases(3),
    "adaptive_avg_pool1d": adaptive_pool_cases(1),
    "adaptive_avg_pool3d": adaptive_pool_cases(3),
    "adaptive_max_pool2d": adaptive_pool_cases(2),
}


# -- references: values by explicit windows -----------------------------------------------------


def _taps(out: int, kernel: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """(out, kernel) input positions read by each output position along one axis: o*s - p + i*d."""
    import torch

    return (torch.arange(out)[:, None] * stride - padding) + torch.arange(kernel)[
        None, :
    ] * dilation


def _windows(x: torch.Tensor, taps: list[torch.Tensor], fill: float) -> torch.Tensor:
    """(N, C, *spatial) -> (N, C, *out, *kernel): every tap's value, `fill` outside the input."""
    import torch.nn.functional as F

    rank = len(taps)
    before = [max(0, -int(t.min())) for t in taps]
    after = [max(0, int(t.max()) - size + 1) for t, size in zip(taps, x.shape[2:], strict=True)]
    # F.pad takes (front, back) pairs from the last axis to the first
    padded = F.pad(
        x,
        [pad for axis in reversed(range(rank)) for pad in (before[axis], after[axis])],
        value=fill,
    )
    index = []
    for axis, t in enumerate(taps):
        # out along dimension `axis`, kernel along `rank + axis`: they broadcast to (*out, *kernel)
        shape = [1] * (2 * rank)
        shape[axis], shape[rank + axis] = t.shape
        index.append((t + before[axis]).view(shape))
    return padded[(slice(None), slice(None), *index)]


def _sliding_taps(
    op: Any, x: torch.Tensor, padding: Axes, stride: Axes, dilation: Axes
) -> list[torch.Tensor]:
    out = op.output_shape([tuple(x.shape[1:])])[1:]
    return [
        _taps(o, k, s, p, d)
        for o, k, s, p, d in zip(out, op.kernel, stride, padding, dilation, strict=True)
    ]


def conv_reference(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    """Each output: the weights times the unfolded window of C_in/G channels of its group."""
    import torch

    rank = len(op.kernel)
    if op.padding == "same":
        # torch puts the odd pixel of an even total at the end
        padding = tuple(d * (k - 1) // 2 for k, d in zip(op.kernel, op.dilation, strict=True))
    else:
        padding = (0,) * rank if op.padding == "valid" else op.padding
    batch, channels = x.shape[:2]
    groups = op.groups
    assert module.weight.shape == (op.out_channels, channels // groups, *op.kernel)
    assert (module.bias is not None) == op.bias
    taps = _sliding_taps(op, x, padding, op.stride, op.dilation)
    out = [t.shape[0] for t in taps]
    patches = _windows(x, taps, 0.0).reshape(batch, groups, channels // groups, *out, *op.kernel)
    weight = module.weight.reshape(
        groups, op.out_channels // groups, channels // groups, *op.kernel
    )
    positions, offsets = "xyz"[:rank], "uvw"[:rank]
    y = torch.einsum(f"ngc{positions}{offsets},gdc{offsets}->ngd{positions}", patches, weight)
    y = y.reshape(batch, op.out_channels, *out)
    if module.bias is not None:
        y = y + module.bias.view(1, -1, *(1,) * rank)
    return y


def max_pool_reference(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    rank = len(op.kernel)
    taps = _sliding_taps(op, x, op.padding, op.stride or op.kernel, op.dilation)
    return _windows(x, taps, -math.inf).amax(dim=tuple(range(-rank, 0)))


def avg_pool_reference(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    """Sum over the taps inside the input, divided by the taps inside the padded input
    (count_include_pad) or inside the input; a ceil_mode window's overhang past the padding
    counts in neither."""
    rank = len(op.kernel)
    taps = _sliding_taps(op, x, op.padding, op.stride or op.kernel, (1,) * rank)
    total = _windows(x, taps, 0.0).sum(dim=tuple(range(-rank, 0)))
    divisor = total.new_ones(())
    for axis, (t, size, pad) in enumerate(zip(taps, x.shape[2:], op.padding, strict=True)):
        low, high = (-pad, size + pad) if op.count_include_pad else (0, size)
        counts = ((t >= low) & (t < high)).sum(1).to(total.dtype)
        shape = [1] * rank
        shape[axis] = -1
        divisor = divisor * counts.view(shape)
    return total / divisor


def _adaptive(op: Any, x: torch.Tensor, reduce: str) -> torch.Tensor:
    """Window i along an axis of size L spans [floor(i L / o), ceil((i + 1) L / o))."""
    rank = len(op.output_size)
    spans = [
        [slice(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]
        for size, out in zip(x.shape[2:], op.output_size, strict=True)
    ]
    y = x.new_empty(*x.shape[:2], *op.output_size)
    dims = tuple(range(-rank, 0))
    for index in itertools.product(*(range(out) for out in op.output_size)):
        window = x[(..., *(spans[axis][i] for axis, i in enumerate(index)))]
        y[(..., *index)] = window.amax(dim=dims) if reduce == "max" else window.mean(dim=dims)
    return y


def adaptive_avg_pool_reference(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    return _adaptive(op, x, "mean")


def adaptive_max_pool_reference(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    return _adaptive(op, x, "max")


def references() -> dict[str, Any]:
    return {
        "conv1d": conv_reference,
        "conv3d": conv_reference,
        "max_pool1d": max_pool_reference,
        "max_pool3d": max_pool_reference,
        "avg_pool1d": avg_pool_reference,
        "avg_pool3d": avg_pool_reference,
        "adaptive_avg_pool1d": adaptive_avg_pool_reference,
        "adaptive_avg_pool3d": adaptive_avg_pool_reference,
        "adaptive_max_pool2d": adaptive_max_pool_reference,
    }
