"""Strategies and references of the tokens family: permute, transpose, reshape, select, slice,
layer_norm, parameter, multihead_attention, shifted_window_attention, patch_merging.

Their inputs carry a layout (archspec.ops.layouts.LaidOut) wherever it is not channels first:
tokens (L, C) and Swin's channels-last maps (H, W, C). References compute each output from the
op's fields by index arithmetic, explicit matrix products and explicit loops over windows, never
through the lowering's function or module (only its weights).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from archspec.ops.layouts import LaidOut, layout_of

if TYPE_CHECKING:
    import torch
    from strategies import OpCase

Shape = tuple[int, ...]

#: Layouts with a position axis: what select, which drops an axis, may take.
_RANKED = ("CL", "CHW", "CTHW", "LC", "HWC")
#: Layouts a reshape may name for its output, per rank.
_NAMED_LAYOUTS = {1: ("F", "C", "L"), 2: ("CL", "LC"), 3: ("CHW", "HWC"), 4: ("CTHW",)}


def _helpers() -> Any:
    """tests/strategies.py, imported when a case is first drawn: it imports this package as it
    finishes loading, so importing it here first would be circular."""
    import strategies

    return strategies


def _case(fields: dict[str, Any], inputs: tuple[Shape, ...]) -> OpCase:
    return _helpers().OpCase(fields, inputs)


def _shapes(layouts: tuple[str, ...] | None = None) -> st.SearchStrategy[Shape]:
    """Small shapes of the given layouts (default every one), laid out unless channels first."""
    return st.deferred(
        lambda: _helpers().laid_out_shapes(layouts) if layouts else _helpers().laid_out_shapes()
    )


def _with_size(shape: Shape, axis: int, size: int) -> Shape:
    """`shape` with axis `axis` resized, its layout kept."""
    sizes = list(shape)
    sizes[axis] = size
    layout = getattr(shape, "layout", None)
    return LaidOut(sizes, layout) if layout else tuple(sizes)


def _pair_field(draw: st.DrawFn, pair: tuple[int, int]) -> int | list[int]:
    """A per-axis value written as a spec would: one int when square (sometimes), else [h, w]."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return list(pair)


def _divisors(number: int) -> list[int]:
    return [divisor for divisor in range(1, number + 1) if number % divisor == 0]


@st.composite
def permute_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(_shapes())
    order = draw(st.permutations(range(1, len(shape) + 1)))
    return _case({"dims": [0, *order]}, (shape,))


@st.composite
def transpose_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(_shapes())
    dims = st.integers(1, len(shape))
    return _case({"dim0": draw(dims), "dim1": draw(dims)}, (shape,))


