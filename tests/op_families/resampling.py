"""Strategies and references of the resampling family:
upsample, conv_transpose2d, pixel_shuffle, pixel_unshuffle.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

import archspec.ops.resample  # noqa: F401  (registers upsample, conv_transpose2d, pixel_(un)shuffle)

if TYPE_CHECKING:
    from strategies import OpCase

Shape = tuple[int, ...]


def _helpers() -> Any:
    """tests/strategies.py, imported when a case is first drawn: it imports this package as it
    finishes loading, so importing it here first (as test_op_oracles does) would be circular."""
    import strategies

    return strategies


def _case(fields: dict[str, Any], inputs: tuple[Shape, ...]) -> OpCase:
    return _helpers().OpCase(fields, inputs)


def _per_axis(draw: st.DrawFn, low: int, high: int) -> int | list[int]:
    """A per-axis field as a spec writes it: one int, or [h, w]."""
    helpers = _helpers()
    return helpers._pair_field(draw, helpers._pair(draw, low, high))


@st.composite
def upsample_cases(draw: st.DrawFn) -> OpCase:
    """Every sizing: integer and fractional scale factors (below 1 too), sizes, and a second
    input to match; sizes that divide and that do not, so exact windows and bounds both come up."""
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    fields: dict[str, Any] = {"mode": mode}
    if mode == "bilinear" and draw(st.booleans()):
        fields["align_corners"] = draw(st.booleans())
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    sizing = draw(st.sampled_from(["scale_factor", "fraction", "size", "like"]))
    if sizing == "scale_factor":
        fields["scale_factor"] = _per_axis(draw, 1, 4)
    elif sizing == "fraction":
        factors = [draw(st.sampled_from([0.5, 0.75, 1.5, 2.5])) for _ in "hw"]
        if draw(st.booleans()):
            factors = [draw(st.floats(0.2, 3.5)) for _ in "hw"]
        fields["scale_factor"] = factors[0] if draw(st.booleans()) else factors
        if isinstance(fields["scale_factor"], float):
            factors = [factors[0]] * 2
        # at least one row and column out: floor(H * s) >= 1
        spatial = [
            max(size, math.ceil(1 / factor))
            for size, factor in zip(shape[1:], factors, strict=True)
        ]
        shape = (shape[0], *spatial)
    elif sizing == "size":
        fields["size"] = _per_axis(draw, 1, 16)
    else:
        reference = (draw(st.integers(1, 4)), draw(st.integers(1, 16)), draw(st.integers(1, 16)))
        return _case(fields, (shape, reference))
    return _case(fields, (shape,))


@st.composite
def conv_transpose2d_cases(draw: st.DrawFn) -> OpCase:
    """Groups, dilation, output_padding within torch's rule, and padding up to what the output
    allows (beyond the kernel's reach too)."""
    helpers = _helpers()
    groups = draw(st.integers(1, 3))
    kernel, stride, dilation = (helpers._pair(draw, 1, high) for high in (4, 3, 2))
    spatial = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    extra = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    # at least one output row: (H - 1)s - 2p + d(k - 1) + output_padding + 1 >= 1
    limits = [
        ((h - 1) * s + d * (k - 1) + e) // 2
        for h, s, d, k, e in zip(spatial, stride, dilation, kernel, extra, strict=True)
    ]
    padding = tuple(draw(st.integers(0, min(limit, 4))) for limit in limits)
    fields = {
        "out_channels": groups * draw(st.integers(1, 3)),
        "kernel": helpers._pair_field(draw, kernel),
        "stride": helpers._pair_field(draw, stride),
        "padding": helpers._pair_field(draw, padding),
        "output_padding": helpers._pair_field(draw, extra),
        "groups": groups,
        "bias": draw(st.booleans()),
        "dilation": helpers._pair_field(draw, dilation),
    }
    return _case(fields, ((groups * draw(st.integers(1, 3)), *spatial),))


@st.composite
def pixel_shuffle_cases(draw: st.DrawFn) -> OpCase:
    r = draw(st.integers(1, 3))
    shape = (r * r * draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return _case({"upscale_factor": r}, (shape,))


@st.composite
def pixel_unshuffle_cases(draw: st.DrawFn) -> OpCase:
    r = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), r * draw(st.integers(1, 4)), r * draw(st.integers(1, 4)))
    return _case({"downscale_factor": r}, (shape,))


STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "upsample": upsample_cases(),
    "conv_transpose2d": conv_transpose2d_cases(),
    "pixel_shuffle": pixel_shuffle_cases(),
    "pixel_unshuffle": pixel_unshuffle_cases(),
}


