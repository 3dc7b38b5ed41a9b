"""Torch modules and functions of the ops torch.nn lacks; imports torch, so only lowerings
import it.

Each is self-contained (torch only): generated source copies it into its file, whose lines
keep to 88 columns, so these do too.
"""

from __future__ import annotations

import torch
from torch import nn

#: The modules whose classes and functions generated source copies instead of importing.
HELPER_MODULES = ("archspec.ops.torch_modules", "archspec.ops.torch_windows")


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


class PackedSelfAttention(nn.Module):
    """Self-attention with its projections as two linear layers, `qkv` (E -> 3E) and
    `proj` (E -> E), as timm's ViT and many others name them: (N, L, E) -> (N, L, E).
    The same function as SelfAttention, under other state_dict keys."""

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.bias = bias
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, embed = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(batch, length, 3, heads, embed // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        x = nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        output: torch.Tensor = self.proj(x.transpose(1, 2).reshape(batch, length, embed))
        return output
