"""Torch reference models for the benchmarks, written by hand: torchvision is not a dependency."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 convs (the first may stride) at `planes` channels, plus the shortcut."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, planes, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 with torchvision's module names (conv1, bn1, layer1..4, fc)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * BasicBlock.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:  # torchvision's rule: only where shapes change
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride here: v1.5), 1x1 expand to 4x planes, plus the shortcut."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, 4 * planes, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 with torchvision's module names (conv1, bn1, layer1..4, fc)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, out, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out),
        )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        layers += [Bottleneck(out, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000) -> ResNet18:
    """torchvision.models.resnet18(weights=None), same module names and parameter count."""
    return ResNet18(num_classes)


def resnet50(num_classes: int = 1000) -> ResNet50:
    """torchvision.models.resnet50(weights=None), same module names and parameter count."""
    return ResNet50(num_classes)


# -- EfficientNet-B0 and MobileNetV3-Large: torchvision's module names, without torchvision -------

Activation = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of `divisor`, never below 90% of `value` (MobileNet's rounding)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormActivation(nn.Sequential):
    """Conv (no bias), batch norm, then an in-place activation if any: torchvision's
    Conv2dNormActivation. (N, C, H, W) -> (N, out, H / stride, W / stride)."""

    def __init__(
        self,
        inp: int,
        out: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: Activation | None = nn.ReLU,
        norm: Callable[[int], nn.Module] = nn.BatchNorm2d,
    ) -> None:
        layers = [
            nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            norm(out),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """x * gate(fc2(activation(fc1(mean of x)))): (N, C, H, W) -> (N, C, H, W)."""

    def __init__(
        self, channels: int, squeeze: int, activation: Activation, gate: Activation
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = gate()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class StochasticDepth(nn.Module):
    """In training, drops each sample's residual branch with probability p and scales the
    survivors by 1 / (1 - p); the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty([x.shape[0]] + [1] * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * keep.bernoulli_(1.0 - self.p).div_(1.0 - self.p)


class MBConv(nn.Module):
    """EfficientNet's block: 1x1 expand, depthwise, squeeze-excitation, 1x1 projection."""

    def __init__(self, expand: int, kernel: int, stride: int, inp: int, out: int, p: float) -> None:
        super().__init__()
        expanded = make_divisible(inp * expand)
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(ConvNormActivation(inp, expanded, activation=nn.SiLU))
        layers += [
            ConvNormActivation(expanded, expanded, kernel, stride, expanded, nn.SiLU),
            SqueezeExcitation(
                expanded, max(1, inp // 4), lambda: nn.SiLU(inplace=True), nn.Sigmoid
            ),
            ConvNormActivation(expanded, out, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(p)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        """(N, inp, H, W) -> (N, out, H / stride, W / stride)."""
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += x
        return result


#: EfficientNet-B0's stages: (expand, kernel, stride, input width, output width, blocks).
EFFICIENTNET_B0 = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


class EfficientNetB0(nn.Module):
    """EfficientNet-B0 with torchvision's module names (features, avgpool, classifier)."""

    def __init__(self, num_classes: int = 1000, stochastic_depth_prob: float = 0.2) -> None:
        super().__init__()
        total = sum(stage[-1] for stage in EFFICIENTNET_B0)
        layers: list[nn.Module] = [ConvNormActivation(3, 32, 3, 2, activation=nn.SiLU)]
        block_id = 0
        for expand, kernel, stride, inp, out, count in EFFICIENTNET_B0:
            stage = []
            for index in range(count):
                p = stochastic_depth_prob * block_id / total
                first = index == 0
                stage.append(
                    MBConv(expand, kernel, stride if first else 1, inp if first else out, out, p)
                )
                block_id += 1
            layers.append(nn.Sequential(*stage))
        layers.append(ConvNormActivation(320, 1280, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(1280, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


#: MobileNetV3's batch norm, with the TensorFlow original's settings.
TF_BATCH_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)


class InvertedResidual(nn.Module):
    """MobileNetV3's block: 1x1 expand, depthwise, squeeze-excitation if any, 1x1 projection."""

    def __init__(
        self, inp: int, kernel: int, expanded: int, out: int, se: bool, hs: bool, stride: int
    ) -> None:
        super().__init__()
        norm = TF_BATCH_NORM
        activation = nn.Hardswish if hs else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != inp:
            layers.append(ConvNormActivation(inp, expanded, activation=activation, norm=norm))
        layers.append(
            ConvNormActivation(expanded, expanded, kernel, stride, expanded, activation, norm=norm)
        )
        if se:
            squeeze = make_divisible(expanded // 4)
            layers.append(SqueezeExcitation(expanded, squeeze, nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvNormActivation(expanded, out, activation=None, norm=norm))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        """(N, inp, H, W) -> (N, out, H / stride, W / stride)."""
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


#: MobileNetV3-Large: (input, kernel, expanded, output, SE, hard-swish, stride) per block.
MOBILENET_V3_LARGE = [
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
]


class MobileNetV3Large(nn.Module):
    """MobileNetV3-Large with torchvision's module names (features, avgpool, classifier)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        norm = TF_BATCH_NORM
        self.features = nn.Sequential(
            ConvNormActivation(3, 16, 3, 2, activation=nn.Hardswish, norm=norm),
            *(InvertedResidual(*row) for row in MOBILENET_V3_LARGE),
            ConvNormActivation(160, 960, activation=nn.Hardswish, norm=norm),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(960, 1280),
            nn.Hardswish(inplace=True),
            nn.Dropout(0.2, inplace=True),
            nn.Linear(1280, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, 224, 224) -> (N, num_classes)."""
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def efficientnet_b0(num_classes: int = 1000) -> EfficientNetB0:
    """torchvision.models.efficientnet_b0(weights=None), same module names and parameters."""
    return EfficientNetB0(num_classes)


def mobilenet_v3_large(num_classes: int = 1000) -> MobileNetV3Large:
    """torchvision.models.mobilenet_v3_large(weights=None), same module names and parameters."""
    return MobileNetV3Large(num_classes)
