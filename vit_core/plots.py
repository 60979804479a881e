"""Figures (and one table) for images and training runs. Each plot function returns its
matplotlib Figure; `save_figure` writes one to the path its caller names."""
from __future__ import annotations

import math

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import torch


def save_figure(fig, path, dpi: int = 120) -> Path:
    """Save `fig` at `path` (".png" is added when it has no suffix), creating its folder;
    returns the path written."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def show_images(images: torch.Tensor, titles=None, ncols: int = 8, scale: float = 1.5,
                fontsize: float = 9):
    """Grid of images given as (B, C, H, W) floats in [0, 1] or uint8; `scale` inches per image."""
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
                ax.set_title(titles[i], fontsize=fontsize)
    fig.tight_layout()
    return fig


def plot_history(histories: dict, title: str | None = None, held_out="test",
                 num_classes: int | None = None):
    """Loss and accuracy per epoch for one or more runs: {"run name": fit()'s history}.

    Training curves are dashed, held-out curves solid, one colour per run; accuracies are
    fractions in [0, 1] in the history and drawn as percentages. fit() stores the held-out
    curve under "test_*" whichever loader it was given: `held_out` names it in the legend
    ("test", "val", or {run name: label} when runs differ). Both axes start at 0 (accuracy
    runs to 100%); with `num_classes`, dotted lines mark chance: 1/K accuracy, loss ln K.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8.6, 3.6))  # inches, two panels
    for i, (name, history) in enumerate(histories.items()):
        colour = f"C{i}"
        epochs = [h["epoch"] for h in history]
        label = held_out.get(name, "test") if isinstance(held_out, dict) else held_out
        for split, style, shown in (("train", "--", "train"), ("test", "-", label)):
            if all(h.get(f"{split}_loss") is not None for h in history):
                ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], style, color=colour,
                             label=f"{name} ({shown})", marker="o" if len(epochs) < 3 else None)
                ax_acc.plot(epochs, [100 * h[f"{split}_acc"] for h in history], style, color=colour,
                            label=f"{name} ({shown})", marker="o" if len(epochs) < 3 else None)
    if num_classes:  # a model that guesses uniformly: accuracy 1/K, cross-entropy ln K
        chance = dict(color="0.4", ls=":", lw=1)  # one style in both panels: one legend entry
        ax_acc.axhline(100 / num_classes, **chance, label=f"chance ({num_classes} classes)")
        ax_loss.axhline(math.log(num_classes), **chance)
    for ax, label in ((ax_loss, "cross-entropy loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_loss.set_ylim(bottom=0)
    ax_acc.set_ylim(0, 100)
    ax_acc.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(preds, labels, class_names, title: str | None = None):
    """Confusion matrix, each row (true class) normalised to 100%: where each class's images go."""
    preds, labels = torch.as_tensor(preds).cpu().long(), torch.as_tensor(labels).cpu().long()
    k = len(class_names)
    counts = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k)  # (true, predicted)
    percent = 100 * counts / counts.sum(1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    shown = ax.imshow(percent.numpy(), cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(shown, ax=ax, shrink=0.8, label="% of the true class (each row sums to 100)")
    if k <= 20:  # numbers stay readable up to about 20 classes
        for t in range(k):
            for p in range(k):
                ax.text(p, t, f"{percent[t, p]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if percent[t, p] > 50 else "black")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 2 else 0, fontsize=9)
    ax.set_yticks(range(k), class_names, fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = 100 * (preds == labels).float().mean()
    ax.set_title(title or f"confusion (% of each true class), accuracy {accuracy:.1f}%")
    fig.tight_layout()
    return fig


def seed_table(accuracies: dict[str, list[float]], seeds: list[int]) -> str:
    """Mean, sample standard deviation and per-seed values of final accuracies, one row per recipe.

    `accuracies[name][i]` is the accuracy (a fraction) of the run with seed `seeds[i]`."""
    per_seed = ", ".join(map(str, seeds))
    lines = [f"{'recipe':<17}{'seeds':>6}{'mean':>8}{'std':>7}   per seed ({per_seed})"]
    for name, accs in accuracies.items():
        if len(accs) != len(seeds):
            raise ValueError(f"{name}: {len(accs)} accuracies for {len(seeds)} seeds")
        values = torch.tensor(accs, dtype=torch.float64)
        # torch's std divides by n - 1 (the sample standard deviation); one run has none
        spread = f"{values.std().item():>7.1%}" if len(accs) > 1 else f"{'-':>7}"
        lines.append(f"{name:<17}{len(accs):>6}{values.mean().item():>8.1%}{spread}   "
                     + ", ".join(f"{a:.1%}" for a in accs))
    return "\n".join(lines)