@st.composite
def reshape_cases(draw: st.DrawFn) -> OpCase:
    """A map's positions regrouped behind its channels (into tokens, or into another map), or the
    elements into any 1 to 4 sizes; one size -1 sometimes, and a named layout sometimes."""
    shape = draw(_shapes())
    if layout_of(shape)[0] == "C" and len(shape) > 1 and draw(st.booleans()):
        positions = math.prod(shape[1:])
        if draw(st.booleans()):  # into tokens
            sizes = [shape[0], positions]
        else:  # into another map, or the same
            rows = draw(st.sampled_from(_divisors(positions)))
            sizes = [shape[0], rows, positions // rows]
    else:
        sizes, remaining = [], math.prod(shape)
        for _ in range(draw(st.integers(1, 4)) - 1):
            sizes.append(draw(st.sampled_from(_divisors(remaining))))
            remaining //= sizes[-1]
        sizes.append(remaining)
    if draw(st.booleans()):
        sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    fields: dict[str, Any] = {"shape": sizes}
    if draw(st.booleans()):
        fields["layout"] = draw(st.sampled_from(_NAMED_LAYOUTS[len(sizes)]))
    return _case(fields, (shape,))


@st.composite
def select_cases(draw: st.DrawFn) -> OpCase:
    shape = draw(_shapes(_RANKED))
    dim = draw(st.integers(1, len(shape)))
    size = shape[dim - 1]
    return _case({"dim": dim, "index": draw(st.integers(-size, size - 1))}, (shape,))


@st.composite
def slice_cases(draw: st.DrawFn) -> OpCase:
    """A non-empty part along any axis, its ends written from the front or the back."""
    shape = draw(_shapes())
    dim = draw(st.integers(1, len(shape)))
    size = shape[dim - 1]
    start = draw(st.integers(0, size - 1))
    end = draw(st.integers(start + 1, size))
    fields: dict[str, Any] = {"dim": dim}
    if start or draw(st.booleans()):
        fields["start"] = start - size if draw(st.booleans()) else start
    if end < size:
        fields["end"] = end - size if draw(st.booleans()) else end
    elif draw(st.booleans()):
        fields["end"] = size
    return _case(fields, (shape,))


@st.composite
def layer_norm_cases(draw: st.DrawFn) -> OpCase:
    """Features last, over the last 1 to all axes; or the channels of a channels-first map."""
    shape = draw(_shapes())
    layout = layout_of(shape)
    features_last = layout[-1] in "CF"
    axes = draw(st.integers(1, len(shape))) if features_last else 1
    normalised = math.prod(shape[-axes:]) if features_last else shape[0]
    if normalised == 1:
        # one value normalises to 0 whatever it is, so no unit would read any input: the window
        # oracle would see nothing to compare
        shape = _with_size(shape, -1 if features_last else 0, draw(st.integers(2, 6)))
    fields: dict[str, Any] = {
        "eps": draw(st.floats(1e-6, 1e-2)),
        "elementwise_affine": draw(st.booleans()),
        "bias": draw(st.booleans()),
    }
    if axes != 1 or draw(st.booleans()):
        fields["axes"] = axes
    return _case(fields, (shape,))


@st.composite
def parameter_cases(draw: st.DrawFn) -> OpCase:
    """A tensor of as many axes as the sample, fewer (broadcast from the last), or one more with
    a batch axis of 1 (ViT's (1, 1, D) class token); every init."""
    shape = draw(_shapes())
    rank = draw(st.integers(1, len(shape) + 1))
    sizes = [draw(st.integers(1, 5)) for _ in range(rank)]
    if rank == len(shape) + 1:
        sizes[0] = 1
    init = draw(st.sampled_from(["zeros", "ones", "constant", "normal", "trunc_normal"]))
    fields: dict[str, Any] = {"shape": sizes, "init": init}
    if init == "constant":
        fields["value"] = draw(st.floats(-2, 2))
    elif init in ("normal", "trunc_normal") and draw(st.booleans()):
        fields["std"] = draw(st.floats(0.01, 1))
    return _case(fields, (shape,))


@st.composite
def multihead_attention_cases(draw: st.DrawFn) -> OpCase:
    heads = draw(st.integers(1, 3))
    embed = heads * draw(st.integers(1, 4))
    fields: dict[str, Any] = {"num_heads": heads, "bias": draw(st.booleans())}
    if draw(st.booleans()):
        fields["dropout"] = draw(st.floats(0, 0.5))
    if draw(st.booleans()):
        fields["projections"] = draw(st.sampled_from(["torch", "qkv"]))
    return _case(fields, (LaidOut((draw(st.integers(1, 8)), embed), "LC"),))


@st.composite
def shifted_window_attention_cases(draw: st.DrawFn) -> OpCase:
    """Windows from 1 to 4 along each axis, shifted or not, on maps from smaller than one window
    to a few windows, of sizes that do and do not divide."""
    heads = draw(st.integers(1, 3))
    channels = heads * draw(st.integers(1, 3))
    window = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    shift = (draw(st.integers(0, window[0] - 1)), draw(st.integers(0, window[1] - 1)))
    fields: dict[str, Any] = {
        "num_heads": heads,
        "window_size": _pair_field(draw, window),
        "qkv_bias": draw(st.booleans()),
        "proj_bias": draw(st.booleans()),
        "attention_dropout": draw(st.floats(0, 0.5)),
        "dropout": draw(st.floats(0, 0.5)),
    }
    if any(shift) or draw(st.booleans()):
        fields["shift_size"] = _pair_field(draw, shift)
    sizes = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    return _case(fields, (LaidOut((*sizes, channels), "HWC"),))


@st.composite
def patch_merging_cases(draw: st.DrawFn) -> OpCase:
    sizes = (draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 4)))
    return _case({}, (LaidOut(sizes, "HWC"),))


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "permute": permute_cases(),
    "transpose": transpose_cases(),
    "reshape": reshape_cases(),
    "view": reshape_cases(),
    "select": select_cases(),
    "slice": slice_cases(),
    "layer_norm": layer_norm_cases(),
    "parameter": parameter_cases(),
    "multihead_attention": multihead_attention_cases(),
    "shifted_window_attention": shifted_window_attention_cases(),
    "patch_merging": patch_merging_cases(),
}


