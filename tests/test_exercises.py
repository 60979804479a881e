"""Every notebook ends with 2-4 numbered exercises and a "Solutions (run by CI)" section whose
code cells assert what they claim; nbval (`pytest --nbval-lax notebooks`) runs those cells."""
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


def cells(path: Path) -> list[tuple[str, str]]:
    """(kind, text) of every py:percent cell: kind is 'markdown' or 'code'."""
    parts = re.split(r"^# %%(.*)$", path.read_text(), flags=re.M)
    return [("markdown" if "[markdown]" in header else "code", body)
            for header, body in zip(parts[1::2], parts[2::2])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_notebook_ends_with_exercises_and_tested_solutions(path):
    all_cells = cells(path)
    heads = [i for i, (kind, text) in enumerate(all_cells) if kind == "markdown" and "# ## Exercises" in text]
    assert len(heads) == 1, f"{path.name}: expected one '## Exercises' section"
    exercises = all_cells[heads[0]][1].split("Solutions (run by CI)")[0]
    numbered = re.findall(r"^# (\d)\. \*\*", exercises, flags=re.M)
    assert 2 <= len(numbered) <= 4, f"{path.name}: {len(numbered)} numbered exercises"
    rest = all_cells[heads[0]:]  # the solutions heading may share the exercises' cell
    start = next(i for i, (kind, text) in enumerate(rest) if "Solutions (run by CI)" in text)
    solutions = [text for kind, text in rest[start + 1:] if kind == "code"]
    asserting = [text for text in solutions if re.search(r"^\s*assert ", text, flags=re.M)]
    assert len(asserting) >= len(numbered) - 1, f"{path.name}: too few solution cells assert their claim"
    assert all(kind != "markdown" or "Exercise" not in text for kind, text in rest[start + 1:])
