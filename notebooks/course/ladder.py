"""Notebook 06's small-data ladder, read from its runs' records: one row per run, the
sentences the lesson prints, and its bar chart. Every number comes from a record and every
claim is chosen by comparing records, so the lesson stays true when a run lands or is
replaced; a run without a record is simply absent.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

RUNGS = ("ladder-1-vit", "ladder-2-conv-stem", "ladder-3-seq-pool", "ladder-4-sincos")
CNN, FINAL = "ladder-cnn", "ladder-final"
LABELS = {"ladder-1-vit": "tiny ViT", "ladder-2-conv-stem": "+ conv tokenizer",
          "ladder-3-seq-pool": "+ sequence pooling", "ladder-4-sincos": "+ sin-cos positions",
          CNN: "ResNet (CNN)", FINAL: "final ViT"}
GOAL_ACC, GOAL_MINUTES = 0.80, 90  # ladder-final's goal: test accuracy (single view), wall time
CHANGES = {"ladder-2-conv-stem": "the conv tokenizer", "ladder-3-seq-pool": "sequence pooling",
           "ladder-4-sincos": "sin-cos positions"}  # what each rung adds to the one below
COLOURS = {"rung": "C0", CNN: "C1", FINAL: "C2"}


@dataclass(frozen=True)
class Row:
    """What the lesson reads of one run's record."""
    name: str
    label: str
    params: int
    epochs: int
    test_acc: float          # single view, measured once at the end
    tta: float | None        # the same test set with flip test-time augmentation, when recorded
    minutes: float           # recorded wall time of training
    img_per_s: float         # the fastest epoch: the one least slowed by other jobs
    hardware: str


def row(record: dict) -> Row:
    history = record["history"]
    return Row(name=record["recipe"], label=LABELS.get(record["recipe"], record["recipe"]),
               params=record["params"], epochs=len(history), test_acc=record["test_acc"],
               tta=record.get("test_acc_flip_tta"), minutes=record["train_seconds"] / 60,
               img_per_s=max(e["img_per_s"] for e in history), hardware=record["hardware"])


def steps(rows: dict[str, Row]) -> list[tuple[Row, float]]:
    """(upper rung, its gain in points over the rung below) for every pair of neighbouring
    rungs that both have a record: each is the effect of exactly one change."""
    return [(rows[b], 100 * (rows[b].test_acc - rows[a].test_acc))
            for a, b in zip(RUNGS, RUNGS[1:]) if a in rows and b in rows]


def takeaways(rows: dict[str, Row], baseline: Row | None = None) -> list[str]:
    """One sentence per finding, the comparison with the CNN first; `rows` maps run names
    (RUNGS, CNN, FINAL) to the runs that have a record, `baseline` is a longer run of the
    tiny ViT to compare the final run with."""
    rungs = [rows[n] for n in RUNGS if n in rows]
    cnn, final, lines = rows.get(CNN), rows.get(FINAL), []
    if rungs and cnn:
        best = max(rungs, key=lambda r: r.test_acc)
        verdict = ("the CNN beats every ViT rung" if cnn.test_acc > best.test_acc else
                   f"the best ViT rung, {best.name}, is level with the CNN or ahead")
        lines.append(f"At equal epochs ({cnn.epochs}) {verdict}: {cnn.test_acc:.1%} test for the "
                     f"CNN ({cnn.params:,} parameters) against {best.test_acc:.1%} for {best.name} "
                     f"({best.params:,}).")
    gains = steps(rows)
    if gains:
        top, gain = max(gains, key=lambda g: g[1])
        each = ", ".join(f"{CHANGES[r.name]} {g:+.1f}" for r, g in gains)
        lines.append(f"The change that buys the most is {CHANGES[top.name]}: {gain:+.1f} points "
                     f"of test accuracy (each change: {each})." if gain > 0 else
                     f"No change raised test accuracy (in points: {each}).")
    if rungs and rungs[0].name == RUNGS[0]:
        others = [r for r in (*rungs[1:], cnn) if r is not None]
        if others:
            slowest = min(others, key=lambda r: r.img_per_s)
            lines.append(f"Equal epochs are not equal time: {slowest.name} trained "
                         f"{slowest.img_per_s:,.0f} images/s at its fastest epoch, "
                         f"{rungs[0].img_per_s / slowest.img_per_s:.1f}x slower than "
                         f"{rungs[0].name} ({rungs[0].img_per_s:,.0f}).")
    if final:
        lines.append(_final_sentence(final, baseline))
    return lines


