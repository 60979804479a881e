"""course.recipes and course.runs: the definitions hang together, one rule names a run's files,
and a run folder reused by another run (another seed, a changed recipe) never hands it the
first run's best weights."""
import pytest
import torch

from course import recipes, runs
from vit_core import ViT, ViTConfig


def test_every_init_from_is_a_recipe_trained_on_other_classes():
    for recipe in recipes.RECIPES.values():
        if recipe.init_from is not None:
            source = recipes.RECIPES[recipe.init_from]
            assert source.init_from is None, f"{recipe.name}: chains of pretraining are not supported"
            assert not set(source.classes or ()) & set(recipe.classes or ()), f"{recipe.name} saw its classes"


def test_transfer_mbastola_trains_what_mbastola_trained():
    """mbastola's fine-tuning (neural-nets-in-python): last 3 blocks and a default-init head, Adam 1e-3."""
    recipe = recipes.RECIPES["transfer-mbastola"]
    assert (recipe.trainable_blocks, recipe.train_norm, recipe.zero_head) == (3, False, False)
    assert (recipe.train.optimizer, recipe.train.lr, recipe.train.schedule, recipe.batch_size) == ("adam", 1e-3, "constant", 64)
    assert recipes.AUGMENTS[recipe.augment]().transform.transforms[1].degrees == [-10.0, 10.0]


def test_keep_best_ignores_another_runs_best(tmp_path):
    model = ViT(ViTConfig.cifar10_tiny(dim=8, depth=1, heads=2, mlp_dim=16))
    first = runs.KeepBest(tmp_path, "run A")
    first(model, {"test_acc": 0.9, "epoch": 3})
    assert runs.KeepBest(tmp_path, "run A").best == 0.9  # the same run, resumed, remembers it
    second = runs.KeepBest(tmp_path, "run B")
    assert second.best == -1.0
    second(model, {"test_acc": 0.2, "epoch": 1})
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    assert (saved["run_id"], saved["epoch"], saved["val_acc"]) == ("run B", 1, 0.2)


def test_a_folder_left_by_another_run_is_not_resumed(tmp_path):
    (tmp_path / "checkpoint.pt").write_text("left by seed 0")
    runs._claim(tmp_path, "seed 0")
    assert (tmp_path / "checkpoint.pt").is_file()  # the same run: kept, fit resumes it
    runs._claim(tmp_path, "seed 1")
    assert not (tmp_path / "checkpoint.pt").exists()  # another run: emptied


def test_run_name_is_the_one_rule_for_a_seed_s_files():
    """Seed 0 has the recipe's bare name, seed n the suffix -seed<n> (a random seed); an old
    recipe name becomes the current one, suffix kept."""
    assert recipes.run_name("improved-cpu") == recipes.run_name("improved-cpu", 0) == "improved-cpu"
    assert recipes.run_name("improved-cpu", 2) == "improved-cpu-seed2"
    for old, new in recipes.RENAMED.items():
        assert recipes.run_name(old, 1) == f"{new}-seed1" and recipes.current_name(old) == new
        assert recipes.current_name(f"{old}-seed2") == f"{new}-seed2"
    assert recipes.current_name("tintn-seed1") == "tintn-seed1"


def test_recipe_names_say_what_they_are():
    """'seed' in a name means a random seed only: recipes are named after what they are or
    whose recipe they reproduce."""
    assert "tintn" in recipes.RECIPES and "transfer-mbastola" in recipes.RECIPES
    assert not [name for name in recipes.RECIPES if "seed" in name]
    assert not set(recipes.RENAMED) & set(recipes.RECIPES) and set(recipes.RENAMED.values()) <= set(recipes.RECIPES)
    with pytest.raises(KeyError):
        recipes.RECIPES["no-such-recipe"]
    assert recipes.RECIPES.get("no-such-recipe") is None
