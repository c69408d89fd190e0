"""ResNet encoders in plain torch, with torchvision's module names.

The inference path must not import torchvision, yet DeOldify's checkpoints store the encoder under
torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv2``, ``downsample.0``...). These classes
reproduce those names so the released files load with ``strict=True``.

:func:`resnet_body` returns what fastai's ``create_body(arch, cut=-2)`` returned: an ``nn.Sequential``
of ``conv1, bn1, relu, maxpool, layer1..layer4`` (indices 0..7), with the channel counts the U-Net
needs in ``.feature_channels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34). ``expansion = 1``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, torchvision "v1.5") -> 1x1 convs (ResNet-50/101). ``expansion = 4``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


@dataclass(frozen=True)
class ResNetConfig:
    """Shape of a ResNet: block type, blocks per stage, stem width and stage widths (before expansion)."""

    block: str  # "basic" or "bottleneck"
    layers: tuple[int, int, int, int]
    stem_width: int = 64
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)


RESNET34 = ResNetConfig("basic", (3, 4, 6, 3))
RESNET101 = ResNetConfig("bottleneck", (3, 4, 23, 3))


class ResNetBody(nn.Sequential):
    """``conv1, bn1, relu, maxpool, layer1..4`` as a Sequential (fastai ``create_body`` with cut=-2).

    Attributes:
        feature_channels: channels after ``relu`` (index 2) and after ``layer1..layer4`` (indices 4..7).
        skip_indices: the children whose outputs are the U-Net skip connections: (2, 4, 5, 6).
    """

    skip_indices = (2, 4, 5, 6)

    def __init__(self, config: ResNetConfig):
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[config.block]
        inplanes = config.stem_width
        stages = []
        for i, (n_blocks, width) in enumerate(zip(config.layers, config.widths)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != width * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, width * block.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(width * block.expansion),
                )
            blocks = [block(inplanes, width, stride, downsample)]
            inplanes = width * block.expansion
            blocks += [block(inplanes, width) for _ in range(1, n_blocks)]
            stages.append(nn.Sequential(*blocks))
        super().__init__(
            nn.Conv2d(3, config.stem_width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(config.stem_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
            *stages,
        )
        self.feature_channels = (config.stem_width, *(w * block.expansion for w in config.widths))
