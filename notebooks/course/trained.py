"""Trained runs for the notebooks: the shipped checkpoint or record of a recipe, or a run
trained on the spot, with what the smoke profile checks on the way.

    model, record = trained.get(recipe, seed, retrain=RETRAIN, data_root=DATA, device=device)
    record = trained.get_record(recipe, seed, retrain=RETRAIN, data_root=DATA, device=device)

Full profile: the shipped run (data/checkpoints/), or the recipe trained here when `retrain`
or when nothing is shipped (resumable: run the cell again). Smoke profile (CI): first a
scaled-down copy of the recipe trains for a few steps, for seed 0 (the loop runs; its numbers
mean nothing), then the shipped checkpoint is re-measured on the test set on disk and must equal
its record to 0.2 points; a run that is not shipped is replaced by the scaled-down one, and
the notebook says so. A fast dev run (course.env) trains what is not shipped for 2 steps.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import env, recipes

TOLERANCE = 0.002  # shipped accuracy re-measured vs recorded: 0.2 points
STAND_IN_SUFFIXES = ("-scaled-down", "-fast-dev")  # recipe names of the few-step runs made in CI and rehearsals


def is_stand_in(record: dict) -> bool:
    """True for the record of a scaled-down or fast-dev run: a few steps, not a trained model."""
    return record["recipe"].endswith(STAND_IN_SUFFIXES)


def describe(record: dict) -> str:
    """One line on where a run's model comes from, with its stand-in label where it is one."""
    accuracy = f"{record['test_acc']:.1%} test accuracy"
    if is_stand_in(record):
        return f"STAND-IN: {record['recipe']} ({accuracy}), a few training steps, not a trained model"
    return (f"{record['recipe']}: {accuracy} on {record['data']}, {len(record['history'])} epochs, "
            f"{record['train_seconds'] / 60:.0f} min on {record['hardware']}")


def _scaled_down_run(recipe: recipes.Recipe, seed: int, data_root, device):
    small = recipes.scaled_down(recipe, epochs=1, steps=5, train_per_class=64)
    return recipes.run(small, Path(data_root) / "runs" / f"{small.name}-seed{seed}", data_root, seed=seed,
                       device=device, progress=False)


def get(recipe: recipes.Recipe, seed: int = 0, *, retrain: bool, data_root, device=None):
    """(model, record) of `recipe` with `seed`: shipped, or trained here (see the module doc)."""
    name = recipes.seed_names(recipe.name, [seed])[0]
    if env.is_smoke():
        if seed == 0 or recipes.shipped(name) is None:  # the loop is tested once per recipe, not per seed
            small_run = _scaled_down_run(recipe, seed, data_root, device)
        if recipes.shipped(name) is None:
            print(f"{name} is not shipped: the smoke profile goes on with its scaled-down run (not a result)")
            return small_run
        recorded, measured = recipes.verify(name, data_root, device=device)
        print(f"shipped {name}: recorded {recorded:.2%}, re-measured {measured:.2%} on the test set on disk")
        assert abs(recorded - measured) <= TOLERANCE, f"{name} no longer reproduces its recorded accuracy"
        retrain = False
    if env.is_fast_dev_run() and (retrain or recipes.shipped(name) is None):  # a rehearsal: 2 steps, not hours
        quick = dataclasses.replace(recipe, name=f"{recipe.name}-fast-dev", train=env.dev_run(recipe.train))
        return recipes.run(quick, Path(data_root) / "runs" / f"{quick.name}-seed{seed}", data_root, seed=seed,
                           device=device, progress=False)
    return recipes.load_or_train(recipe, retrain, data_root, device, seed)


def get_record(recipe: recipes.Recipe, seed: int = 0, *, retrain: bool, data_root, device=None) -> dict:
    """The JSON record of a run (shipped with or without weights), or that of a run made here."""
    found = None if retrain else recipes.record(recipes.seed_names(recipe.name, [seed])[0])
    return found if found is not None else get(recipe, seed, retrain=retrain, data_root=data_root, device=device)[1]
