"""ViT-B/16 and Swin-T written by hand for the benchmarks (torch only, no archspec, no
torchvision), with torchvision's module names, so the compiled zoo specs' state_dicts load into
them with strict=True (ConvNeXt-T is in `reference_convnext.py`). They compute what torchvision's
models compute, op for op, so a timing against the compiled spec measures the compiler, not a
different algorithm."""

from __future__ import annotations

from collections import OrderedDict

import torch
from reference_models import StochasticDepth
from torch import Tensor, nn
from torch.nn import functional as F


class Permute(nn.Module):
    """A view with the axes reordered; a module so that it can sit in an nn.Sequential."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(self.dims)


class MLP(nn.Sequential):
    """Linear, GELU, dropout, linear, dropout: the transformers' MLP, keys `0` and `3`."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


# -- ViT-B/16 ------------------------------------------------------------------------------------


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attention(ln_1(x)), then x + mlp(ln_2(x)). (N, L, D)."""

    def __init__(self, heads: int, dim: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, mlp_dim, dropout)

    def forward(self, input: Tensor) -> Tensor:
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Position embedding, then the blocks, then a final layer norm. (N, L, D) -> (N, L, D)."""

    def __init__(self, length: int, layers: int, heads: int, dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        blocks = OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(heads, dim, mlp_dim)) for i in range(layers)
        )
        self.layers = nn.Sequential(blocks)
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """ViT with torchvision's module names (conv_proj, class_token, encoder, heads)."""

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        layers: int = 12,
        heads: int = 12,
        dim: int = 768,
        mlp_dim: int = 3072,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        length = (image_size // patch_size) ** 2 + 1
        self.encoder = Encoder(length, layers, heads, dim, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(dim, num_classes)))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes), from the class token's features."""
        x = self.conv_proj(x).flatten(2).permute(0, 2, 1)  # (N, patches, D)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


# -- Swin-T --------------------------------------------------------------------------------------


def relative_position_index(rows: int, columns: int) -> Tensor:
    """(rows * columns) ** 2 rows of the bias table: one per offset between two window tokens."""
    coords = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(columns), indexing="ij"))
    coords = coords.flatten(1)  # (2, tokens)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (tokens, tokens, 2)
    return (
        (offsets[..., 0] + rows - 1) * (2 * columns - 1) + offsets[..., 1] + columns - 1
    ).flatten()


def shift_mask(
    height: int, width: int, window: int, shift: tuple[int, int], like: Tensor
) -> Tensor:
    """(windows, tokens, tokens): -100 between two tokens of a window that the roll brought
    together from different regions of the map, 0 elsewhere."""
    region = like.new_zeros((height, width))
    rows = (slice(0, -window), slice(-window, -shift[0]), slice(-shift[0], None))
    columns = (slice(0, -window), slice(-window, -shift[1]), slice(-shift[1], None))
    for label, (r, c) in enumerate((r, c) for r in rows for c in columns):
        region[r, c] = label
    region = region.view(height // window, window, width // window, window)
    region = region.permute(0, 2, 1, 3).reshape(-1, window * window)
    apart = region.unsqueeze(1) - region.unsqueeze(2)
    return apart.masked_fill(apart != 0, -100.0).masked_fill(apart == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows of `window` x `window` tokens, with a learned
    bias per relative position and head, the map rolled by -shift first (torchvision's
    ShiftedWindowAttention). (N, H, W, C) -> (N, H, W, C)."""

    def __init__(self, dim: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window, window))

    def position_bias(self) -> Tensor:
        """(1, heads, tokens, tokens), from the table."""
        tokens = self.window**2
        index = self.relative_position_index
        bias = self.relative_position_bias_table[index].view(tokens, tokens, -1)
        return bias.permute(2, 0, 1).contiguous().unsqueeze(0)

    def forward(self, x: Tensor) -> Tensor:
        n, height, width, channels = x.shape
        w, heads = self.window, self.heads
        x = F.pad(x, (0, 0, 0, -width % w, 0, -height % w))
        padded_height, padded_width = x.shape[1], x.shape[2]
        # a window as large as the map sees all of it: no shift along that axis
        shift = (self.shift if w < padded_height else 0, self.shift if w < padded_width else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        across, down = padded_width // w, padded_height // w
        # windows: (N * windows, tokens, C)
        x = x.view(n, down, w, across, w, channels).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(n * down * across, w * w, channels)
        q, k, v = self.qkv(x).reshape(x.shape[0], w * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q = q * (channels // heads) ** -0.5
        attention = q.matmul(k.transpose(-2, -1)) + self.position_bias()
        if any(shift):
            mask = shift_mask(padded_height, padded_width, w, shift, x)
            attention = attention.view(n, down * across, heads, w * w, w * w)
            attention = (attention + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, w * w, w * w)
        attention = attention.softmax(dim=-1)
        x = attention.matmul(v).transpose(1, 2).reshape(x.shape[0], w * w, channels)
        x = self.proj(x)
        # back to the map
        x = x.view(n, down, across, w, w, channels).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(n, padded_height, padded_width, channels)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :height, :width, :].contiguous()


class SwinBlock(nn.Module):
    """x + attention(norm1(x)), then x + mlp(norm2(x)), each branch with stochastic depth."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, p: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window, shift)
        self.stochastic_depth = StochasticDepth(p)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, 4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Each 2x2 patch's four vectors side by side, normalised, then reduced to twice the
    channels: (N, H, W, C) -> (N, H/2, W/2, 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        corners = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(corners, dim=-1)))


class SwinTransformer(nn.Module):
    """Swin with torchvision's module names (features, norm, head)."""

    def __init__(
        self,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        heads: tuple[int, ...] = (3, 6, 12, 24),
        window: int = 7,
        stochastic_depth_prob: float = 0.2,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(3, embed_dim, 4, 4), Permute(0, 2, 3, 1), nn.LayerNorm(embed_dim)
        )
        layers: list[nn.Module] = [stem]
        block_id, total = 0, sum(depths)
        for stage, (depth, stage_heads) in enumerate(zip(depths, heads, strict=True)):
            dim = embed_dim * 2**stage
            blocks = []
            for i in range(depth):
                p = stochastic_depth_prob * block_id / (total - 1)
                blocks.append(
                    SwinBlock(dim, stage_heads, window, 0 if i % 2 == 0 else window // 2, p)
                )
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(depths) - 1:
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        x = self.norm(self.features(x)).permute(0, 3, 1, 2)
        return self.head(self.avgpool(x).flatten(1))


def vit_b_16(num_classes: int = 1000) -> VisionTransformer:
    """torchvision.models.vit_b_16(weights=None), same module names and parameters."""
    return VisionTransformer(num_classes=num_classes)


def swin_t(num_classes: int = 1000) -> SwinTransformer:
    """torchvision.models.swin_t(weights=None), same module names and parameters."""
    return SwinTransformer(num_classes=num_classes)
