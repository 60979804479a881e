"""The parts of a ViT outside its encoder blocks: the convolutional tokenizer, sequence pooling
and the position-embedding helpers (fixed 2-D sine-cosine tables, resizing learned ones).

Each piece takes plain sizes, not a ViTConfig, so it can be read and tested on its own;
`model.py` builds them from the config.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


class ConvStem(nn.Module):
    """Tokens from a few small convolutions instead of one linear map per patch: each layer is
    a 3x3 convolution, ReLU and a stride-2 max-pool, so log2(patch_size) layers give the same
    token grid as the patch embedding (Hassani et al. 2021, "Escaping the Big Data Paradigm
    with Compact Transformers"). Neighbouring patches now share pixels: a locality prior.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int):
        super().__init__()
        layers, channels = [], in_channels
        for _ in range(int(math.log2(patch_size))):
            layers += [nn.Conv2d(channels, dim, 3, padding=1, bias=False), nn.ReLU(),
                       nn.MaxPool2d(3, stride=2, padding=1)]
            channels = dim
        self.convs = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.convs(images)  # (B, dim, grid, grid)
        return rearrange(x, "b c gh gw -> b (gh gw) c")  # (B, num_patches, dim)

    def reset_parameters(self) -> None:
        """He (Kaiming) normal init for the convolutions that feed a ReLU, as CCT does."""
        for conv in self.convs[::3]:  # every layer is (Conv2d, ReLU, MaxPool2d)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")


class SeqPool(nn.Module):
    """Sequence pooling: one learned score per token, softmax over the tokens, and the
    weighted mean of the tokens (Hassani et al. 2021). Mean pooling is the case of equal
    scores."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).softmax(dim=1)  # (B, N, 1): sums to 1 over the N tokens
        return (weights * x).sum(dim=1)  # (B, dim)


def sincos_pos_embed(grid_size: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings of a grid x grid patch layout: (g*g, dim).

    A quarter of the channels each holds sin and cos of the row, then of the column, at
    dim/4 frequencies temperature^(-k/(dim/4)): every vector has length sqrt(dim/2), and the
    dot product of two positions depends only on their offset.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    omega = temperature ** -(torch.arange(dim // 4) / (dim // 4))  # (dim/4,): slow to fast waves
    r = rows.flatten()[:, None].float() * omega  # (g*g, dim/4)
    c = cols.flatten()[:, None].float() * omega  # (g*g, dim/4)
    return torch.cat([r.sin(), r.cos(), c.sin(), c.cos()], dim=1)  # (g*g, dim), row-major


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: int) -> torch.Tensor:
    """Resize (1, 1 + g*g, dim) position embeddings to (1, 1 + new_grid**2, dim).

    The CLS position is kept as it is; the patch positions are treated as a g x g image
    with `dim` channels and resized bicubically, so neighbours stay neighbours.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, 1 + g*g, dim), "
                         f"got {tuple(pos_embed.shape)}")
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # (1, 1, dim), (1, g*g, dim)
    old_grid = math.isqrt(patch_pos.shape[1])
    if old_grid * old_grid != patch_pos.shape[1]:
        raise ValueError(f"pos_embed holds {patch_pos.shape[1]} patch positions, not a square grid")
    if old_grid == new_grid:
        return pos_embed.clone()
    grid = rearrange(patch_pos, "1 (gh gw) d -> 1 d gh gw", gh=old_grid)  # (1, dim, g, g)
    # computed in float32 whatever the weights' dtype, then cast back to it
    grid = F.interpolate(grid.float(), size=(new_grid, new_grid), mode="bicubic",
                         align_corners=False)  # (1, dim, new_grid, new_grid)
    patch_pos = rearrange(grid, "1 d gh gw -> 1 (gh gw) d")  # (1, new_grid**2, dim)
    patch_pos = patch_pos.to(pos_embed.dtype)
    return torch.cat([cls_pos, patch_pos], dim=1)  # (1, 1 + new_grid**2, dim)
