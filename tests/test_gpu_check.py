"""tools.gpu_check, the prepared GPU script: its CPU-runnable parts at tiny sizes (bench
through fit's own step in bfloat16 and float16, the scaled-down gpu-06 recipe, the JSON and
the GPU section of RESULTS.md), so that the one GPU run it waits for finds working code."""
import json

import pytest

from course import recipes
from tools import gpu_check
from tools.results import markers
from vit_core import ViT


def test_tiny_cpu_run_writes_the_json_and_the_table(tmp_path, capsys):
    out = tmp_path / "check.json"
    results = gpu_check.main(["--device", "cpu", "--tiny", "--parts", "bench", "recipe", "--steps", "2",
                              "--out", str(out)])
    assert json.loads(out.read_text()) == results
    assert [row["dtype"] for row in results["bench"]] == ["bfloat16", "float16"]
    for row in results["bench"]:
        assert row["img_per_s"] > 0 and row["peak_allocated_gb"] is None and 0 < row["estimate_allocated_gb"] < 1
    recipe = results["recipe"]
    assert recipe["recipe"] == "gpu-06-scaled-down" and recipe["epochs"] == 1 and 0 <= recipe["test_acc"] <= 1
    assert results["tiny"] and results["device"] == "cpu" and set(results["seconds"]) == {"bench", "recipe", "total"}
    table = gpu_check.table(results)
    assert "TINY CPU test of the script, not a result" in table and "| 32 px, patch 8" in table
    assert "`gpu-06-scaled-down`" in capsys.readouterr().out


def test_gpu_06_is_within_the_goal_s_parameter_budget():
    recipe = recipes.RECIPES["gpu-06"]
    params = sum(p.numel() for p in ViT(recipe.model).parameters())
    assert params <= 10_000_000 and recipe.mix and recipe.train.epochs == 100


def test_notebook_times_read_junit(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="notebooks.05_vision_transformer" name="Cell 0" file="notebooks/05_vision_transformer.ipynb" time="1.5"/>'
        '<testcase classname="notebooks.05_vision_transformer" name="Cell 1" file="notebooks/05_vision_transformer.ipynb" time="2.0"/>'
        '<testcase classname="notebooks.08_finetune_cifar100" name="Cell 0" file="notebooks/08_finetune_cifar100.ipynb" time="3">'
        '<failure message="boom"/></testcase>'
        # what nbval writes: the notebook in classname only, with its .ipynb
        '<testcase classname="notebooks.11_reading_huggingface_vit.ipynb" name="Cell 0" time="4.5"/>'
        '<testcase classname="notebooks.11_reading_huggingface_vit.ipynb" name="Cell 1" time="1">'
        '<error message="kernel died"/></testcase></testsuite></testsuites>')
    rows = gpu_check.notebook_times(junit)
    assert rows == {"05_vision_transformer": {"passed": True, "seconds": 3.5, "cells": 2},
                    "08_finetune_cifar100": {"passed": False, "seconds": 3.0, "cells": 1},
                    "11_reading_huggingface_vit": {"passed": False, "seconds": 5.5, "cells": 2}}


def test_readme_says_plainly_whether_the_gpu_check_ran():
    section = gpu_check.readme_section()
    assert section is not None, "RESULTS.md lacks the GPU-table markers"
    assert section == gpu_check.table(gpu_check.load()), "run `python -m tools.gpu_check --readme`"
    if gpu_check.load() is None:
        assert section.startswith("**Not run yet.**")


def test_write_readme_replaces_only_the_section(tmp_path):
    readme = tmp_path / "README.md"
    begin, end = markers(gpu_check.SECTION, gpu_check.COMMAND)
    readme.write_text(f"intro\n{begin}\nold\n{end}\noutro\n")
    gpu_check.write_readme(None, readme)
    assert readme.read_text() == f"intro\n{begin}\n{gpu_check.table(None)}\n{end}\noutro\n"
    other = tmp_path / "other.md"
    other.write_text("nothing here\n")
    with pytest.raises(ValueError, match="no markers of the section 'gpu table'"):
        gpu_check.write_readme(None, other)
