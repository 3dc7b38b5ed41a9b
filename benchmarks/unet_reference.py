"""A hand-written U-Net (Ronneberger et al., 2015) against archspec/zoo/unet.yaml.

The module is written the way a person writes it in PyTorch, with the spec's module names, so
the compiled spec can load its state_dict strictly. Run it to compare parameters, MACs
(torch's FlopCounterMode, which counts 2 FLOPs per multiply-accumulate), state_dict keys and
outputs, for the padded default and the paper's unpadded variant:

    .venv/bin/python benchmarks/unet_reference.py [--base 64]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec

SPEC = Path(__file__).resolve().parent.parent / "archspec" / "zoo" / "unet.yaml"


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, width: int, padding: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=padding)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=padding)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class Down(nn.Module):
    def __init__(self, in_channels: int, width: int, padding: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, width, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def centre_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    top = (x.shape[-2] - size[0]) // 2
    left = (x.shape[-1] - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


class Up(nn.Module):
    def __init__(self, in_channels: int, width: int, padding: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, width, 2, stride=2)
        self.conv = DoubleConv(2 * width, width, padding)

    def forward(self, deeper: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.up(deeper)
        return self.conv(torch.cat([centre_crop(skip, up.shape[-2:]), up], dim=1))


class UNet(nn.Module):
    def __init__(self, base: int = 64, num_classes: int = 2, padding: int = 1) -> None:
        super().__init__()
        self.inc = DoubleConv(1, base, padding)
        self.down1 = Down(base, 2 * base, padding)
        self.down2 = Down(2 * base, 4 * base, padding)
        self.down3 = Down(4 * base, 8 * base, padding)
        self.down4 = Down(8 * base, 16 * base, padding)
        self.up1 = Up(16 * base, 8 * base, padding)
        self.up2 = Up(8 * base, 4 * base, padding)
        self.up3 = Up(4 * base, 2 * base, padding)
        self.up4 = Up(2 * base, base, padding)
        self.outc = nn.Conv2d(base, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.down4(x4)
        x = self.up1(x, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


def compare(base: int, variant: str | None, size: int) -> dict[str, object]:
    """Parameters, MACs, keys and outputs of the spec and the hand-written module."""
    spec = archspec.load(SPEC, {"base": base, "size": size}, variant=variant)
    padding = spec.params["padding"]
    compiled = archspec.compile(spec).eval()
    written = UNet(base, spec.params["num_classes"], padding).eval()
    written.load_state_dict(compiled.state_dict(), strict=True)
    image = torch.randn(1, 1, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        expected = written(image)
    with torch.no_grad():
        found = compiled(image)
    return {
        "variant": variant or "padded",
        "size": size,
        "params": (
            archspec.analyze(spec).totals.params,
            sum(p.numel() for p in written.parameters()),
        ),
        "macs": (archspec.analyze(spec).totals.macs, counter.get_total_flops() // 2),
        "same keys": list(compiled.state_dict()) == list(written.state_dict()),
        "output": tuple(found.shape),
        "difference": float((found - expected).abs().max()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=int, default=64)
    args = parser.parse_args(argv)
    for variant, size in ((None, 512), ("paper", 572)):
        figures = compare(args.base, variant, size)
        print(", ".join(f"{key}: {value}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
