"""course.ladder, notebook 06's small-data ladder: rows read from records, sentences chosen by
comparing them (never typed), the chart, and its names kept in step with the recipe book."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from course import figures, ladder, recipes, runs


def record(name, acc, *, tta=None, params=100_000, epochs=10, seconds=600.0, speeds=(400, 800)):
    history = [{"epoch": e + 1, "img_per_s": speeds[e % len(speeds)]} for e in range(epochs)]
    rec = {"recipe": name, "params": params, "test_acc": acc, "train_seconds": seconds,
           "history": history, "hardware": "CPU test (2 cores), 2 torch thread(s)"}
    if tta is not None:
        rec["test_acc_flip_tta"] = tta
    return rec


def rows(**accs):
    """{run name: Row} from keyword names: vit=0.6, conv=0.7, seq=..., sincos=..., cnn=..."""
    names = dict(zip(("vit", "conv", "seq", "sincos"), ladder.RUNGS), cnn=ladder.CNN, final=ladder.FINAL)
    return {names[k]: ladder.row(record(names[k], acc)) for k, acc in accs.items()}


def test_row_reads_a_record():
    r = ladder.row(record("ladder-2-conv-stem", 0.7018, tta=0.7085, seconds=5589.5, speeds=(121, 453, 82)))
    assert (r.label, r.epochs, r.test_acc, r.tta) == ("+ conv tokenizer", 10, 0.7018, 0.7085)
    assert r.minutes == pytest.approx(93.16, abs=0.01)
    assert r.img_per_s == 453  # the fastest epoch, not the mean a shared machine drags down
    assert ladder.row(record("ladder-cnn", 0.8)).tta is None  # an older record without TTA


def test_cnn_sentence_comes_first_and_follows_the_numbers():
    wins = ladder.takeaways(rows(vit=0.60, conv=0.70, cnn=0.78))
    assert wins[0].startswith("At equal epochs (10) the CNN beats every ViT rung: 78.0%")
    assert "70.0% for ladder-2-conv-stem" in wins[0]
    loses = ladder.takeaways(rows(vit=0.60, conv=0.80, cnn=0.78))
    assert "the best ViT rung, ladder-2-conv-stem, is level with the CNN or ahead" in loses[0]
    assert not any("beats every" in line for line in loses)


def test_biggest_gain_is_picked_between_neighbouring_rungs_only():
    lines = ladder.takeaways(rows(vit=0.60, conv=0.65, seq=0.72, sincos=0.71))
    gain = next(line for line in lines if "buys the most" in line)
    assert gain.startswith("The change that buys the most is sequence pooling: +7.0 points")
    assert "the conv tokenizer +5.0, sequence pooling +7.0, sin-cos positions -1.0" in gain
    # rung 3 missing: 2 -> 4 is two changes at once, so no step is reported for rung 4
    assert [r.name for r, _ in ladder.steps(rows(vit=0.6, conv=0.7, sincos=0.75))] == [ladder.RUNGS[1]]
    assert ladder.steps(rows(vit=0.6, sincos=0.75)) == []
    none = ladder.takeaways(rows(vit=0.70, conv=0.69))
    assert any(line.startswith("No change raised test accuracy") for line in none)


def test_speed_sentence_names_the_slowest_run_against_the_tiny_vit():
    r = rows(vit=0.6, cnn=0.78)
    r[ladder.RUNGS[1]] = ladder.row(record(ladder.RUNGS[1], 0.7, speeds=(300,)))
    line = next(s for s in ladder.takeaways(r) if s.startswith("Equal epochs"))
    assert "ladder-2-conv-stem trained 300 images/s" in line and "2.7x slower than ladder-1-vit (800)" in line
    assert not any(s.startswith("Equal epochs") for s in ladder.takeaways(rows(conv=0.7, cnn=0.78)))


@pytest.mark.parametrize("acc, seconds, verdict", [
    (0.81, 80 * 60, "it meets the goal of >= 80% in <= 90 min"),
    (0.79, 80 * 60, "misses the goal (accuracy under 80%)"),
    (0.81, 95 * 60, "misses the goal (time over 90 min)"),
    (0.70, 95 * 60, "misses the goal (accuracy under 80% and time over 90 min)")])
def test_final_sentence_checks_both_halves_of_the_goal(acc, seconds, verdict):
    final = ladder.row(record(ladder.FINAL, acc, epochs=42, seconds=seconds))
    base = ladder.row(record("improved-cpu", 0.759, epochs=70, seconds=87 * 60))
    line = ladder.takeaways({ladder.FINAL: final}, baseline=base)[-1]
    assert line.startswith(f"ladder-final, 42 epochs: {acc:.1%} test (single view)") and verdict in line
    assert line.endswith("improved-cpu, the tiny ViT for 70 epochs, reached 75.9% in 87 min.")


def test_chart_draws_the_runs_there_are_readably():
    r = rows(vit=0.60, conv=0.70, cnn=0.78)
    r[ladder.FINAL] = ladder.row(record(ladder.FINAL, 0.81, tta=0.82, epochs=42, seconds=4500))
    fig = ladder.plot(r, title="ladder")
    ax = fig.axes[0]
    assert len(ax.patches) == 4  # one bar per run with a record; the missing rungs are absent
    colours = [p.get_facecolor() for p in ax.patches]
    assert colours[0] == colours[1] != colours[2] != colours[3]  # rungs, CNN, final
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[-1] == "final ViT\n42 epochs,\n75 min" and ticks[1] == "+ conv\ntokenizer"
    assert [round(h) for h in (p.get_height() for p in ax.patches)] == [60, 70, 78, 81]
    figures.check_readable(fig)
    plt.close(fig)


def test_names_and_goal_match_the_recipe_book():
    for name in (*ladder.RUNGS, ladder.CNN, ladder.FINAL):
        assert name in recipes.RECIPES and name in ladder.LABELS
    assert set(ladder.CHANGES) == set(ladder.RUNGS[1:])
    reference = recipes.RECIPES[ladder.FINAL].reference
    assert f">= {ladder.GOAL_ACC:.0%}" in reference and f"<= {ladder.GOAL_MINUTES} min" in reference


def test_shipped_ladder_records_read_as_rows():
    shipped = {n: runs.record(n) for n in (*ladder.RUNGS, ladder.CNN)}
    found = {n: ladder.row(rec) for n, rec in shipped.items() if rec is not None}
    assert found, "no ladder record is shipped"
    assert {r.epochs for r in found.values()} == {recipes.LADDER_EPOCHS}
    assert all(0 < r.test_acc < 1 and r.img_per_s > 0 for r in found.values())
