"""Run, record and export the named recipes of `course.recipes`, the same way from a notebook
or a shell, and give a notebook a recipe's trained model: the shipped one or one trained here.

    python -m course.recipes list                                 # (this module's main)
    python -m course.recipes run tintn --out ~/vit-runs/tintn --threads 1
    python -m course.recipes export --run ~/vit-runs/tintn       # name: run_name(recipe, seed)

`run` trains to completion with a progress bar, resumes after a kill (run it again with the
same --out), and writes checkpoint.pt, history.json and record.json into --out. `export`
copies the finished weights (float32, ~0.5 MB for the tiny ViT) and the record into
data/checkpoints/, where the notebooks and the tests find them. Select recipes on the
validation split a recipe carves from train; test accuracy is measured once, at the end.

In a notebook, `get(recipe, seed, retrain=..., data_root=..., device=...)` returns (model,
record): in the full profile the shipped run, or the recipe trained here when `retrain` or
when nothing is shipped (resumable: run the cell again). The smoke profile (CI) first trains a
scaled-down copy for a few steps, once per recipe (the loop runs; its numbers mean nothing),
then loads the shipped run; a run that is not shipped is replaced by the scaled-down one, and
the notebook says so. A fast dev run (course.env) trains what is not shipped for 2 steps.
Whether a shipped model still scores its record is the project's check, not the lesson's:
`verify`, which tests/test_checkpoints.py runs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from vit_core import ViT, distributed
from vit_core import augment as aug
from vit_core.data import TensorLoader, load_tensors, source_name, subset, train_val_split
from vit_core.train import TrainConfig, evaluate, fit, freeze_all_but_last, replace_head

from course import env, jpeg
from course.recipes import (AUGMENTS, NORMALIZE, RECIPES, Recipe, config_from_dict, current_name, make_model,
                            recipe_of, run_name, scaled_down)

CHECKPOINTS = env.ROOT / "data" / "checkpoints"
TOLERANCE = 0.002  # a shipped model re-measured on the test set on disk vs its record: 0.2 points
STAND_IN_SUFFIXES = ("-scaled-down", "-fast-dev")  # recipe names of the few-step runs of CI and rehearsals


# ---------------------------------------------------------------- data and model

def loaders(recipe: Recipe, data_root, device=None, seed: int = 0) -> dict[str, TensorLoader]:
    """{'train', 'val' (when the recipe carves one), 'test'} loaders for the recipe's data."""
    images, labels = load_tensors("cifar10", "train", data_root)
    test_images, test_labels = load_tensors("cifar10", "test", data_root)
    if recipe.classes is not None:
        images, labels = subset(images, labels, classes=recipe.classes)
        test_images, test_labels = subset(test_images, test_labels, classes=recipe.classes)
    splits = {}
    if recipe.val_per_class:
        images, labels, *splits["val"] = train_val_split(images, labels, recipe.val_per_class)
    if recipe.train_per_class is not None:
        images, labels = subset(images, labels, per_class=recipe.train_per_class, seed=seed)
    splits["train"], splits["test"] = (images, labels), (test_images, test_labels)
    mean, std = NORMALIZE[recipe.normalize]
    mix = aug.mixup_or_cutmix(recipe.model.num_classes) if recipe.mix else None
    return {name: TensorLoader(*tensors, batch_size=recipe.batch_size if name == "train" else 500,
                               train=name == "train", augment=AUGMENTS[recipe.augment]() if name == "train" else False,
                               mix=mix if name == "train" else None, mean=mean, std=std, device=device, seed=seed)
            for name, tensors in splits.items()}


