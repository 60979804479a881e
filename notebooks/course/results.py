"""The README's results table, made from the JSON records in data/checkpoints/.

    python -m course.results          # print the table (markdown)
    python -m course.results --write  # replace the table between the README's markers

Runs of one recipe with several seeds become one row: mean ± sample standard deviation.
tests/test_checkpoints.py fails when the README's table and the records disagree.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from .recipes import CHECKPOINTS, RECIPES, REPO

BEGIN, END = "<!-- results table: made by `python -m course.results --write` -->", "<!-- end of results table -->"


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
    """One markdown row per recipe, in the order the records were first seen."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["recipe"], []).append(record)
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


def readme_table(readme: Path = REPO / "README.md") -> str | None:
    """The table currently between the README's markers (None if the markers are missing)."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_readme(readme: Path = REPO / "README.md", folder: Path = CHECKPOINTS) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no results-table markers: add the lines\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{BEGIN}\n{table(load_records(folder))}\n{END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course.results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    if args.write:
        write_readme()
    print(table(load_records()))


if __name__ == "__main__":
    main()
