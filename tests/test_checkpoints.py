"""The shipped checkpoints in data/checkpoints/: each JSON record matches its weights file
(sha256, model config, strict load with weights_only=True), sizes stay within budget, the
recorded test accuracy is reproduced on the test set on disk, and RESULTS.md's results
table is the one tools.results makes from the records. Renamed recipes keep loading under
their old names."""
import json
import os
from pathlib import Path

import pytest
import torch

from course import env, recipes, runs
from tools import results

RECORDS = sorted(runs.CHECKPOINTS.glob("*.json"))
SHIPPED = [p for p in RECORDS if json.loads(p.read_text()).get("weights")]
NEEDED = ("recipe", "seed", "config", "params", "test_acc", "history", "train_seconds", "hardware", "torch",
          "data", "git_commit")


def test_budget():
    sizes = [p.stat().st_size for p in runs.CHECKPOINTS.glob("*.pt")]
    assert all(s <= 5 * 2**20 for s in sizes), "a shipped checkpoint is over 5 MB"
    assert sum(sizes) <= 25 * 2**20, "the shipped checkpoints are over 25 MB together"


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_record_fields(path):
    record = json.loads(path.read_text())
    assert not [k for k in NEEDED if k not in record], f"{path.name} lacks fields"
    assert 0.0 <= record["test_acc"] <= 1.0 and record["history"], path.name
    assert "JPEG q75" in record["data"] or "torchvision" in record["data"], record["data"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_weights_match_record(path):
    record = json.loads(path.read_text())
    weights = path.with_name(record["weights"])
    assert runs.sha256(weights) == record["sha256"], f"{weights.name} changed since its record was written"
    blob = torch.load(weights, map_location="cpu", weights_only=True)
    assert blob["config"] == record["config"]["model"]
    model = recipes.make_model(recipes.config_from_dict(blob["config"]))
    model.load_state_dict(blob["model"])  # strict: every key and shape must fit
    assert sum(p.numel() for p in model.parameters()) == record["params"]


@pytest.fixture(scope="module")
def cifar10_root():
    root = Path(os.environ.get("VIT_DATA", env.ROOT / "data"))
    assert (root / "cifar10" / "test").is_dir(), f"the CIFAR-10 copy is not unpacked under {root}"
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_recorded_accuracy_reproduces(path, cifar10_root):
    """The one record re-check (runs.verify): a shipped model still scores within 0.2 points of
    its record on the test set on disk. The lessons do not repeat it."""
    recorded, measured = runs.verify(path.stem, cifar10_root, device="cpu")
    assert abs(recorded - measured) <= runs.TOLERANCE


def test_every_record_carries_its_current_name():
    for path in RECORDS:
        record = json.loads(path.read_text())
        assert recipes.current_name(record["recipe"]) == record["recipe"], f"{path.name} carries an old recipe name"
        assert path.stem == recipes.run_name(record["recipe"], record["seed"]), path.name
        if record.get("weights"):
            assert record["weights"] == path.stem + ".pt"


@pytest.mark.parametrize("old, new", sorted(recipes.RENAMED.items()))
def test_an_old_name_still_loads(old, new):
    """Renamed recipes (RENAMED) keep loading by their old names: recipe, weights, record."""
    assert recipes.RECIPES[old] is recipes.RECIPES[new] and recipes.RECIPES.get(old) is recipes.RECIPES[new]
    assert runs.record(old)["recipe"] == new and runs.record(old + "-seed1")["seed"] == 1
    model, record = runs.shipped(old)
    assert record["recipe"] == new and sum(p.numel() for p in model.parameters()) == record["params"]
    assert recipes.recipe_of(dict(record, recipe=old)).name == new  # a record written before the rename
    assert runs.load_exported(old + "-seed1").state_dict().keys() == model.state_dict().keys()


def test_results_table_groups_seeds():
    base = {"about": "", "config": {}, "params": 10, "history": [{}], "train_seconds": 120.0, "hardware": "CPU",
            "data": "CIFAR-10 (JPEG q75 copy)", "train_images": 100, "test_images": 50, "reference": ""}
    rows = results.table([{**base, "recipe": "a", "seed": s, "test_acc": acc} for s, acc in [(0, 0.5), (1, 0.7)]])
    assert "60.0% ± 14.1% (2 seeds: 50.0%, 70.0%)" in rows and rows.count("| `a` |") == 1
    assert "2 min a run, CPU |" in rows  # one hardware, said once
    mixed = results.table([{**base, "recipe": "a", "seed": s, "test_acc": 0.5, "hardware": hw}
                           for s, hw in [(1, "GPU"), (0, "CPU")]])
    assert "seed 0: CPU; seed 1: GPU" in mixed  # different hardware: each seed's, in seed order


def test_results_md_is_current():
    assert results.RESULTS_MD.read_text() == results.document(), "run `python -m tools.results --write`"
    assert results.read_section(results.RESULTS_MD, results.RESULTS_SECTION) == results.table(
        results.load_records())


def test_results_table_names_renamed_recipes_by_their_current_name():
    base = {"about": "", "config": {}, "params": 10, "history": [{}], "train_seconds": 60.0, "hardware": "CPU",
            "data": "CIFAR-10", "train_images": 1, "test_images": 1, "reference": "", "test_acc": 0.5}
    old = next(iter(recipes.RENAMED))
    rows = results.table([{**base, "recipe": old, "seed": 0}, {**base, "recipe": recipes.RENAMED[old], "seed": 1}])
    assert f"| `{recipes.RENAMED[old]}` |" in rows and old not in rows and "2 seeds" in rows


def test_write_section_replaces_only_its_section(tmp_path):
    """The one writer of the README's generated sections (results and GPU tables)."""
    readme = tmp_path / "README.md"
    begin, end = results.markers("a table", "python -m tools.old")
    readme.write_text(f"intro\n{begin}\nold\n{end}\nmiddle\n<!-- other -->\nkeep\n<!-- end of other -->\n")
    assert results.read_section(readme, "a table") == "old"
    results.write_section(readme, "a table", "| new |", "python -m tools.new")
    new_begin, _ = results.markers("a table", "python -m tools.new")
    assert readme.read_text() == (f"intro\n{new_begin}\n| new |\n{end}\nmiddle\n<!-- other -->\nkeep\n"
                                  "<!-- end of other -->\n")
    assert results.read_section(readme, "a table") == "| new |" and results.read_section(readme, "absent") is None
    with pytest.raises(ValueError, match="no markers of the section 'absent'"):
        results.write_section(readme, "absent", "x")


def test_the_bench_section_shows_the_saved_output_or_says_it_has_not_run(tmp_path):
    from tools import results
    missing = results.bench_section(tmp_path / "no-such-bench.txt")
    assert len(missing) == 1 and missing[0].startswith("Not run yet")
    saved = results.ROOT / "data" / "bench-small-data-cpu.txt"
    shown = "\n".join(results.bench_section(saved))
    assert saved.read_text().strip() in shown and "img/s" in shown
