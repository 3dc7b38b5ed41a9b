"""Strategies and references of the plumbing family:
split/chunk, channel_shuffle, pad, crop, group_norm, instance_norm, batchnorm1d/3d.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

import archspec.ops.channels  # registers its ops  # noqa: F401

if TYPE_CHECKING:
    from strategies import OpCase

Shape = tuple[int, ...]


def _case(fields: dict[str, Any], inputs: tuple[Shape, ...]) -> OpCase:
    # imported when drawn: strategies imports the families at its end, and test_op_oracles
    # imports the families first
    from strategies import OpCase

    return OpCase(fields, inputs)


#: Ranks of the per-sample shapes with spatial axes: (C, L), (C, H, W) and (C, T, H, W).
_SPATIAL_RANKS = (2, 3, 4)


def _shape(draw: st.DrawFn, rank: int, channels: int | None = None, high: int = 9) -> Shape:
    """(C, *spatial) of `rank`, small enough to run in a few milliseconds."""
    if rank == 4:
        high = min(high, 5)
    spatial = tuple(draw(st.integers(1, high)) for _ in range(rank - 1))
    return (channels if channels is not None else draw(st.integers(1, 6)), *spatial)


@st.composite
def group_norm_cases(draw: st.DrawFn) -> OpCase:
    groups = draw(st.integers(1, 4))
    channels = groups * draw(st.integers(1, 3))
    shape = _shape(draw, draw(st.sampled_from((1, *_SPATIAL_RANKS))), channels)
    if math.prod(shape) == groups:
        # groups of one value give the bias whatever the input, so the unit reads nothing: that
        # case is tests/test_ops_plumbing.py's, the window oracle would see no gradient
        shape = (2 * channels,) if len(shape) == 1 else (*shape[:-1], 2)
    fields = {
        "num_groups": groups,
        "eps": draw(st.floats(1e-6, 1e-2)),
        "affine": draw(st.booleans()),
    }
    return _case(fields, (shape,))


def _channel_norm_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "eps": draw(st.floats(1e-6, 1e-2)),
        "momentum": draw(st.floats(0, 1)),
        "affine": draw(st.booleans()),
        "track_running_stats": draw(st.booleans()),
    }


@st.composite
def instance_norm_cases(draw: st.DrawFn) -> OpCase:
    shape = _shape(draw, 3)
    if shape[1] * shape[2] == 1:  # torch refuses one position per channel
        shape = (shape[0], 1, 2)
    return _case(_channel_norm_fields(draw), (shape,))


@st.composite
def batchnorm1d_cases(draw: st.DrawFn) -> OpCase:
    return _case(_channel_norm_fields(draw), (_shape(draw, draw(st.sampled_from((1, 2)))),))


@st.composite
def batchnorm3d_cases(draw: st.DrawFn) -> OpCase:
    return _case(_channel_norm_fields(draw), (_shape(draw, 4),))


def _dim_and_shape(draw: st.DrawFn) -> tuple[int, Shape]:
    shape = _shape(draw, draw(st.sampled_from((1, *_SPATIAL_RANKS))), draw(st.integers(1, 12)))
    return draw(st.integers(1, len(shape))), shape


@st.composite
def chunk_cases(draw: st.DrawFn) -> OpCase:
    dim, shape = _dim_and_shape(draw)
    size = shape[dim - 1]
    chunks = draw(st.integers(1, size + 2))  # more chunks than elements too
    parts = -(-size // -(-size // chunks))  # torch's count: ceil(size / ceil(size / chunks))
    fields = {"chunks": chunks, "index": draw(st.integers(0, parts - 1)), "dim": dim}
    return _case(fields, (shape,))


@st.composite
def split_cases(draw: st.DrawFn) -> OpCase:
    dim, shape = _dim_and_shape(draw)
    size = shape[dim - 1]
    cuts = sorted(draw(st.sets(st.integers(1, size - 1), max_size=3))) if size > 1 else []
    edges = [0, *cuts, size]
    sizes = [end - start for start, end in itertools.pairwise(edges)]
    fields = {"sizes": sizes, "index": draw(st.integers(0, len(sizes) - 1)), "dim": dim}
    return _case(fields, (shape,))


@st.composite
def channel_shuffle_cases(draw: st.DrawFn) -> OpCase:
    groups = draw(st.integers(1, 4))
    shape = _shape(draw, draw(st.sampled_from(_SPATIAL_RANKS)), groups * draw(st.integers(1, 3)))
    return _case({"groups": groups}, (shape,))


@st.composite
def pad_cases(draw: st.DrawFn) -> OpCase:
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    shape = _shape(draw, draw(st.sampled_from(_SPATIAL_RANKS)))
    if mode in ("constant", "replicate"):
        limits = [4] * (len(shape) - 1)
    else:  # torch's rules: reflect pads less than the size, circular at most the size
        limits = [min(4, size - 1 if mode == "reflect" else size) for size in shape[1:]]
    if draw(st.booleans()):
        padding: int | list[int] = draw(st.integers(0, min(limits)))
    else:
        padding = [draw(st.integers(0, limit)) for limit in limits for _ in "ab"]
    fields: dict[str, Any] = {"padding": padding, "mode": mode}
    if mode == "constant":
        fields["value"] = draw(st.floats(-2, 2))
    return _case(fields, (shape,))


@st.composite
def crop_cases(draw: st.DrawFn) -> OpCase:
    shape = _shape(draw, draw(st.sampled_from(_SPATIAL_RANKS)), high=12)
    target = [draw(st.integers(1, size)) for size in shape[1:]]
    if draw(st.booleans()):  # to the size of a second input, of any channels
        return _case({}, (shape, (draw(st.integers(1, 4)), *target)))
    square = len(set(target)) == 1 and draw(st.booleans())
    return _case({"size": target[0] if square else target}, (shape,))


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "group_norm": group_norm_cases(),
    "instance_norm": instance_norm_cases(),
    "batchnorm1d": batchnorm1d_cases(),
    "batchnorm3d": batchnorm3d_cases(),
    "chunk": chunk_cases(),
    "split": split_cases(),
    "channel_shuffle": channel_shuffle_cases(),
    "pad": pad_cases(),
    "crop": crop_cases(),
}


def references() -> dict[str, Any]:
    """Each computes the op from its fields by formula, never through the lowering's function or
    module (only its weights and buffers)."""
    import torch

    def per_channel(tensor: torch.Tensor, rank: int) -> torch.Tensor:
        """A (C,) vector shaped to broadcast over (N, C, *spatial) of `rank` dims."""
        return tensor.reshape(1, -1, *([1] * (rank - 2)))

    def affine(y: torch.Tensor, op: Any, module: Any) -> torch.Tensor:
        if not op.affine:
            return y
        return y * per_channel(module.weight, y.dim()) + per_channel(module.bias, y.dim())

    def normalised(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)  # torch normalises by the biased one
        return (x - mean) / torch.sqrt(var + eps)

    def channel_norm(op: Any, module: Any, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        """Running statistics when tracked (eval mode), else the ones over `dims`."""
        if op.track_running_stats:
            mean = per_channel(module.running_mean, x.dim())
            var = per_channel(module.running_var, x.dim())
            y = (x - mean) / torch.sqrt(var + op.eps)
        else:
            y = normalised(x, dims, op.eps)
        return affine(y, op, module)

    def batch_norm(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
        return channel_norm(op, module, x, (0, *range(2, x.dim())))

    def instance_norm(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
        return channel_norm(op, module, x, tuple(range(2, x.dim())))

    def group_norm(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
        grouped = x.reshape(x.shape[0], op.num_groups, -1)
        y = normalised(grouped, (2,), op.eps).reshape(x.shape)
        return affine(y, op, module)

    def chunk(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(op.chunks, op.dim)[op.index]  # torch's own chunk: the lowering narrows

    def split(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        return x.split(list(op.sizes), op.dim)[op.index]

    def channel_shuffle(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """torchvision's: (N, G, C/G, ...) -> transpose the two -> (N, C, ...)."""
        batch, channels, *rest = x.shape
        grouped = x.reshape(batch, op.groups, channels // op.groups, *rest)
        return grouped.transpose(1, 2).reshape(x.shape)

    def pad(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """Each padded position's source index per axis, gathered; constant fills the rest."""
        axes = x.dim() - 2
        amounts = op.padding if isinstance(op.padding, tuple) else (op.padding,) * (2 * axes)
        y = x
        for axis, before, after in zip(range(2, x.dim()), amounts[::2], amounts[1::2], strict=True):
            size = x.shape[axis]
            index = torch.arange(-before, size + after)
            if op.mode == "reflect":
                index = index.abs()
                index = torch.where(index >= size, 2 * (size - 1) - index, index)
            elif op.mode == "replicate":
                index = index.clamp(0, size - 1)
            elif op.mode == "circular":
                index = index % size
            inside = (index >= 0) & (index < size)
            y = y.index_select(axis, index.clamp(0, size - 1))
            if op.mode == "constant":
                shape = [1] * y.dim()
                shape[axis] = -1
                y = torch.where(inside.reshape(shape), y, op.value)
        return y

    def crop(op: Any, lowered: Any, x: torch.Tensor, *reference: torch.Tensor) -> torch.Tensor:
        """The centre (rounded up and left) of x at the size of `reference` or `size`."""
        if reference:
            sizes = tuple(reference[0].shape[2:])
        else:
            sizes = op.size if isinstance(op.size, tuple) else (op.size,) * (x.dim() - 2)
        slices = [
            slice((have - want) // 2, (have - want) // 2 + want)
            for have, want in zip(x.shape[2:], sizes, strict=True)
        ]
        return x[(slice(None), slice(None), *slices)]

    return {
        "group_norm": group_norm,
        "instance_norm": instance_norm,
        "batchnorm1d": batch_norm,
        "batchnorm3d": batch_norm,
        "chunk": chunk,
        "split": split,
        "channel_shuffle": channel_shuffle,
        "pad": pad,
        "crop": crop,
    }
