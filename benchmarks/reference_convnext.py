"""ConvNeXt-T written by hand for the benchmarks (torch only, no archspec, no torchvision), with
torchvision's module names, so the compiled zoo spec's state_dict loads into it with strict=True.
It computes what torchvision's model computes, op for op (see `reference_transformers.py`)."""

from __future__ import annotations

import torch
from reference_models import StochasticDepth
from reference_transformers import Permute
from torch import Tensor, nn
from torch.nn import functional as F


class LayerNorm2d(nn.LayerNorm):
    """nn.LayerNorm over the channels of each position of an (N, C, H, W) map."""

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(
            x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps
        )
        return x.permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    """x + drop(scale * block(x)): a 7x7 depthwise conv, then an inverted MLP over the channels
    of each position, channels last. (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, dim: int, layer_scale: float, p: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim),
            Permute(0, 2, 3, 1),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute(0, 3, 1, 2),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.stochastic_depth = StochasticDepth(p)

    def forward(self, x: Tensor) -> Tensor:
        result = self.stochastic_depth(self.layer_scale * self.block(x))
        result += x
        return result


class ConvNeXt(nn.Module):
    """ConvNeXt with torchvision's module names (features, avgpool, classifier)."""

    def __init__(
        self,
        widths: tuple[int, ...] = (96, 192, 384, 768),
        depths: tuple[int, ...] = (3, 3, 9, 3),
        stochastic_depth_prob: float = 0.1,
        layer_scale: float = 1e-6,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(3, widths[0], 4, 4), LayerNorm2d(widths[0], eps=1e-6))
        layers: list[nn.Module] = [stem]
        block_id, total = 0, sum(depths)
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks = []
            for _ in range(depth):
                p = stochastic_depth_prob * block_id / (total - 1)
                blocks.append(CNBlock(width, layer_scale, p))
                block_id += 1
            layers.append(nn.Sequential(*blocks))
            if stage < len(widths) - 1:
                down = nn.Sequential(
                    LayerNorm2d(width, eps=1e-6), nn.Conv2d(width, widths[stage + 1], 2, 2)
                )
                layers.append(down)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(widths[-1], eps=1e-6), nn.Flatten(1), nn.Linear(widths[-1], num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        return self.classifier(self.avgpool(self.features(x)))


def convnext_tiny(num_classes: int = 1000) -> ConvNeXt:
    """torchvision.models.convnext_tiny(weights=None), same module names and parameters."""
    return ConvNeXt(num_classes=num_classes)
