"""Figures the notebooks share. Each function returns its matplotlib Figure;
`save_figure` writes it into figures/ so the README can show it."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .env import figures_dir


def save_figure(fig, name: str, dpi: int = 120):
    """Save `fig` as figures/<name>.png and return the path."""
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def show_images(images: torch.Tensor, titles=None, ncols: int = 8, scale: float = 1.5):
    """Grid of images given as (B, C, H, W) floats in [0, 1] or uint8."""
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        images = images.float() / 255
    n = images.shape[0]
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).numpy())  # (H, W, C) for imshow
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
