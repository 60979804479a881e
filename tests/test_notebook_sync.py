"""Every notebooks/NN_name.py has its .ipynb with the same inputs, committed with outputs."""
import json
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def inputs(path):
    return [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells if c.source.strip()]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_py_and_ipynb_inputs_match(source):
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: run `jupytext --to ipynb {source.name}` and execute it"
    assert inputs(source) == inputs(notebook), (
        f"{source.name} and {notebook.name} differ: run `jupytext --sync {source.name}`, then re-execute")


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_committed_notebook_carries_outputs(source):
    cells = json.loads(source.with_suffix(".ipynb").read_text())["cells"]
    assert any(c.get("outputs") for c in cells if c["cell_type"] == "code"), (
        f"{source.with_suffix('.ipynb').name} has no outputs: commit it executed")


def test_every_notebook_has_a_source():
    orphans = [p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.with_suffix(".py").exists()]
    assert not orphans, f"notebooks without a py:percent source: {orphans}"
