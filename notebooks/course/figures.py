"""Figures a reader can read: every text in a figure at least 9 pt on screen where the README
shows it (at most README_WIDTH_PX wide), checked before the figure is saved."""
from __future__ import annotations

from pathlib import Path

from matplotlib.text import Text

from vit_core.plots import save_figure

README_WIDTH_PX = 830   # GitHub's README column on a laptop screen, in CSS pixels
SCREEN_PX_PER_INCH = 96  # CSS pixels per inch: 1 pt on screen = 96/72 px
MIN_POINTS = 9.0
DPI = 120               # vit_core.plots.save_figure's resolution


def displayed_points(fig, dpi: int = DPI, width_px: int = README_WIDTH_PX) -> dict[str, float]:
    """On-screen size in points of every visible text of `fig`, once saved at `dpi` with a tight
    bounding box and shown at most `width_px` wide (a wider PNG is scaled down to fit)."""
    fig.canvas.draw()
    png_px = (fig.get_tightbbox(fig.canvas.get_renderer()).width + 0.2) * dpi  # + savefig's pad_inches, both sides
    scale = min(1.0, width_px / png_px) * dpi / SCREEN_PX_PER_INCH
    hidden = {id(t) for ax in fig.axes if not ax.axison  # axis("off"): its tick labels are never drawn
              for t in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label, ax.yaxis.label]}
    return {t.get_text(): t.get_fontsize() * scale for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden}


def check_readable(fig, min_points: float = MIN_POINTS, **kwargs) -> float:
    """Raise if any text of `fig` would show smaller than `min_points`; returns the smallest size."""
    sizes = displayed_points(fig, **kwargs)
    small = {text: round(pt, 1) for text, pt in sizes.items() if pt < min_points}
    if small:
        raise AssertionError(f"text under {min_points} pt at {README_WIDTH_PX} px wide: {small}")
    return min(sizes.values())


def save(fig, path) -> Path:
    """check_readable(fig), then vit_core.plots.save_figure(fig, path)."""
    check_readable(fig)
    return save_figure(fig, path, dpi=DPI)