def build_model(recipe: Recipe, seed: int = 0) -> ViT:
    """The recipe's model: fresh (initialised from `seed`, the caller's RNG left alone), or
    initialised from another recipe's exported weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_model(recipe.model)
    if recipe.init_from is None:
        return model
    model = load_exported(recipe.init_from)
    model.config = replace(model.config, cls_only_last_block=recipe.model.cls_only_last_block)
    with torch.random.fork_rng(devices=[]):  # a default-init head is drawn from `seed` too
        torch.manual_seed(seed)
        replace_head(model, recipe.model.num_classes, zero_init=recipe.zero_head)
    if recipe.trainable_blocks is not None:
        freeze_all_but_last(model, recipe.trainable_blocks, train_norm=recipe.train_norm)
    return model


# ---------------------------------------------------------------- run, record, export

def data_label(root, every: int = 1000) -> str:
    """The record's name for the CIFAR-10 copy in `root`: vit_core's label, plus the JPEG
    quality when every sampled file (every `every`-th, train and test) uses the same IJG one."""
    label = source_name("cifar10", root)
    folder = Path(root) / "cifar10"
    if "JPEG" not in label or not folder.is_dir():
        return label
    qualities = {quality for quality, *_ in jpeg.survey(folder, every)}
    return label.replace("JPEG copy", f"JPEG q{qualities.pop()} copy") if (
        len(qualities) == 1 and None not in qualities) else label


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(env.ROOT), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class KeepBest:
    """fit's on_epoch_end: save the weights of the best validation epoch to best.pt (on disk,
    so a resumed run remembers them). `run_id` names the run; a best.pt left by another run
    in the same folder (another seed or config) is ignored and overwritten."""

    def __init__(self, out_dir: Path, run_id: str):
        self.path, self.run_id = out_dir / "best.pt", run_id
        saved = torch.load(self.path, weights_only=True) if self.path.is_file() else {}
        self.best = saved["val_acc"] if saved.get("run_id") == run_id else -1.0

    def __call__(self, model, entry: dict):
        if entry["test_acc"] > self.best:  # fit's 'test_acc' is measured on the loader it was given: val here
            self.best = entry["test_acc"]
            torch.save({"model": model.state_dict(), "val_acc": self.best, "epoch": entry["epoch"],
                        "run_id": self.run_id}, self.path)


def _record(recipe: Recipe, config: TrainConfig, model, data, history, test, data_root, commit, extra,
            device=None) -> dict:
    return {"recipe": recipe.name, "about": recipe.about, "seed": config.seed,
            "config": {"model": asdict(model.config), "train": asdict(config),
                       **{k: v for k, v in asdict(recipe).items() if k not in ("name", "about", "model", "train")}},
            "params": sum(p.numel() for p in model.parameters()),
            "train_images": len(data["train"].labels), "val_images": len(data["val"].labels) if "val" in data else 0,
            "test_images": len(data["test"].labels), "test_acc": test["acc"], "test_loss": test["loss"],
            "curves_on": "val" if "val" in data else "test", "history": history,
            "train_seconds": sum(h["seconds"] for h in history), "hardware": env.hardware(device, history),
            "torch": torch.__version__,
            "data": data_label(data_root), "git_commit": commit, "reference": recipe.reference,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), **extra}


def _claim(out_dir: Path, run_id: str) -> None:
    """Mark out_dir as this run's folder; a folder left by another run (another seed, a
    changed recipe) is emptied first, so nothing of that run is resumed or reported."""
    marker = out_dir / "run_id.json"
    if marker.is_file() and marker.read_text() != run_id:
        print(f"{out_dir} holds another run (its recipe or seed differ): starting afresh")
        for name in ("checkpoint.pt", "best.pt", "history.json", "record.json"):
            (out_dir / name).unlink(missing_ok=True)
    marker.write_text(run_id)


def run(recipe: Recipe, out_dir, data_root, seed: int = 0, device=None, progress: bool = True) -> tuple[ViT, dict]:
    """Train `recipe` (resuming from out_dir if it holds a checkpoint), test once, write
    record.json; returns the tested model and its record."""
    commit = git_commit()  # the code this process runs: read now, not after hours of work on the tree
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = loaders(recipe, data_root, device, seed)
    model = build_model(recipe, seed)
    config = replace(recipe.train, seed=seed)
    run_id = json.dumps({"recipe": asdict(recipe) | {"about": ""}, "train": asdict(config)}, sort_keys=True, default=str)
    main = distributed.is_main()  # under torchrun only process 0 writes files
    if main:
        _claim(out_dir, run_id)
    distributed.wait_for_all()
    keep = KeepBest(out_dir, run_id) if recipe.keep_best else None
    # Curves on val when the recipe carves one; otherwise on test, as the seeds' own code did
    # (their recipes are fixed, nothing is selected on those curves).
    history = fit(model, data["train"], data.get("val", data["test"]), config, out_dir=out_dir, resume=True,
                  device=device, progress=progress, on_epoch_end=keep,
                  eval_name="val" if "val" in data else "test")
    extra = {}
    if keep is not None:
        best = torch.load(keep.path, weights_only=True)
        model.load_state_dict(best["model"])
        extra = {"selected_epoch": best["epoch"], "selected_val_acc": best["val_acc"]}
    test = evaluate(model, data["test"])
    extra["test_acc_flip_tta"] = evaluate(model, data["test"], flip=True)["acc"]  # beside, never instead
    world = distributed.rank_and_world()[1]
    if world > 1:
        extra["processes"] = world  # DDP: each took batch_size / processes images of every batch
    record = _record(recipe, config, model, data, history, test, data_root, commit, extra, device)
    if not main:
        return model, record
    (out_dir / "record.json").write_text(json.dumps(record, indent=1))
    print(f"{recipe.name} seed {seed}: test accuracy {test['acc']:.2%} after {len(history)} epochs, "
          f"{record['train_seconds'] / 60:.1f} min of training on {record['hardware']}")
    return model, record


def shipped(name: str, dest: Path = CHECKPOINTS) -> tuple[ViT, dict] | None:
    """(model, record) of the shipped run `name` (run_name(recipe, seed)), or None when its
    weights or record are not in dest."""
    name = current_name(name)
    if not (dest / f"{name}.pt").is_file() or not (dest / f"{name}.json").is_file():
        return None
    return load_exported(name, dest), record(name, dest)


def record(name: str, dest: Path = CHECKPOINTS) -> dict | None:
    """The JSON record data/checkpoints/<name>.json (shipped with or without its weights), or None."""
    path = dest / f"{current_name(name)}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def load_or_train(recipe: Recipe, retrain: bool, data_root, device=None, seed: int = 0) -> tuple[ViT, dict]:
    """The shipped run of `recipe` unless `retrain` (or none is shipped); otherwise train it into
    <data_root>/runs/<run_name>/ (resumable: run the cell again)."""
    name = run_name(recipe.name, seed)
    found = None if retrain else shipped(name)
    if found is not None:
        return found
    return run(recipe, Path(data_root) / "runs" / name, data_root, seed=seed, device=device)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(run_dir, name: str | None = None, dest: Path = CHECKPOINTS, weights: bool = True) -> Path:
    """Copy a finished run's record into dest/<name>.json and, unless weights=False (a run
    whose numbers are shown but whose model is never loaded), its weights (state dict +
    model config, float32) into dest/<name>.pt; the record gains the weights' sha256."""
    run_dir = Path(run_dir).expanduser()
    record = json.loads((run_dir / "record.json").read_text())
    name = name or run_name(record["recipe"], record["seed"])
    dest.mkdir(parents=True, exist_ok=True)
    if weights:
        weights_file = run_dir / ("best.pt" if (run_dir / "best.pt").is_file() else "checkpoint.pt")
        blob = torch.load(weights_file, map_location="cpu", weights_only=True)
        torch.save({"model": blob["model"], "config": record["config"]["model"]}, dest / f"{name}.pt")
        record["weights"], record["sha256"] = f"{name}.pt", sha256(dest / f"{name}.pt")
    (dest / f"{name}.json").write_text(json.dumps(record, indent=1))
    return dest / f"{name}.json"