def references() -> dict[str, Any]:
    """Each computes the op from its fields by formula, never through the lowering's function or
    module (only its weights)."""
    import torch

    def nearest_rows(size: int, out: int) -> torch.Tensor:
        """torch's source row of each output row: floor(o * size/out), as torch computes it (the
        ratio and product in float32), except for copies and x2, which it shifts."""
        rows = torch.arange(out)
        if out == size:
            return rows
        if out == 2 * size:
            return rows // 2
        ratio = torch.tensor(size, dtype=torch.float32) / out
        return (rows.to(torch.float32) * ratio).floor().long().clamp(max=size - 1)

    def linear_weights(size: int, out: int, align_corners: bool) -> torch.Tensor:
        """(out, size): output row o weighs rows floor(c) and the next by 1 - t and t, t the
        fraction of c, for c = (o + 1/2) size/out - 1/2 (at least 0) or o (size-1)/(out-1)."""
        weights = torch.zeros(out, size, dtype=torch.float64)
        for o in range(out):
            if align_corners:
                c = o * (size - 1) / (out - 1) if out > 1 else 0.0
            else:
                c = max(0.0, (o + 0.5) * size / out - 0.5)
            first = min(math.floor(c), size - 1)
            t = min(max(c - first, 0.0), 1.0)
            weights[o, first] += 1 - t
            weights[o, min(first + 1, size - 1)] += t
        return weights

    def upsample(op: Any, lowered: Any, x: torch.Tensor, *like: torch.Tensor) -> torch.Tensor:
        shapes = [tuple(t.shape[1:]) for t in (x, *like)]
        (height, width), out = x.shape[2:], op.output_size(shapes)
        if op.mode == "nearest":
            return x[:, :, nearest_rows(height, out[0])][:, :, :, nearest_rows(width, out[1])]
        rows = linear_weights(height, out[0], op.align_corners).to(x.dtype)
        cols = linear_weights(width, out[1], op.align_corners).to(x.dtype)
        return torch.einsum("oh,nchw,pw->ncop", rows, x, cols)

    def conv_transpose2d(op: Any, module: Any, x: torch.Tensor) -> torch.Tensor:
        """Each input position scatters input x weight to o = i s - p + k d, tap by tap."""
        assert module.weight.shape == (x.shape[1], op.out_channels // op.groups, *op.kernel)
        assert (module.bias is not None) == op.bias
        (s_h, s_w), (d_h, d_w) = op.stride, op.dilation
        height, width = x.shape[2:]
        full = [
            (size - 1) * s + d * (k - 1) + 1 + extra
            for size, s, d, k, extra in zip(
                (height, width), op.stride, op.dilation, op.kernel, op.output_padding, strict=True
            )
        ]
        y = x.new_zeros(x.shape[0], op.out_channels, *full)
        group_in, group_out = x.shape[1] // op.groups, op.out_channels // op.groups
        for g in range(op.groups):
            inputs = x[:, g * group_in : (g + 1) * group_in]
            weight = module.weight[g * group_in : (g + 1) * group_in]
            for k_h in range(op.kernel[0]):
                for k_w in range(op.kernel[1]):
                    rows = slice(k_h * d_h, k_h * d_h + (height - 1) * s_h + 1, s_h)
                    cols = slice(k_w * d_w, k_w * d_w + (width - 1) * s_w + 1, s_w)
                    products = torch.einsum("nihw,io->nohw", inputs, weight[:, :, k_h, k_w])
                    y[:, g * group_out : (g + 1) * group_out, rows, cols] += products
        (p_h, p_w), out = op.padding, op.output_shape([tuple(x.shape[1:])])
        y = y[:, :, p_h : p_h + out[1], p_w : p_w + out[2]]
        return y + module.bias[None, :, None, None] if op.bias else y

    def pixel_shuffle(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """y[c, h, w] = x[c r^2 + (h mod r) r + (w mod r), h // r, w // r]."""
        r = op.upscale_factor
        channels, height, width = x.shape[1] // (r * r), x.shape[2] * r, x.shape[3] * r
        c = torch.arange(channels)[:, None, None]
        h = torch.arange(height)[None, :, None]
        w = torch.arange(width)[None, None, :]
        return x[:, c * r * r + (h % r) * r + w % r, h // r, w // r]

    def pixel_unshuffle(op: Any, lowered: Any, x: torch.Tensor) -> torch.Tensor:
        """y[c r^2 + i r + j, h, w] = x[c, h r + i, w r + j]."""
        r = op.downscale_factor
        channels, height, width = x.shape[1] * r * r, x.shape[2] // r, x.shape[3] // r
        k = torch.arange(channels)[:, None, None]
        h = torch.arange(height)[None, :, None]
        w = torch.arange(width)[None, None, :]
        return x[:, k // (r * r), h * r + (k % (r * r)) // r, w * r + k % r]

    return {
        "upsample": upsample,
        "conv_transpose2d": conv_transpose2d,
        "pixel_shuffle": pixel_shuffle,
        "pixel_unshuffle": pixel_unshuffle,
    }
