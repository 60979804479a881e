"""course.figures: text sizes on screen, as the README shows a figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from course import figures


def test_narrow_figure_shows_fonts_enlarged():
    fig, ax = plt.subplots(figsize=(4, 3))  # 480 px at 120 dpi: shown at full size, 120/96 of the points
    ax.set_title("t", fontsize=10)
    assert figures.displayed_points(fig)["t"] == pytest.approx(12.5)
    plt.close(fig)


def test_wide_figure_is_scaled_down_and_rejected():
    fig, ax = plt.subplots(figsize=(16, 3))  # about 1,600 px after trimming: shown at about half its size
    ax.set_title("tiny", fontsize=10)
    assert figures.displayed_points(fig)["tiny"] < 7
    with pytest.raises(AssertionError, match="tiny"):
        figures.check_readable(fig)
    plt.close(fig)


def test_hidden_axes_labels_are_not_counted():
    fig, (shown, hidden) = plt.subplots(1, 2, figsize=(4, 2))
    for ax in (shown, hidden):
        ax.tick_params(labelsize=5)  # 5 pt: too small wherever it is drawn
    hidden.axis("off")  # image grids hide their axes: those tick labels are never drawn
    drawn = {t.get_text() for t in shown.get_xticklabels() if t.get_text()}
    sizes = figures.displayed_points(fig)
    assert drawn and drawn <= sizes.keys()
    assert len([t for t in hidden.get_xticklabels() if t.get_text()]) > 0
    with pytest.raises(AssertionError):
        figures.check_readable(fig)  # the visible axis still fails
    shown.axis("off")
    assert figures.displayed_points(fig) == {}
    plt.close(fig)
