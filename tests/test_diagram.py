"""The README's model picture (course.diagram): it draws, and its shapes are the configs' shapes."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.text import Text

from course import diagram, figures
from vit_core import ViTConfig


def _labels(figure) -> set[str]:
    return {t.get_text() for t in figure.findobj(Text) if t.get_text()}


def _expected(c: ViTConfig) -> list[str]:
    """The shapes the picture must show, computed here from the config, not copied from the module."""
    return [
        f"{c.in_channels} × {c.image_size} × {c.image_size}",                  # image
        f"{c.num_patches} × {c.patch_size ** 2 * c.in_channels}",                 # patches
        f"{c.num_patches} × {c.dim}",                                             # linear projection
        f"{c.seq_len} × {c.dim}",                                                 # tokens, CLS included
        f"{c.heads} × {c.seq_len} × {c.seq_len}",                                 # attention maps, one per head
        f"{c.seq_len} × {c.mlp_dim} → {c.dim}",                                   # MLP
        f"L = {c.depth} blocks",
        str(c.dim),                                                               # CLS token
        str(c.num_classes),                                                       # head
    ]


def test_draws_on_a_given_axes_and_on_its_own(tmp_path):
    fig, ax = plt.subplots()
    assert diagram.vit_architecture(ax) is ax
    plt.close(fig)
    ax = diagram.vit_architecture()
    out = tmp_path / "vit_architecture.png"
    ax.figure.savefig(out, dpi=50)
    assert out.stat().st_size > 1000
    plt.close(ax.figure)


def test_saved_figure_shows_both_models_shapes(tmp_path):
    ax = diagram.vit_architecture()
    ax.figure.savefig(tmp_path / "vit.png", dpi=50)
    labels = _labels(ax.figure)
    tiny, base = ViTConfig.cifar10_tiny(), ViTConfig.vit_b_16()
    assert (tiny.seq_len, tiny.dim, base.seq_len, base.dim) == (65, 48, 197, 768)  # the shapes the README names
    for config in (tiny, base):
        missing = [s for s in _expected(config) if s not in labels]
        assert not missing, f"shapes missing from the picture: {missing}"
    figures.check_readable(ax.figure)  # at least 9 pt on screen at the README's width
    for label in ("× L", "multi-head self-attention", "MLP", "LayerNorm", "linear head", "CLS token"):
        assert label in labels
    plt.close(ax.figure)
