"""RESULTS.md, made from the JSON records in data/checkpoints/: what each shipped run is, its
table, and the GPU check's section; and the one writer of generated markdown sections.

    python -m tools.results          # print RESULTS.md as it would be written
    python -m tools.results --write  # write RESULTS.md

Runs of one recipe with several seeds become one row: mean ± sample standard deviation.
tests/test_checkpoints.py fails when RESULTS.md and the records disagree.
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

RESULTS_MD = ROOT / "RESULTS.md"
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


def runs_described(records: list[dict]) -> str:
    """One bullet per recipe: what it is (the record's own description) and what it measured."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(current_name(record["recipe"]), []).append(record)
    lines = []
    for name, runs in groups.items():
        accs = [r["test_acc"] for r in runs]
        lines.append(f"- **`{name}`**: {runs[0]['about']}. Test accuracy {_percent(accs)}, "
                     f"{_minutes([r['train_seconds'] for r in runs])} of training.")
    return "\n".join(lines)


BENCH_TXT = ROOT / "data" / "bench-small-data-cpu.txt"
BENCH_COMMAND = "python -m tools.bench --models small-data --threads 2"


def bench_section(path: Path = BENCH_TXT) -> list[str]:
    """The saved output of the small-data benchmark, as measured, or a line saying it has not run."""
    if not path.is_file():
        return [f"Not run yet: `{BENCH_COMMAND} > {BENCH_TXT.relative_to(ROOT)}`."]
    return ["`ladder-final`'s model against its nearest timm and torchvision equivalents and the",
            "ladder's ResNet: the output of the command on its first line, as saved in",
            f"`{path.relative_to(ROOT)}` (ratios within one run are what compare):", "",
            "```", path.read_text().strip(), "```"]


def document(folder: Path = CHECKPOINTS) -> str:
    """The whole of RESULTS.md."""
    from tools import gpu_check  # it imports this module's section writer

    records = load_records(folder)
    begin, end = markers(RESULTS_SECTION, RESULTS_COMMAND)
    gpu_begin, gpu_end = markers(gpu_check.SECTION, gpu_check.COMMAND)
    return "\n".join([
        "# Results", "",
        f"Made by `{RESULTS_COMMAND}` from the JSON records in `data/checkpoints/`; every number",
        "below was measured by the run that wrote its record. Test accuracy is on the test images",
        "named in the data column, measured once, after training; a reference is the source's own",
        "figure, not measured here.", "",
        "## The table", "", begin, table(records), end, "",
        "## What each run is", "", runs_described(records), "",
        "## Speed on the CPU", "", *bench_section(), "",
        "## On a GPU", "", gpu_begin, gpu_check.table(gpu_check.load()), gpu_end, ""])


def write(path: Path = RESULTS_MD, folder: Path = CHECKPOINTS) -> None:
    Path(path).write_text(document(folder))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.results", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write RESULTS.md")
    args = parser.parse_args(argv)
    if args.write:
        write()
        print(f"wrote {RESULTS_MD}")
    else:
        print(document())


if __name__ == "__main__":
    main()
