"""Torch modules and functions of the ops torch.nn lacks; imports torch, so only lowerings
import it.

Each is self-contained (torch only): generated source copies it into its file, whose lines
keep to 88 columns, so these do too.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth without torchvision: (N, ...) -> (N, ...).

    In training, drops the whole input of a sample ("row") or of the batch ("batch")
    with probability p and scales what survives by 1 / (1 - p), so the expectation is
    the input; in eval mode, and at p = 0, the identity. It keeps no tensors, so its
    state_dict is empty.
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"stochastic depth p must be in [0, 1), got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"stochastic depth mode is 'row' or 'batch', got {mode!r}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        # one draw per sample, or one for the batch, broadcast over the other axes
        draws = x.shape[0] if self.mode == "row" else 1
        size = [draws] + [1] * (x.dim() - 1)
        keep = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        return x * keep.div_(survival)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


def upsample_like(
    x: torch.Tensor, reference: torch.Tensor, mode: str, align_corners: bool | None
) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H_ref, W_ref): `x` resized to the (H, W) of `reference`,
    whose values are never read (FPN's and U-Net's upsampling to a skip's size)."""
    resize = torch.nn.functional.interpolate
    return resize(x, size=reference.shape[-2:], mode=mode, align_corners=align_corners)


def centre_crop(
    x: torch.Tensor, reference: torch.Tensor, starts: list[int], lengths: list[int]
) -> torch.Tensor:
    """`x` narrowed to `lengths` from `starts` along its spatial axes: the crop to a
    second input, whose size was known when the network was built, so it is not read."""
    for axis, (start, length) in enumerate(zip(starts, lengths, strict=True), start=2):
        x = x.narrow(axis, start, length)
    return x


def batch_expand(tensor: torch.Tensor, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """A learned tensor as one per sample of `x`'s batch: (N, *sizes), a view that
    copies nothing (ViT's class token before it joins the patch tokens)."""
    return tensor.expand(x.shape[0], *sizes)


class LayerNormOverChannels(nn.LayerNorm):
    """nn.LayerNorm of the channels of a channels-first map: (N, C, *positions) ->
    the same, each position normalised over its C values (torchvision's LayerNorm2d).

    It moves the channels last and back, so its state_dict is nn.LayerNorm's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(1, -1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention with the tokens as query, key and value: (N, L, E) ->
    (N, L, E), as torchvision's ViT calls it (need_weights=False, so torch may take
    its fused path); the state_dict is nn.MultiheadAttention's."""

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__(embed_dim, num_heads, dropout, bias, batch_first=True)
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        output, _ = super().forward(x, x, x, need_weights=False)
        return output


def patch_merge(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, ceil(H/2), ceil(W/2), 4C): each 2x2 patch's four vectors side
    by side, in Swin's order (top-left, bottom-left, top-right, bottom-right); an odd
    side is padded with zeros first."""
    height, width = x.shape[1], x.shape[2]
    x = nn.functional.pad(x, (0, 0, 0, width % 2, 0, height % 2))
    corners = [x[:, row::2, column::2, :] for column in (0, 1) for row in (0, 1)]
    return torch.cat(corners, dim=-1)


class ShiftedWindowAttention(nn.Module):
    """Swin's window attention: (N, H, W, C) -> (N, H, W, C). Each token attends to the
    tokens of its window (window_size, after padding H and W to whole windows), with a
    learned bias per relative position and head; with a shift, the map is rolled by
    -shift first and back after, and tokens that the roll brought together from apart
    are masked off. The state_dict is torchvision's ShiftedWindowAttention's.
    """

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.shift_size = shift_size
        self.num_heads = num_heads
        self.qkv_bias = qkv_bias
        self.proj_bias = proj_bias
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        rows, columns = window_size
        offsets = (2 * rows - 1) * (2 * columns - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(offsets, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # for each pair of tokens in a window, the row of the table for their offset
        grid = torch.stack(
            torch.meshgrid(torch.arange(rows), torch.arange(columns), indexing="ij")
        ).flatten(1)
        offset = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)
        index = (offset[..., 0] + rows - 1) * (2 * columns - 1) + offset[..., 1] + columns - 1
        self.register_buffer("relative_position_index", index.flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        rows, columns = self.window_size
        x = nn.functional.pad(
            x, (0, 0, 0, (columns - width % columns) % columns, 0, (rows - height % rows) % rows)
        )
        padded_height, padded_width = x.shape[1], x.shape[2]
        # a window as large as the map sees all of it: rolling would change nothing
        shift = [
            0 if window >= size else step
            for window, size, step in zip(
                self.window_size, (padded_height, padded_width), self.shift_size, strict=True
            )
        ]
        shifted = sum(shift) > 0
        if shifted:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        across, down = padded_width // columns, padded_height // rows
        windows = down * across
        tokens = rows * columns
        x = x.view(batch, down, rows, across, columns, channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch * windows, tokens, channels)
        heads = self.num_heads
        qkv = self.qkv(x).reshape(x.size(0), tokens, 3, heads, channels // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        q = q * (channels // heads) ** -0.5
        scores = q.matmul(k.transpose(-2, -1))
        index: torch.Tensor = self.relative_position_index  # type: ignore[assignment]
        bias = self.relative_position_bias_table[index]
        scores = scores + bias.view(tokens, tokens, -1).permute(2, 0, 1).unsqueeze(0)
        if shifted:
            scores = scores.view(batch, windows, heads, tokens, tokens)
            scores = scores + self.shift_mask(x, padded_height, padded_width, shift)
            scores = scores.view(-1, heads, tokens, tokens)
        attention = nn.functional.softmax(scores, dim=-1)
        attention = nn.functional.dropout(attention, self.attention_dropout, self.training)
        x = attention.matmul(v).transpose(1, 2).reshape(x.size(0), tokens, channels)
        x = nn.functional.dropout(self.proj(x), self.dropout, self.training)
        x = x.view(batch, down, across, rows, columns, channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_height, padded_width, channels)
        if shifted:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :height, :width, :].contiguous()

    def shift_mask(
        self, x: torch.Tensor, height: int, width: int, shift: list[int]
    ) -> torch.Tensor:
        """(1, windows, 1, tokens, tokens): -100 between tokens of one window that the
        roll brought from different regions of the map, 0 elsewhere."""
        rows, columns = self.window_size
        region = x.new_zeros((height, width))
        row_bands = ((0, -rows), (-rows, -shift[0]), (-shift[0], None))
        column_bands = ((0, -columns), (-columns, -shift[1]), (-shift[1], None))
        label = 0
        for top, bottom in row_bands:
            for left, right in column_bands:
                region[top:bottom, left:right] = label
                label += 1
        region = region.view(height // rows, rows, width // columns, columns)
        region = region.permute(0, 2, 1, 3).reshape(-1, rows * columns)
        apart = region.unsqueeze(1) - region.unsqueeze(2)
        mask = apart.masked_fill(apart != 0, -100.0).masked_fill(apart == 0, 0.0)
        return mask.unsqueeze(1).unsqueeze(0)
