"""Torch modules of Swin's window attention and patch merging; imports torch, so only lowerings
import it. Like torch_modules, each is self-contained: generated source copies it into its file.
"""

from __future__ import annotations

import torch
from torch import nn


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

    #: Pairs of tokens in a window up to which the index is worked out on the CPU.
    SMALL_INDEX = 1 << 20

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
        self.make_position_bias()
        rows, columns = window_size
        # for each pair of tokens in a window, the row of the table for their offset; worked
        # out on the CPU where it is small, as under a meta device context each step would
        # import torch's refs (a second), and on the module's device where it is large
        device = self.qkv.weight.device
        small = (rows * columns) ** 2 <= self.SMALL_INDEX
        where = torch.device("cpu") if small else device
        steps = (torch.arange(rows, device=where), torch.arange(columns, device=where))
        grid = torch.stack(torch.meshgrid(*steps, indexing="ij")).flatten(1)
        offset = (grid[:, :, None] - grid[:, None, :]).permute(1, 2, 0)
        index = (offset[..., 0] + rows - 1) * (2 * columns - 1) + offset[..., 1] + columns - 1
        self.register_buffer("relative_position_index", index.flatten().to(device))

    def make_position_bias(self) -> None:
        """A learned bias per relative offset in a window and per head."""
        rows, columns = self.window_size
        offsets = (2 * rows - 1) * (2 * columns - 1)
        table = torch.zeros(offsets, self.num_heads)
        self.relative_position_bias_table = nn.Parameter(table)
        if not table.is_meta:  # built only for its shapes, it needs no values
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def offset_table(self) -> torch.Tensor:
        """(offsets, heads): the bias of each relative offset for each head."""
        return self.relative_position_bias_table

    def position_bias(self) -> torch.Tensor:
        """(1, heads, tokens, tokens): the bias between each pair of tokens of a window."""
        tokens = self.window_size[0] * self.window_size[1]
        index: torch.Tensor = self.relative_position_index  # type: ignore[assignment]
        bias = self.offset_table()[index].view(tokens, tokens, -1)
        return bias.permute(2, 0, 1).contiguous().unsqueeze(0)

    def projection_bias(self) -> torch.Tensor | None:
        return self.qkv.bias

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """(windows, heads, tokens, tokens): scaled dot products of queries and keys."""
        q = q * (q.shape[-1] ** -0.5)
        return q.matmul(k.transpose(-2, -1))

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
        qkv = nn.functional.linear(x, self.qkv.weight, self.projection_bias())
        qkv = qkv.reshape(x.size(0), tokens, 3, heads, channels // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        scores = self.scores(q, k) + self.position_bias()
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


class ShiftedWindowAttentionV2(ShiftedWindowAttention):
    """Swin V2's window attention: cosine similarity of queries and keys times a learned
    scale per head, and a position bias that a small MLP computes from log-spaced
    offsets (16 * sigmoid); the keys take no bias. The state_dict is torchvision's
    ShiftedWindowAttentionV2's."""

    #: Hidden width of the MLP that makes the position bias.
    HIDDEN = 512
    #: log(100), the cap of the learned scale's log (a literal: the generated file imports
    #: only torch)
    MAX_LOG_SCALE = 4.605170185988092

    def make_position_bias(self) -> None:
        rows, columns = self.window_size
        device, cpu = self.qkv.weight.device, torch.device("cpu")  # on the CPU: see __init__
        scale = torch.log(10 * torch.ones((self.num_heads, 1, 1), device=cpu))
        self.logit_scale = nn.Parameter(scale.to(device))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, self.HIDDEN, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(self.HIDDEN, self.num_heads, bias=False),
        )
        if self.qkv_bias and not self.qkv.weight.is_meta:
            with torch.no_grad():
                self.qkv.bias[self.dim : 2 * self.dim].zero_()
        steps = [
            torch.arange(-(size - 1), size, dtype=torch.float32, device=cpu)
            for size in (rows, columns)
        ]
        table = torch.stack(torch.meshgrid(steps, indexing="ij")).permute(1, 2, 0)
        table = table.contiguous().unsqueeze(0)
        # offsets to [-8, 8], then log-spaced, so larger windows share the smaller ones' range
        table[..., 0] /= max(rows - 1, 1)
        table[..., 1] /= max(columns - 1, 1)
        table *= 8
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
        self.register_buffer("relative_coords_table", table.to(device))

    def offset_table(self) -> torch.Tensor:
        coordinates: torch.Tensor = self.relative_coords_table  # type: ignore[assignment]
        table: torch.Tensor = self.cpb_mlp(coordinates)
        return table.view(-1, self.num_heads)

    def position_bias(self) -> torch.Tensor:
        return 16 * torch.sigmoid(super().position_bias())

    def projection_bias(self) -> torch.Tensor | None:
        if self.qkv.bias is None:
            return None
        bias = self.qkv.bias.clone()
        bias[self.dim : 2 * self.dim].zero_()  # keys are compared by angle: no bias
        return bias

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        normalize = nn.functional.normalize
        cosine = normalize(q, dim=-1) @ normalize(k, dim=-1).transpose(-2, -1)
        return cosine * torch.clamp(self.logit_scale, max=self.MAX_LOG_SCALE).exp()
