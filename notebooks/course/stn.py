"""A Spatial Transformer Network (Jaderberg et al., 2015) in front of a small CNN classifier.

A spatial transformer is *not* a vision transformer: it has no tokens and no self-attention.
A small localisation network looks at the image and predicts the six numbers of an affine
map theta (2x3); `F.affine_grid` turns theta into one source coordinate per output pixel and
`F.grid_sample` reads the image there (bilinear, zeros outside). The last layer of the
localisation network starts at zero with the identity as its bias, so an untrained spatial
transformer returns its input unchanged.

The layer sizes are those of PyTorch's spatial transformer tutorial with three input
channels, as EVA6 Session 12 (github.com/vivek-a81/EVA6) trained it on CIFAR-10. State-dict
keys: `classifier.features`, `classifier.head`, then `stn.features` and `stn.regressor` (absent when
`spatial_transformer=False`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # [[1, 0, 0], [0, 1, 0]] row by row


@dataclass(frozen=True)
class STNConfig:
    image_size: int = 32               # input height = width, in pixels
    in_channels: int = 3               # colour channels of the input images
    num_classes: int = 10              # outputs of the classifier
    spatial_transformer: bool = True   # False: the same classifier reads the image untouched
    loc_channels: tuple[int, int] = (8, 10)     # localisation convs (7x7 then 5x5, each + 2x2 max-pool)
    loc_hidden: int = 32               # hidden width of the regressor that outputs theta
    conv_channels: tuple[int, int] = (10, 20)   # classifier convs (5x5 each, + 2x2 max-pool)
    hidden: int = 50                   # hidden width of the classifier's head
    dropout: float = 0.5               # on the second conv's channels and on the head's hidden layer
    align_corners: bool = False        # affine_grid/grid_sample convention: -1 and 1 are pixel edges

    def __post_init__(self):
        if self.loc_grid < 1 or self.conv_grid < 1:
            raise ValueError(f"invalid STNConfig: image_size {self.image_size} is too small for the "
                             f"7/5 px localisation and 5/5 px classifier convolutions (need >= 22)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"invalid STNConfig: dropout must lie in [0, 1), got {self.dropout}")

    @property
    def loc_grid(self) -> int:
        """Side of the localisation network's last feature map: conv 7, pool 2, conv 5, pool 2."""
        return ((self.image_size - 6) // 2 - 4) // 2

    @property
    def conv_grid(self) -> int:
        """Side of the classifier's last feature map: conv 5, pool 2, conv 5, pool 2."""
        return ((self.image_size - 4) // 2 - 4) // 2


class SpatialTransformer(nn.Module):
    """Image in, image out: predict theta from the image, then resample the image through it."""

    def __init__(self, config: STNConfig):
        super().__init__()
        c1, c2 = config.loc_channels
        self.align_corners = config.align_corners
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, kernel_size=7), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten())
        self.regressor = nn.Sequential(
            nn.Linear(c2 * config.loc_grid ** 2, config.loc_hidden), nn.ReLU(), nn.Linear(config.loc_hidden, 6))
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        """Zero weights and the identity as bias in the last layer: theta = identity for every image."""
        last = self.regressor[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(torch.tensor(IDENTITY_THETA))

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 2, 3): the affine map from output to source coordinates."""
        return self.regressor(self.features(x)).view(-1, 2, 3)  # (B, 2, 3)

    def warp(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Resample x through theta: output pixel p reads x at theta @ [p, 1] (bilinear, zeros outside).

        Always in float32, also under autocast: in bfloat16 (7 stored mantissa bits, 8 significant
        bits with the implicit leading one) the sampling coordinates are off by up to a fraction of
        a pixel and even the identity blurs the image."""
        with torch.autocast(x.device.type, enabled=False):
            grid = F.affine_grid(theta.float(), list(x.shape), align_corners=self.align_corners)  # (B, H, W, 2)
            return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=self.align_corners)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.warp(x, self.theta(x))


class SmallCNN(nn.Module):
    """Two 5x5 convolutions with max-pooling, then a two-layer head, with dropout."""

    def __init__(self, config: STNConfig):
        super().__init__()
        c1, c2 = config.conv_channels
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, c1, kernel_size=5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=5), nn.Dropout2d(config.dropout), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(c2 * config.conv_grid ** 2, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


class STNClassifier(nn.Module):
    """SmallCNN, with a SpatialTransformer in front of it when config.spatial_transformer."""

    def __init__(self, config: STNConfig):
        super().__init__()
        self.config = config
        self.classifier = SmallCNN(config)  # built first: after the same seed, both arms start with equal classifiers
        self.stn = SpatialTransformer(config) if config.spatial_transformer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (self.config.in_channels, self.config.image_size, self.config.image_size):
            size, c = self.config.image_size, self.config.in_channels
            raise ValueError(f"expected images (B, {c}, {size}, {size}), got {tuple(x.shape)}")
        return self.classifier(self.stn(x))