# -- references ---------------------------------------------------------------------------------


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Along the last axis, by its definition."""
    import torch

    exp = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return exp / exp.sum(dim=-1, keepdim=True)


def _affine(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x W^T + b by an explicit product."""
    y = x @ weight.T
    return y if bias is None else y + bias


def permute(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    """Each axis named by a letter; the output names them in `dims`' order."""
    import torch

    letters = "abcdefg"[: x.dim()]
    return torch.einsum(f"{letters}->{''.join(letters[dim] for dim in op.dims)}", x)


def transpose(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    import torch

    letters = list("abcdefg"[: x.dim()])
    swapped = letters.copy()
    swapped[op.dim0], swapped[op.dim1] = letters[op.dim1], letters[op.dim0]
    return torch.einsum(f"{''.join(letters)}->{''.join(swapped)}", x)


def reshape(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    """The elements of each sample in order, under the sizes asked for, -1 the rest."""
    elements = math.prod(x.shape[1:])
    given = math.prod(size for size in op.shape if size != -1)
    sizes = [elements // given if size == -1 else size for size in op.shape]
    return x.flatten(1).unflatten(1, sizes)


def select(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    return x[(slice(None),) * op.dim + (op.index,)]


def slice_(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    """Python's slice: what the op promises, negative ends counted from the end."""
    return x[(slice(None),) * op.dim + (slice(op.start, op.end),)]


def layer_norm(op: Any, module: Any, x: torch.Tensor, *, layouts: list[str]) -> torch.Tensor:
    """Mean and biased variance by hand, over the last `axes` axes when the features are last
    ((F,), (L, C), (H, W, C)), else over the channels of (N, C, *positions); then the scale and
    shift per normalised element."""
    features_last = layouts[0][-1] in "CF"
    dims = tuple(range(x.dim() - op.axes, x.dim())) if features_last else (1,)
    count = math.prod(x.shape[dim] for dim in dims)
    centred = x - x.sum(dim=dims, keepdim=True) / count
    variance = (centred * centred).sum(dim=dims, keepdim=True) / count
    y = centred / (variance + op.eps).sqrt()
    assert (module.weight is not None) == op.elementwise_affine
    if not op.elementwise_affine:
        return y
    assert (module.bias is not None) == op.bias
    # one weight per normalised element: the last axes, or the channels of (N, C, *positions)
    shape = [x.shape[dim] if dim in dims else 1 for dim in range(x.dim())]
    y = y * module.weight.reshape(shape)
    return y + module.bias.reshape(shape) if op.bias else y


def parameter(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    """The tensor as one per sample: its leading 1 taken as the batch axis when it has one axis
    more than the sample, else 1s in front up to the sample's rank, as broadcasting reads it."""
    tensor = module.tensor
    assert tuple(tensor.shape) == op.shape
    rank = x.dim() - 1
    per_sample = tensor[0] if tensor.dim() == rank + 1 else tensor
    per_sample = per_sample.reshape((1,) * (rank - per_sample.dim()) + tuple(per_sample.shape))
    return per_sample.unsqueeze(0).repeat(x.shape[0], *(1,) * rank)


def multihead_attention(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention per head by explicit products, from the module's packed
    query, key and value projection and its output projection."""
    batch, length, embed = x.shape
    heads = op.num_heads
    size = embed // heads
    if op.projections == "qkv":  # the same projections as two linear layers
        packed, packed_bias = module.qkv.weight, module.qkv.bias
        output_weight, output_bias = module.proj.weight, module.proj.bias
    else:
        packed, packed_bias = module.in_proj_weight, module.in_proj_bias
        output_weight, output_bias = module.out_proj.weight, module.out_proj.bias
    assert (packed_bias is not None) == op.bias
    weights = packed.split(embed)
    biases = packed_bias.split(embed) if op.bias else (None,) * 3
    # (N, heads, L, head size) each
    query, key, value = (
        _affine(x, weight, bias).reshape(batch, length, heads, size).transpose(1, 2)
        for weight, bias in zip(weights, biases, strict=True)
    )
    attention = _softmax(query @ key.transpose(-2, -1) / math.sqrt(size))
    mixed = (attention @ value).transpose(1, 2).reshape(batch, length, embed)
    return _affine(mixed, output_weight, output_bias)


def shifted_window_attention(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
    """torchvision's semantics, window by window: pad right and bottom to whole windows; no
    shift along an axis whose window holds the padded map; read the map rolled by -shift;
    attend within each window with the relative position bias, -100 between tokens of which
    one was rolled across the map's edge and the other not; roll back and crop."""
    import torch

    batch, height, width, channels = x.shape
    (rows, columns), heads = op.window_size, op.num_heads
    size = channels // heads
    padded_sizes = (-(-height // rows) * rows, -(-width // columns) * columns)
    shifts = [
        0 if window >= padded else shift
        for window, padded, shift in zip(op.window_size, padded_sizes, op.shift_size, strict=True)
    ]
    padded = x.new_zeros(batch, *padded_sizes, channels)
    padded[:, :height, :width] = x
    # rolled by -shift: rolled position r holds padded position r + shift (modulo the size)
    source_rows = (torch.arange(padded_sizes[0]) + shifts[0]) % padded_sizes[0]
    source_columns = (torch.arange(padded_sizes[1]) + shifts[1]) % padded_sizes[1]
    rolled = padded[:, source_rows][:, :, source_columns]

    cells = [(row, column) for row in range(rows) for column in range(columns)]
    table = module.relative_position_bias_table  # ((2 rows - 1) (2 columns - 1), heads)
    offsets = torch.tensor(
        [
            [(qr - kr + rows - 1) * (2 * columns - 1) + (qc - kc + columns - 1) for kr, kc in cells]
            for qr, qc in cells
        ]
    )
    position_bias = table[offsets].permute(2, 0, 1)  # (heads, query, key)
    assert (module.qkv.bias is not None) == op.qkv_bias
    assert (module.proj.bias is not None) == op.proj_bias
    weights = module.qkv.weight.split(channels)
    biases = module.qkv.bias.split(channels) if op.qkv_bias else (None,) * 3

    attended = torch.zeros_like(rolled)
    for top in range(0, padded_sizes[0], rows):
        for left in range(0, padded_sizes[1], columns):
            tokens = rolled[:, top : top + rows, left : left + columns].reshape(batch, -1, channels)
            query, key, value = (
                _affine(tokens, weight, bias).reshape(batch, -1, heads, size).transpose(1, 2)
                for weight, bias in zip(weights, biases, strict=True)
            )
            # which tokens the roll brought across the bottom or right edge
            wrapped = [
                (
                    top + row >= padded_sizes[0] - shifts[0],
                    left + column >= padded_sizes[1] - shifts[1],
                )
                for row, column in cells
            ]
            mask = torch.tensor(
                [[0.0 if mine == theirs else -100.0 for theirs in wrapped] for mine in wrapped],
                dtype=x.dtype,
            )
            scores = (query * size**-0.5) @ key.transpose(-2, -1) + position_bias + mask
            mixed = (_softmax(scores) @ value).transpose(1, 2).reshape(batch, -1, channels)
            projected = _affine(mixed, module.proj.weight, module.proj.bias)
            attended[:, top : top + rows, left : left + columns] = projected.reshape(
                batch, rows, columns, channels
            )
    # rolled back: padded position p is rolled position p - shift
    back_rows = (torch.arange(padded_sizes[0]) - shifts[0]) % padded_sizes[0]
    back_columns = (torch.arange(padded_sizes[1]) - shifts[1]) % padded_sizes[1]
    return attended[:, back_rows][:, :, back_columns][:, :height, :width]


def patch_merging(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
    """torchvision's order: x0 = [0::2, 0::2], x1 = [1::2, 0::2], x2 = [0::2, 1::2],
    x3 = [1::2, 1::2] side by side, an odd side padded with zeros first."""
    batch, height, width, channels = x.shape
    padded = x.new_zeros(batch, height + height % 2, width + width % 2, channels)
    padded[:, :height, :width] = x
    merged = x.new_empty(batch, padded.shape[1] // 2, padded.shape[2] // 2, 4 * channels)
    for corner, (row, column) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        merged[..., corner * channels : (corner + 1) * channels] = padded[:, row::2, column::2]
    return merged


def references() -> dict[str, Any]:
    return {
        "permute": permute,
        "transpose": transpose,
        "reshape": reshape,
        "view": reshape,
        "select": select,
        "slice": slice_,
        "layer_norm": layer_norm,
        "parameter": parameter,
        "multihead_attention": multihead_attention,
        "shifted_window_attention": shifted_window_attention,
        "patch_merging": patch_merging,
    }
