"""A small ResNet for CIFAR-sized images, built from torchvision's own `BasicBlock`: the CNN
the ViTs are compared with at the same data, threads and budget. Convolutions share weights
across positions and see only neighbours, the two priors (translation equivariance,
locality) that a ViT has to learn from data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock


@dataclass
class ResNetConfig:
    num_classes: int = 10                 # outputs of the classification head
    widths: tuple[int, ...] = (16, 32, 64)  # channels of each stage; every stage after the first halves H, W
    blocks_per_stage: int = 2             # BasicBlocks (two 3x3 convs + skip) per stage
    in_channels: int = 3                  # colour channels of the input images
    image_size: int = 32                  # input height = width (any size works; kept for records)

    def __post_init__(self):
        self.widths = tuple(self.widths)  # JSON records store lists
        if not self.widths or min(self.widths) <= 0 or self.blocks_per_stage <= 0:
            raise ValueError(f"invalid ResNetConfig: widths {self.widths}, blocks {self.blocks_per_stage}")


class ResNet(nn.Module):
    """3x3 conv stem -> stages of BasicBlocks -> global average pool -> linear head."""

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        w0 = config.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, w0, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(w0), nn.ReLU(inplace=True))
        stages, channels = [], w0
        for i, width in enumerate(config.widths):
            for j in range(config.blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                down = None
                if stride != 1 or channels != width:  # the skip path must match the new shape
                    down = nn.Sequential(nn.Conv2d(channels, width, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(width))
                stages.append(BasicBlock(channels, width, stride=stride, downsample=down))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(images))  # (B, widths[-1], H / 2**(stages-1), same)
        return self.head(x.mean(dim=(2, 3)))  # (B, num_classes)