def load_exported(name: str, dest: Path = CHECKPOINTS) -> ViT:
    """A shipped model by name (data/checkpoints/<name>.pt; an old name finds the renamed file),
    loaded with weights_only=True."""
    path = dest / f"{current_name(name)}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no exported weights at {path}: run `python -m course.recipes run {name} --out DIR` "
                                f"and `python -m course.recipes export --run DIR` first")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = make_model(config_from_dict(blob["config"]))
    model.load_state_dict(blob["model"])
    return model


def verify(name: str, data_root, dest: Path = CHECKPOINTS, device=None) -> tuple[float, float]:
    """The one record re-check: (recorded, measured) test accuracy of the shipped run `name` on
    the test set on disk. Raises when its weights changed since the record was written (sha256)
    or the two accuracies differ by more than TOLERANCE (0.2 points)."""
    name = current_name(name)
    rec = record(name, dest)
    if sha256(dest / rec["weights"]) != rec["sha256"]:
        raise ValueError(f"{dest / rec['weights']} does not match the sha256 in its record")
    test = loaders(recipe_of(rec), data_root, device, rec["seed"])["test"]
    measured = evaluate(load_exported(name, dest), test)["acc"]
    if abs(rec["test_acc"] - measured) > TOLERANCE:
        raise AssertionError(f"{name}: recorded {rec['test_acc']:.2%}, measured {measured:.2%} on the test set on disk")
    return rec["test_acc"], measured


# ---------------------------------------------------------------- a notebook's trained runs

def is_stand_in(record: dict) -> bool:
    """True for the record of a scaled-down or fast-dev run: a few steps, not a trained model."""
    return record["recipe"].endswith(STAND_IN_SUFFIXES)


