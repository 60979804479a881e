"""The whole Vision Transformer in one picture, drawn by code (the README's first figure).

    python -m course.diagram      # writes figures/vit_architecture.png

`vit_architecture()` draws the model as one column of boxes, top to bottom: image, patches, the
linear projection, CLS token and position embeddings, the encoder block repeated L times
(LayerNorm, multi-head self-attention, residual add, LayerNorm, MLP, residual add), the final
LayerNorm, the CLS token and the linear head. Beside each box it writes the tensor's shape for
one image (batch omitted; after attention, one T × T map per head) in two models: the tiny CIFAR-10 model the series trains and
ViT-B/16 from the paper. Every shape is computed from `ViTConfig`, so the picture cannot drift
from the code.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from vit_core import ViTConfig

# Colours: one per kind of step, and one per model for the shape columns.
EMBED, NORM, ATTN, MLP, HEAD, DATA = "#dbe9f6", "#eeeeee", "#fde2c8", "#d9f0d3", "#e8dcf0", "#ffffff"
TINY_COLOUR, BASE_COLOUR, GROUP = "#1f5fa8", "#b35900", "#f6f6fb"
FONT, SHAPE_FONT, SMALL = 16, 15, 13.5


def models() -> list[tuple[str, ViTConfig]]:
    """The two models whose shapes the picture shows."""
    return [("tiny CIFAR-10", ViTConfig.cifar10_tiny()), ("ViT-B/16", ViTConfig.vit_b_16())]


def _x(*sizes) -> str:
    return " × ".join(str(s) for s in sizes)


def rows(config: ViTConfig) -> list[tuple[str, str, str]]:
    """(label, kind, shape for one image) for every step of the model, top to bottom."""
    c = config
    patch = c.patch_size * c.patch_size * c.in_channels
    return [
        ("image", "data", _x(c.in_channels, c.image_size, c.image_size)),
        (f"{c.num_patches} patches of {c.patch_size}×{c.patch_size}", "embed", _x(c.num_patches, patch)),
        ("linear projection", "embed", _x(c.num_patches, c.dim)),
        ("+ CLS token, + position embeddings", "embed", _x(c.seq_len, c.dim)),
        ("LayerNorm", "norm", _x(c.seq_len, c.dim)),
        ("multi-head self-attention", "attn", _x(c.heads, c.seq_len, c.seq_len)),  # one T × T map per head
        ("+", "add", _x(c.seq_len, c.dim)),
        ("LayerNorm", "norm", _x(c.seq_len, c.dim)),
        ("MLP", "mlp", f"{_x(c.seq_len, c.mlp_dim)} → {c.dim}"),
        ("+", "add", _x(c.seq_len, c.dim)),
        ("LayerNorm", "norm", _x(c.seq_len, c.dim)),
        ("CLS token", "head", str(c.dim)),
        ("linear head", "head", str(c.num_classes)),
        ("class", "data", f"1 of {c.num_classes}"),
    ]


def vit_architecture(ax=None):
    """Draw the model with the shapes of both `models()`; returns the matplotlib Axes."""
    (tiny_name, tiny), (base_name, base) = models()
    steps, base_rows = rows(tiny), rows(base)
    fill = {"data": DATA, "embed": EMBED, "norm": NORM, "attn": ATTN, "mlp": MLP, "head": HEAD}

    # Layout in inches (one data unit = one inch): y of each row's centre, top to bottom, with
    # extra room around the repeated block.
    gap, block_gap = 0.7, 1.05
    ys, y = [], 0.0
    for i in range(len(steps)):
        if i:
            y -= block_gap if i in (4, 10) else gap
        ys.append(y)
    top, bottom = ys[0] + 1.25, ys[-1] - 0.45
    width = 12.7
    if ax is None:
        _, ax = plt.subplots(figsize=(width, top - bottom))
    ax.set_xlim(0, width)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")

    box_x, box_w, box_h = 1.6, 4.8, 0.44     # the model's column
    cx = box_x + box_w / 2
    col_tiny, col_base = 8.3, 11.0           # centres of the two shape columns

    # The repeated encoder block: a shaded group with "× L" beside it.
    g_top, g_bottom = ys[4] + 0.62, ys[9] - 0.4
    ax.add_patch(FancyBboxPatch((0.25, g_bottom), width - 0.4, g_top - g_bottom,
                                boxstyle="round,pad=0,rounding_size=0.12", fc=GROUP, ec="#7a7aa8", lw=1.6,
                                ls=(0, (5, 3)), zorder=0))
    mid = (g_top + g_bottom) / 2
    ax.text(0.78, mid + 0.2, "× L", fontsize=FONT + 5, fontweight="bold", ha="center", va="center",
            color="#4a4a80")
    ax.text(0.78, mid - 0.3, "encoder\nblock", fontsize=SMALL, style="italic", ha="center", va="center",
            color="#4a4a80", linespacing=1.1)

    # Column headings and the block's repeat count for each model.
    for x, name, config, colour in ((col_tiny, tiny_name, tiny, TINY_COLOUR), (col_base, base_name, base, BASE_COLOUR)):
        ax.text(x, top - 0.3, name, fontsize=FONT, fontweight="bold", ha="center", va="center", color=colour)
        ax.text(x, top - 0.68, f"width {config.dim}, {config.heads} heads", fontsize=SMALL, ha="center",
                va="center", color=colour)
        ax.text(x, g_top - 0.2, f"L = {config.depth} blocks", fontsize=SMALL, fontweight="bold", ha="center",
                va="center", color=colour)
    ax.text(cx, top - 0.3, "Vision Transformer", fontsize=FONT + 1, fontweight="bold", ha="center", va="center")
    ax.text(cx, top - 0.68, "shapes for one image (batch omitted)", fontsize=SMALL, ha="center", va="center",
            color="#555555")

    # Boxes (or a circle for each residual add) and their shapes.
    add_r = 0.2
    for (label, kind, shape), (_, _, base_shape), y in zip(steps, base_rows, ys):
        if kind == "add":
            ax.add_patch(Circle((cx, y), add_r, fc="white", ec="black", lw=1.4, zorder=3))
            ax.text(cx, y, "+", fontsize=FONT + 2, ha="center", va="center", zorder=4)
            ax.text(cx + add_r + 0.15, y, "residual", fontsize=SMALL, style="italic", ha="left", va="center")
        else:
            ax.add_patch(FancyBboxPatch((box_x, y - box_h / 2), box_w, box_h,
                                        boxstyle="round,pad=0,rounding_size=0.08",
                                        fc=fill[kind], ec="black", lw=1.2, zorder=2))
            size = FONT - 2 if len(label) > 28 else FONT
            ax.text(cx, y, label, fontsize=size, ha="center", va="center", zorder=4)
        ax.text(col_tiny, y, shape, fontsize=SHAPE_FONT, ha="center", va="center", color=TINY_COLOUR,
                family="DejaVu Sans Mono")
        ax.text(col_base, y, base_shape, fontsize=SHAPE_FONT, ha="center", va="center", color=BASE_COLOUR,
                family="DejaVu Sans Mono")

    def half(i: int) -> float:  # half the height of row i's shape
        return add_r if steps[i][1] == "add" else box_h / 2

    def arrow(p, q, color="black"):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=16, lw=1.4, color=color,
                                     shrinkA=0, shrinkB=0, zorder=1))

    # The main path, row to row.
    for i in range(len(steps) - 1):
        arrow((cx, ys[i] - half(i)), (cx, ys[i + 1] + half(i + 1)))

    # Residual connections: from the input of each half-block around it to its "+".
    x_skip = box_x - 0.25
    for start, add in ((4, 6), (7, 9)):
        room = ys[start - 1] - half(start - 1) - (ys[start] + half(start))
        y0 = ys[start] + half(start) + min(0.2, room / 2)   # on the arrow into the half-block
        ax.plot([cx, x_skip, x_skip], [y0, y0, ys[add]], color="#333333", lw=1.4, zorder=1)
        ax.plot([cx], [y0], marker="o", ms=5, color="#333333", zorder=3)
        arrow((x_skip, ys[add]), (cx - add_r, ys[add]), color="#333333")
    return ax


def main() -> None:
    from course.env import ROOT
    from course.figures import check_readable
    from vit_core.plots import save_figure

    ax = vit_architecture()
    check_readable(ax.figure)  # every text at least 9 pt where the README shows it
    out = save_figure(ax.figure, ROOT / "figures" / "vit_architecture.png", dpi=150)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
