"""Attention over tokens: global multi-head self-attention (ViT) and Swin's shifted windows,
with Swin's patch merging between its stages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from archspec.errors import ShapeError
from archspec.ops.base import (
    GLOBAL,
    Channels,
    NonNegativePair,
    Op,
    ParameterFree,
    PositivePair,
    Shape,
    Step,
    TorchCall,
    Window,
)
from archspec.ops.layouts import CHANNELS_LAST_MAP, TOKENS
from archspec.ops.registry import register

if TYPE_CHECKING:
    import torch

DropProbability = Annotated[float, Field(ge=0, lt=1)]
#: Per score: the exp, the sum and the divide of its softmax.
_SOFTMAX_FLOPS = 3
#: Tokens in one window at most: the module indexes every pair of them (Swin's are 49).
MAX_WINDOW_TOKENS = 1 << 20
#: Hidden width of Swin V2's position-bias MLP.
_BIAS_MLP_WIDTH = 512


def _heads_divide(op: str, heads: int, channels: int) -> None:
    if channels % heads:
        raise ShapeError(
            f"{op} splits the {channels} features into num_heads (={heads}) heads, which must "
            "divide them"
        )


@register
class MultiheadAttention(Op):
    """Self-attention of every token to every token: (L, E) -> (L, E), as torch's
    `nn.MultiheadAttention` (batch first) with the tokens as query, key and value; its
    state_dict keys are torch's (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`, ...), or
    with `projections: qkv` those of two linear layers (`qkv.weight`, `proj.weight`, ...)."""

    op: Literal["multihead_attention"] = "multihead_attention"
    arity = (1, 1)
    # the output projection's backward reads its input, not its output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = TOKENS
    runs_in_place = False
    num_heads: Channels
    dropout: DropProbability = 0.0  # on the attention weights, in training
    bias: bool = True
    #: How the projections are held: torch's `in_proj_weight` and `out_proj` ("torch",
    #: torchvision's ViT), or linear layers `qkv` and `proj` ("qkv", timm's ViT and most others).
    projections: Literal["torch", "qkv"] = "torch"

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _heads_divide(self.op, self.num_heads, shape[1])
        return shape

    def param_count(self, inputs: Sequence[Shape]) -> int:
        # the query, key, value and output projections: E x E each, and a bias of E each
        embed = inputs[0][1]
        return 4 * embed * embed + (4 * embed if self.bias else 0)

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the four projections (4 L E^2), then Q K^T and the weighted sum of V (L^2 E each)
        length, embed = inputs[0]
        return 4 * length * embed * embed + 2 * length * length * embed

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        length, embed = inputs[0]
        biases = 4 * length * embed if self.bias else 0
        scaling = length * embed  # q / sqrt(head size)
        softmax = _SOFTMAX_FLOPS * self.num_heads * length * length
        return 2 * self.macs(inputs, output) + biases + scaling + softmax

    def working_elements(self, inputs: Sequence[Shape], output: Shape) -> int:
        # the score map of each head (L x L) and the queries, keys and values
        length, embed = inputs[0]
        return self.num_heads * length * length + 3 * length * embed

    def window(self, inputs: Sequence[Shape]) -> Step:
        return GLOBAL  # every token weighs every other

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from archspec.ops import torch_modules

        embed = inputs[0][1]
        module_class: type[torch.nn.Module] = torch_modules.SelfAttention
        if self.projections == "qkv":
            module_class = torch_modules.PackedSelfAttention
        return module_class(embed, self.num_heads, self.dropout, self.bias)


@register
class ShiftedWindowAttention(Op):
    """Swin's window attention: (H, W, C) -> (H, W, C), each token attending to the tokens of
    its window of `window_size`, with a learned bias per relative position and head. A
    `shift_size` rolls the map first, so that windows straddle the previous block's borders
    (torchvision's ShiftedWindowAttention, with its state_dict keys). The map is padded to
    whole windows; a window as large as the map is not shifted."""

    op: Literal["shifted_window_attention"] = "shifted_window_attention"
    arity = (1, 1)
    # the output projection's backward reads its input, not its output
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = None
    takes_layout = CHANNELS_LAST_MAP
    runs_in_place = False
    num_heads: Channels
    window_size: PositivePair = (7, 7)
    shift_size: NonNegativePair = (0, 0)
    qkv_bias: bool = True
    proj_bias: bool = True
    attention_dropout: DropProbability = 0.0
    dropout: DropProbability = 0.0
    #: 2: Swin V2's cosine attention with a learned scale per head, and a position bias an MLP
    #: computes from the offsets (torchvision's ShiftedWindowAttentionV2).
    version: Literal[1, 2] = 1

    @model_validator(mode="after")
    def _shift_within_window(self) -> ShiftedWindowAttention:
        tokens = self.window_size[0] * self.window_size[1]
        if tokens > MAX_WINDOW_TOKENS:
            raise ValueError(
                f"window_size {list(self.window_size)} holds {tokens:,} tokens, over "
                f"{MAX_WINDOW_TOKENS:,}: the index of its token pairs could not be built"
            )
        for shift, window in zip(self.shift_size, self.window_size, strict=True):
            if shift >= window:
                raise ValueError(
                    f"shift_size {list(self.shift_size)} must be below window_size "
                    f"{list(self.window_size)} along each axis"
                )
        return self

    def _padded(self, shape: Shape) -> tuple[int, int]:
        """(H, W) padded up to whole windows."""
        return (
            -(-shape[0] // self.window_size[0]) * self.window_size[0],
            -(-shape[1] // self.window_size[1]) * self.window_size[1],
        )

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        (shape,) = inputs
        _heads_divide(self.op, self.num_heads, shape[2])
        return shape

    def warnings(self, inputs: Sequence[Shape]) -> list[str]:
        height, width = inputs[0][:2]
        if all(w <= size for w, size in zip(self.window_size, (height, width), strict=True)):
            return []
        padded = "x".join(map(str, self._padded(inputs[0])))
        return [
            f"window_size {list(self.window_size)} is larger than the {height}x{width} map, "
            f"which is padded to {padded} to fill it: attention then spans the padding too"
        ]

    def buffer_elements(self, inputs: Sequence[Shape]) -> int:
        # the table row of each pair of tokens in a window; V2 also keeps each offset's
        # coordinates
        rows, columns = self.window_size
        pairs = (rows * columns) ** 2
        return pairs + (2 * (2 * rows - 1) * (2 * columns - 1) if self.version == 2 else 0)

    def param_count(self, inputs: Sequence[Shape]) -> int:
        channels = inputs[0][2]
        qkv = 3 * channels * channels + (3 * channels if self.qkv_bias else 0)
        projection = channels * channels + (channels if self.proj_bias else 0)
        rows, columns = self.window_size
        if self.version == 2:  # a scale per head, and the bias MLP: 2 -> 512 -> heads
            hidden = _BIAS_MLP_WIDTH
            return qkv + projection + self.num_heads + 3 * hidden + hidden * self.num_heads
        table = (2 * rows - 1) * (2 * columns - 1) * self.num_heads
        return qkv + projection + table

    def macs(self, inputs: Sequence[Shape], output: Shape) -> int:
        # on the padded map of P tokens, windows of n: the projections (4 P C^2), then Q K^T
        # and the weighted sum of V within each window (P n C each)
        channels = inputs[0][2]
        height, width = self._padded(inputs[0])
        tokens = height * width
        window = self.window_size[0] * self.window_size[1]
        attention = 4 * tokens * channels * channels + 2 * tokens * window * channels
        return attention + self._bias_mlp_macs()

    def _bias_mlp_macs(self) -> int:
        """V2's bias MLP, run once per forward over the (2h - 1)(2w - 1) offsets."""
        if self.version == 1:
            return 0
        rows, columns = self.window_size
        offsets = (2 * rows - 1) * (2 * columns - 1)
        return offsets * (2 * _BIAS_MLP_WIDTH + _BIAS_MLP_WIDTH * self.num_heads)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        channels = inputs[0][2]
        height, width = self._padded(inputs[0])
        tokens = height * width
        window = self.window_size[0] * self.window_size[1]
        biases = tokens * channels * ((3 if self.qkv_bias else 0) + (1 if self.proj_bias else 0))
        scaling = tokens * channels
        # the position bias (and the mask, when shifted) added to each score, then softmax
        scores = self.num_heads * tokens * window
        return 2 * self.macs(inputs, output) + biases + scaling + (2 + _SOFTMAX_FLOPS) * scores

    def working_elements(self, inputs: Sequence[Shape], output: Shape) -> int:
        # every window's score map per head, and the queries, keys and values
        channels = inputs[0][2]
        height, width = self._padded(inputs[0])
        window = self.window_size[0] * self.window_size[1]
        return self.num_heads * height * width * window + 3 * height * width * channels

    def window(self, inputs: Sequence[Shape]) -> Step:
        # a token sees the window holding it, which starts anywhere from w - 1 tokens before
        # it to the token itself: a bound of 2w - 1 centred on it contains every such window
        sizes = inputs[0][:2]
        if all(w >= size for w, size in zip(self.window_size, sizes, strict=True)):
            return GLOBAL  # one window holds the whole map
        kernel = tuple(
            2 * min(w, size) - 1 for w, size in zip(self.window_size, sizes, strict=True)
        )
        return Window(kernel, padding=tuple((k - 1) // 2 for k in kernel))

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        from archspec.ops import torch_windows

        module_class = torch_windows.ShiftedWindowAttention
        if self.version == 2:
            module_class = torch_windows.ShiftedWindowAttentionV2
        return module_class(
            inputs[0][2],
            list(self.window_size),
            list(self.shift_size),
            self.num_heads,
            self.qkv_bias,
            self.proj_bias,
            self.attention_dropout,
            self.dropout,
        )


@register
class PatchMerging(ParameterFree, Op):
    """Swin's patch merging, before its norm and reduction: (H, W, C) -> (H/2, W/2, 4C), each
    2x2 patch's four feature vectors side by side (an odd side padded with zeros first)."""

    op: Literal["patch_merging"] = "patch_merging"
    arity = (1, 1)
    # a concatenation: its backward only slices the incoming gradient
    output_kept_for_backward = False
    output_is_input = False
    running_statistics = False
    drawing_symbol = None
    drawing_mark = "\N{DOWNWARDS ARROW}"
    takes_layout = CHANNELS_LAST_MAP
    runs_in_place = False

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        height, width, channels = inputs[0]
        return (-(-height // 2), -(-width // 2), 4 * channels)

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        # a copy: no arithmetic
        return 0

    def window(self, inputs: Sequence[Shape]) -> Step:
        return Window((2, 2), (2, 2))

    def to_torch(self, inputs: Sequence[Shape]) -> TorchCall:
        from archspec.ops import torch_windows

        return TorchCall(torch_windows.patch_merge)