def describe(record: dict) -> str:
    """One line on where a run's model comes from, with its stand-in label where it is one."""
    accuracy = f"{record['test_acc']:.1%} test accuracy"
    if is_stand_in(record):
        return f"STAND-IN: {record['recipe']} ({accuracy}), a few training steps, not a trained model"
    return (f"{current_name(record['recipe'])}: {accuracy} on {record['data']}, {len(record['history'])} epochs, "
            f"{record['train_seconds'] / 60:.0f} min on {record['hardware']}")


def _quick_run(recipe: Recipe, seed: int, data_root, device):
    return run(recipe, Path(data_root) / "runs" / run_name(recipe.name, seed), data_root, seed=seed,
               device=device, progress=False)


def get(recipe: Recipe, seed: int = 0, *, retrain: bool, data_root, device=None) -> tuple[ViT, dict]:
    """(model, record) of `recipe` with `seed`: shipped, or trained here (see the module doc)."""
    name = run_name(recipe.name, seed)
    if env.is_smoke():
        if seed == 0 or shipped(name) is None:  # the loop is tested once per recipe, not per seed
            small_run = _quick_run(scaled_down(recipe, epochs=1, steps=5, train_per_class=64), seed, data_root, device)
        if shipped(name) is None:
            print(f"{name} is not shipped: the smoke profile goes on with its scaled-down run (not a result)")
            return small_run
        retrain = False
    if env.is_fast_dev_run() and (retrain or shipped(name) is None):  # a rehearsal: 2 steps, not hours
        quick = replace(recipe, name=f"{recipe.name}-fast-dev", train=env.dev_run(recipe.train))
        return _quick_run(quick, seed, data_root, device)
    return load_or_train(recipe, retrain, data_root, device, seed)


def get_record(recipe: Recipe, seed: int = 0, *, retrain: bool, data_root, device=None) -> dict:
    """The JSON record of a run (shipped with or without weights), or that of a run made here."""
    found = None if retrain else record(run_name(recipe.name, seed))
    return found if found is not None else get(recipe, seed, retrain=retrain, data_root=data_root, device=device)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course.recipes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="name and description of every recipe")
    go = sub.add_parser("run", help="train a recipe to completion (resumes from --out)")
    go.add_argument("name", type=current_name, choices=sorted(RECIPES))
    go.add_argument("--out", required=True, help="run folder (outside the repository is best)")
    go.add_argument("--data", default=str(env.ROOT / "data"), help="data root holding cifar10/{train,test}")
    go.add_argument("--seed", type=int, default=0)
    go.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    go.add_argument("--device", default=None)
    go.add_argument("--smoke", action="store_true", help="a few steps of a scaled-down recipe: checks the code, no result")
    sw = sub.add_parser("sweep", help="run every recipe whose name starts with a PREFIX, for each seed, in turn")
    sw.add_argument("prefix", nargs="+")
    sw.add_argument("--out", required=True, help="parent folder: one run folder per run, named by run_name")
    sw.add_argument("--data", default=str(env.ROOT / "data"))
    sw.add_argument("--seeds", type=int, nargs="+", default=[0])
    sw.add_argument("--threads", type=int, default=None)
    ex = sub.add_parser("export", help="copy a finished run into data/checkpoints/")
    ex.add_argument("--run", required=True)
    ex.add_argument("--name", default=None)
    ex.add_argument("--record-only", action="store_true", help="the JSON record without the weights")
    args = parser.parse_args(argv)
    if args.command == "list":
        for recipe in RECIPES.values():
            print(f"{recipe.name:16} {recipe.about}")
    elif args.command == "run":
        if args.threads:
            torch.set_num_threads(args.threads)
        recipe = scaled_down(RECIPES[args.name]) if args.smoke else RECIPES[args.name]
        device = args.device
        if distributed.init_from_env(device or ("cuda" if torch.cuda.is_available() else "cpu")):
            world = distributed.rank_and_world()[1]  # under torchrun --nproc_per_node=world
            if recipe.batch_size % world:
                parser.error(f"{recipe.name}'s global batch of {recipe.batch_size} images cannot be split over "
                             f"{world} processes: use a process count that divides it")
            device = distributed.device_for(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        run(recipe, args.out, args.data, seed=args.seed, device=device)  # prints its result
    elif args.command == "sweep":
        if args.threads:
            torch.set_num_threads(args.threads)
        names = [n for n in RECIPES if n.startswith(tuple(args.prefix))]
        for name in names:
            for seed in args.seeds:
                folder = Path(args.out).expanduser() / run_name(name, seed)
                if not (folder / "record.json").is_file():  # finished runs are skipped: a sweep resumes
                    run(RECIPES[name], folder, args.data, seed=seed, progress=False)
    else:
        print(export(args.run, args.name, weights=not args.record_only))


if __name__ == "__main__":
    main()