def _final_sentence(final: Row, baseline: Row | None) -> str:
    missed = [f"accuracy under {GOAL_ACC:.0%}"] * (final.test_acc < GOAL_ACC) + \
             [f"time over {GOAL_MINUTES} min"] * (final.minutes > GOAL_MINUTES)
    verdict = "meets the goal" if not missed else "misses the goal (" + " and ".join(missed) + ")"
    line = (f"{final.name}, {final.epochs} epochs: {final.test_acc:.1%} test (single view) in "
            f"{final.minutes:.0f} min on {final.hardware}: it {verdict} of >= {GOAL_ACC:.0%} in "
            f"<= {GOAL_MINUTES} min")
    if baseline is not None:
        line += (f"; {baseline.name}, the tiny ViT for {baseline.epochs} epochs, reached "
                 f"{baseline.test_acc:.1%} in {baseline.minutes:.0f} min")
    return line + "."


def plot(rows: dict[str, Row], title: str = ""):
    """Bars of single-view test accuracy: the rungs in order, the CNN and the final run beside
    them in their own colours, flip TTA as a marker, a dashed line at the goal."""
    order = [n for n in (*RUNGS, CNN, FINAL) if n in rows]
    xs = [i + 0.5 * (n in (CNN, FINAL)) for i, n in enumerate(order)]  # a gap after the rungs
    fig, ax = plt.subplots(figsize=(7.6, 3.9))
    for x, name in zip(xs, order):
        r = rows[name]
        ax.bar(x, 100 * r.test_acc, width=0.7, color=COLOURS.get(name, COLOURS["rung"]))
        ax.text(x, 100 * r.test_acc - 2, f"{r.test_acc:.1%}", ha="center", va="top",
                color="white", fontsize=10, fontweight="bold")
        if r.tta is not None:
            ax.plot(x, 100 * r.tta, "D", color="black", markersize=5)
    ax.axhline(100 * GOAL_ACC, color="C3", ls="--", lw=1.2)
    ax.set_xticks(xs, [_tick(rows[n]) for n in order], fontsize=9.5)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy, single view (%)")
    epochs = sorted({rows[n].epochs for n in (*RUNGS, CNN) if n in rows})
    ax.set_xlabel(f"rungs and CNN: {', '.join(map(str, epochs))} epochs each, the same recipe")
    kinds = {"rung": any(n in rows for n in RUNGS), CNN: CNN in rows, FINAL: FINAL in rows}
    names = {"rung": "ViT, one change a rung", CNN: "CNN", FINAL: "final"}
    handles = [Patch(color=COLOURS[k], label=names[k]) for k, shown in kinds.items() if shown]
    if any(rows[n].tta is not None for n in order):
        handles.append(Line2D([], [], marker="D", color="black", ls="none", markersize=5,
                              label="flip TTA"))
    handles.append(Line2D([], [], color="C3", ls="--", label=f"goal {GOAL_ACC:.0%}"))
    ax.legend(handles=handles, loc="upper center", ncol=3, fontsize=9, framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _tick(r: Row) -> str:
    if r.label.startswith("+"):  # "+ conv tokenizer" -> "+ conv" over "tokenizer"
        label = "\n".join(r.label.rsplit(" ", 1))
    else:
        label = r.label.replace(" (", "\n(")
    if r.name == FINAL:
        label += f"\n{r.epochs} epochs,\n{r.minutes:.0f} min"
    return label
