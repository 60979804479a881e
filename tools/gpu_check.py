"""Everything this project needs a GPU for, in one command: `python -m tools.gpu_check`.

    python -m tools.gpu_check                       # on a CUDA machine: all three parts, ~8 minutes
    python -m tools.gpu_check --readme              # then put its table into RESULTS.md
    python -m tools.gpu_check --device cpu --tiny --out /tmp/check.json   # the CPU test of this script

1. bench: training steps of ViT-B/16 at 224 px (tools.bench's one ViT-B/16 timing), fed by the
   data path (uint8 CIFAR-10 on the device -> crop, flip, resize to 224, normalise), in
   bfloat16 and in float16 with a GradScaler: images per second, the real peak memory, and
   course.memory's estimate for the same step beside it.
2. notebooks: the fast dev run of every notebook on this device (tools.rehearsal: full
   profile, fake data / random weights, a couple of steps per training run).
3. recipe: `gpu-06` from course.recipes (notebook 06's GPU recipe; goal >= 90% CIFAR-10 test
   in <= 10 minutes with <= 10 M parameters), trained and tested once.

It writes one JSON (default data/gpu_check.json on CUDA) that `--readme` turns into the
GPU section of RESULTS.md; the CPU test (`--tiny`) writes elsewhere and labels itself.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from pathlib import Path

import torch

from vit_core import ViTConfig
from vit_core.data import load_tensors
from vit_core.train import TrainConfig

from course import env, memory, recipes, runs
from tools import bench as benchmark
from tools import rehearsal
from tools.results import read_section, write_section

RESULTS = env.ROOT / "data" / "gpu_check.json"
RESULTS_MD = env.ROOT / "RESULTS.md"
SECTION, COMMAND = "gpu table", "python -m tools.gpu_check --readme"
# --tiny: a model small enough to test this script on a CPU in seconds (its numbers mean nothing)
CPU_TEST_MODEL = ViTConfig.cifar10_tiny(image_size=32, patch_size=8, dim=32, depth=2, heads=2, mlp_dim=64)


def bench(device, tiny: bool, batch_size: int, steps: int) -> list[dict]:
    """ViT-B/16 at 224 px (or CPU_TEST_MODEL) in bfloat16 and float16, with the data path, timed
    by tools.bench; course.memory's estimate of the same step beside each row."""
    config = CPU_TEST_MODEL if tiny else ViTConfig.vit_b_16(num_classes=10, cls_only_last_block=True)
    images, _ = load_tensors("cifar10", "train", env.data_dir())
    rows = benchmark.vit_b16(device, config, batch_size, steps, rounds=1, models=("vit_core",),
                             trained=("all blocks",), dtypes=("bfloat16", "float16"), images=images[:batch_size])
    model = memory.meta_vit(config)
    for row in rows:
        estimate = memory.step_memory(model, config.image_size, TrainConfig(amp_dtype=row["dtype"]),
                                      memory.AMP_DTYPES[row["dtype"]])
        row["model"] = f"{config.image_size} px, patch {config.patch_size}, dim {config.dim}, depth {config.depth}"
        row["estimate_gb"] = estimate.peak(batch_size) / memory.GB
        row["estimate_allocated_gb"] = row["estimate_gb"] - memory.OVERHEAD_GB
        peak = f", peak {row['peak_allocated_gb']:.2f} GB allocated" if row["peak_allocated_gb"] is not None else ""
        print(f"bench {row['model']}, {row['dtype']}, batch {row['batch']}: {row['img_per_s']:,.0f} img/s{peak}, "
              f"estimate {row['estimate_allocated_gb']:.2f} GB allocated (+{memory.OVERHEAD_GB:.0f} GB overhead)")
    return rows


def notebook_times(junit: Path) -> dict[str, dict]:
    """{notebook: {'passed', 'seconds', 'cells'}} from pytest's JUnit XML (nbval: one test per cell)."""
    out: dict[str, dict] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        # nbval names a cell's notebook in classname ("notebooks.08_finetune_cifar100.ipynb");
        # some junit writers add file="notebooks/08_finetune_cifar100.ipynb"
        where = (case.get("file") or case.get("classname") or "?").removesuffix(".ipynb")
        name = re.split(r"[/.]", where)[-1]
        row = out.setdefault(name, {"passed": True, "seconds": 0.0, "cells": 0})
        row["seconds"] += float(case.get("time", 0))
        row["cells"] += 1
        row["passed"] &= not any(child.tag in ("failure", "error") for child in case)
    return out


def notebooks(device, prefixes) -> dict[str, dict]:
    """The fast dev run of the notebooks on `device` (tools.rehearsal); per-notebook results."""
    with tempfile.TemporaryDirectory(prefix="vit-gpu-check-") as folder:
        junit = Path(folder) / "junit.xml"
        extra = {"CUDA_VISIBLE_DEVICES": ""} if device.type == "cpu" else {}
        code = rehearsal.run(prefixes, workdir=Path(folder) / "work", junit=junit, extra_env=extra)
        rows = notebook_times(junit) if junit.is_file() else {}
    print(f"notebooks: pytest exit code {code}; " + ", ".join(
        f"{name[:2]} {'ok' if r['passed'] else 'FAILED'} {r['seconds']:.0f} s" for name, r in rows.items()))
    return rows


def recipe(device, tiny: bool) -> dict:
    """Train and test `gpu-06` once (tiny: a scaled-down copy that only checks this code runs)."""
    chosen = recipes.RECIPES["gpu-06"]
    if tiny:
        small = recipes.scaled_down(chosen, epochs=1, steps=2, train_per_class=20)
        chosen = replace(small, batch_size=16, model=replace(CPU_TEST_MODEL, cls_only_last_block=True),
                         train=replace(small.train, compile=False))
    with tempfile.TemporaryDirectory(prefix="vit-gpu-06-") as folder:
        _, record = runs.run(chosen, folder, env.data_dir(), device=device, progress=False)
    keep = ("recipe", "about", "params", "test_acc", "train_seconds", "hardware", "data", "reference", "git_commit")
    return {**{k: record[k] for k in keep}, "epochs": len(record["history"]),
            "final_train_loss": record["history"][-1]["train_loss"]}


