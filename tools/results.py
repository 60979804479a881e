"""The README's results table, made from the JSON records in data/checkpoints/, and the one
writer of the README's generated sections (this table, tools.gpu_check's GPU table).

    python -m tools.results          # print the table (markdown)
    python -m tools.results --write  # replace the table between the README's markers

Runs of one recipe with several seeds become one row: mean ± sample standard deviation.
tests/test_checkpoints.py fails when the README's table and the records disagree.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from course.env import ROOT
from course.recipes import RECIPES, current_name
from course.runs import CHECKPOINTS

README = ROOT / "README.md"
RESULTS_SECTION, RESULTS_COMMAND = "results table", "python -m tools.results --write"


# ---------------------------------------------------------------- generated README sections

def markers(name: str, command: str = "") -> tuple[str, str]:
    """The HTML comments around a generated section: '<!-- NAME: made by `COMMAND` -->' and
    '<!-- end of NAME -->'."""
    made_by = f": made by `{command}`" if command else ""
    return f"<!-- {name}{made_by} -->", f"<!-- end of {name} -->"


def _find(text: str, name: str) -> re.Match | None:
    # the opening marker is found whatever command it names, so a renamed command rewrites it
    return re.search(rf"<!-- {re.escape(name)}(?:: [^\n]*?)? -->\n?(.*?)\n?<!-- end of {re.escape(name)} -->",
                     text, flags=re.S)


def read_section(path: Path, name: str) -> str | None:
    """The text between a section's markers in `path` (None if the markers are missing)."""
    found = _find(Path(path).read_text(), name)
    return None if found is None else found.group(1).strip()


def write_section(path: Path, name: str, text: str, command: str = "") -> None:
    """Replace the text between a section's markers in `path` by `text` (the opening marker
    then names `command`); raises when the markers are missing."""
    path = Path(path)
    old = path.read_text()
    found = _find(old, name)
    if found is None:
        begin, end = markers(name, command)
        raise ValueError(f"{path} has no markers of the section '{name}': add the lines\n{begin}\n{end}")
    begin, end = markers(name, command)
    path.write_text(f"{old[:found.start()]}{begin}\n{text}\n{end}{old[found.end():]}")


# ---------------------------------------------------------------- the results table

def load_records(folder: Path = CHECKPOINTS) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def _percent(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1%}"
    mean, std = statistics.mean(values), statistics.stdev(values)
    seeds = ", ".join(f"{v:.1%}" for v in values)
    return f"{mean:.1%} ± {std:.1%} ({len(values)} seeds: {seeds})"


def _minutes(seconds: list[float]) -> str:
    mean = statistics.mean(seconds) / 60
    return f"{mean:.0f} min" + (" a run" if len(seconds) > 1 else "")


def _reference(record: dict) -> str:
    """The citation a run is compared with: the recipe book's current one (a corrected citation
    needs no retraining), or the record's own for a recipe the book no longer has."""
    recipe = RECIPES.get(record["recipe"])
    return recipe.reference if recipe is not None else record["reference"]


def table(records: list[dict]) -> str:
    """One markdown row per recipe (under its current name), in the order first seen."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(current_name(record["recipe"]), []).append(record)
    lines = ["| recipe | data | params | epochs | test accuracy | training time, hardware | reference (not measured here) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        first = runs[0]
        data = f"{first['data']}: {first['train_images']:,} train / {first['test_images']:,} test"
        kinds = {r["hardware"] for r in runs}
        hardware = kinds.pop() if len(kinds) == 1 else "; ".join(f"seed {r['seed']}: {r['hardware']}" for r in runs)
        lines.append(f"| `{name}` | {data} | {first['params']:,} | {len(first['history'])} | "
                     f"{_percent([r['test_acc'] for r in runs])} | "
                     f"{_minutes([r['train_seconds'] for r in runs])}, {hardware} | {_reference(first) or '—'} |")
    return "\n".join(lines)


def readme_table(readme: Path = README) -> str | None:
    """The table currently between the README's markers (None if the markers are missing)."""
    return read_section(readme, RESULTS_SECTION)


def write_readme(readme: Path = README, folder: Path = CHECKPOINTS) -> None:
    write_section(readme, RESULTS_SECTION, table(load_records(folder)), RESULTS_COMMAND)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    if args.write:
        write_readme()
    print(table(load_records()))


if __name__ == "__main__":
    main()