# ---------------------------------------------------------------- the JSON and the GPU section of RESULTS.md

def _gb(value) -> str:
    return "—" if value is None else f"{value:.2f} GB"


def table(results: dict | None) -> str:
    """The GPU section of RESULTS.md, made from the JSON (None: the script has not run on a GPU)."""
    if results is None:
        return ("**Not run yet.** No GPU has been available to this project, so `python -m tools.gpu_check` "
                "has never run: this section holds no GPU number.")
    label = " — a TINY CPU test of the script, not a result" if results["tiny"] else ""
    lines = [f"Measured by `python -m tools.gpu_check` on {results['hardware']} (torch {results['torch']}, "
             f"commit {results['git_commit'][:12]}, {results['finished']}), {results['seconds']['total']:.0f} s "
             f"in all{label}.", "",
             "| bench: training step | autocast | batch | img/s | peak memory (allocated) | estimate (allocated) |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']}, data path | {r['dtype']} | {r['batch']} | {r['img_per_s']:,.0f} | "
              f"{_gb(r['peak_allocated_gb'])} | {_gb(r['estimate_allocated_gb'])} |" for r in results["bench"]]
    lines += ["", "| notebook, fast dev run (fake data / random weights) | cells | result | seconds |",
              "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {r['cells']} | {'passed' if r['passed'] else 'FAILED'} | {r['seconds']:.0f} |"
              for name, r in results["notebooks"].items()]
    if results.get("ddp"):
        d = results["ddp"]
        lines += ["", ("2-process DDP smoke run (torchrun): "
                       + ("passed" if d.get("passed") else "FAILED") if d["ran"] else
                       f"2-process DDP smoke run: skipped, {d['why']}.")]
    if results.get("recipe"):
        r = results["recipe"]
        lines += ["", "| recipe | params | epochs | test accuracy | training time | goal |", "| --- | --- | --- | --- | --- | --- |",
                  f"| `{r['recipe']}` ({r['data']}) | {r['params']:,} | {r['epochs']} | {r['test_acc']:.2%} | "
                  f"{r['train_seconds'] / 60:.1f} min | {r['reference']} |"]
    return "\n".join(lines)


def load(path: Path = RESULTS) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def readme_section(readme: Path = RESULTS_MD) -> str | None:
    return read_section(readme, SECTION)


def write_readme(results: dict | None, readme: Path = RESULTS_MD) -> None:
    write_section(readme, SECTION, table(results), COMMAND)


def ddp(device) -> dict:
    """A 2-process DDP smoke run of improved-cpu's recipe under torchrun, one GPU a process;
    skipped (and said so) on a machine with fewer than two GPUs."""
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus < 2:
        return {"ran": False, "why": f"{gpus} GPU(s) here: DistributedDataParallel needs two"}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "course.recipes", "run", "improved-cpu", "--smoke", "--out", out,
               "--device", "cuda", "--data", str(env.data_dir())]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        files = sorted(p.name for p in Path(out).iterdir())
    return {"ran": True, "passed": done.returncode == 0, "files": files, "tail": done.stderr[-2000:]}


def check(device: torch.device, parts, tiny: bool, batch_size: int, steps: int, prefixes) -> dict:
    """Run the chosen parts; the results as one dict (what the JSON holds)."""
    results = {"hardware": env.hardware(device), "torch": torch.__version__, "git_commit": runs.git_commit(),
               "device": device.type, "tiny": tiny, "bench": [], "notebooks": {}, "recipe": None, "seconds": {}}
    start = time.perf_counter()
    for part, run_part in (("bench", lambda: bench(device, tiny, batch_size, steps)),
                           ("notebooks", lambda: notebooks(device, prefixes)),
                           ("recipe", lambda: recipe(device, tiny)),
                           ("ddp", lambda: ddp(device))):
        if part in parts:
            t = time.perf_counter()
            results[part] = run_part()
            results["seconds"][part] = time.perf_counter() - t
            print(f"== {part} took {results['seconds'][part]:.0f} s", flush=True)
    results["seconds"]["total"] = time.perf_counter() - start
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=str(env.get_device()))
    parser.add_argument("--parts", nargs="+", default=["bench", "notebooks", "recipe", "ddp"],
                        choices=["bench", "notebooks", "recipe", "ddp"])
    parser.add_argument("--notebooks", nargs="+", default=["all"], help="prefixes for the fast dev run (default: all)")
    parser.add_argument("--batch-size", type=int, default=None, help="bench batch (default 128; 8 with --tiny)")
    parser.add_argument("--steps", type=int, default=10, help="timed bench steps per dtype")
    parser.add_argument("--tiny", action="store_true", help="tiny model and recipe: tests this script on a CPU")
    parser.add_argument("--out", type=Path, default=None, help=f"the JSON (default on CUDA: {RESULTS})")
    parser.add_argument("--readme", action="store_true", help="only write the GPU section of RESULTS.md from the JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    out = args.out or (RESULTS if device.type == "cuda" and not args.tiny else env.data_dir() / "gpu_check-test.json")
    if args.readme:
        write_readme(load(out))
        return load(out) or {}
    batch_size = args.batch_size or (8 if args.tiny else 128)
    results = check(device, args.parts, args.tiny, batch_size, args.steps, args.notebooks)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}\n\n{table(results)}")
    return results


if __name__ == "__main__":
    main()
