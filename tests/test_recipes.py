"""course.recipes: the definitions hang together, and a run folder reused by another run
(another seed, a changed recipe) never hands it the first run's best weights."""
import pytest
import torch

from course import recipes
from vit_core import ViT, ViTConfig


def test_every_init_from_is_a_recipe_trained_on_other_classes():
    for recipe in recipes.RECIPES.values():
        if recipe.init_from is not None:
            source = recipes.RECIPES[recipe.init_from]
            assert source.init_from is None, f"{recipe.name}: chains of pretraining are not supported"
            assert not set(source.classes or ()) & set(recipe.classes or ()), f"{recipe.name} saw its classes"


def test_transfer_seed001_trains_what_seed_001_trained():
    recipe = recipes.RECIPES["transfer-seed001"]
    assert (recipe.trainable_blocks, recipe.train_norm, recipe.zero_head) == (3, False, False)
    assert (recipe.train.optimizer, recipe.train.lr, recipe.train.schedule, recipe.batch_size) == ("adam", 1e-3, "constant", 64)
    assert recipes.AUGMENTS[recipe.augment]().transform.transforms[1].degrees == [-10.0, 10.0]


def test_keep_best_ignores_another_runs_best(tmp_path):
    model = ViT(ViTConfig.cifar10_seed(dim=8, depth=1, heads=2, mlp_dim=16))
    first = recipes.KeepBest(tmp_path, "run A")
    first(model, {"test_acc": 0.9, "epoch": 3})
    assert recipes.KeepBest(tmp_path, "run A").best == 0.9  # the same run, resumed, remembers it
    second = recipes.KeepBest(tmp_path, "run B")
    assert second.best == -1.0
    second(model, {"test_acc": 0.2, "epoch": 1})
    saved = torch.load(tmp_path / "best.pt", weights_only=True)
    assert (saved["run_id"], saved["epoch"], saved["val_acc"]) == ("run B", 1, 0.2)


def test_a_folder_left_by_another_run_is_not_resumed(tmp_path):
    (tmp_path / "checkpoint.pt").write_text("left by seed 0")
    recipes._claim(tmp_path, "seed 0")
    assert (tmp_path / "checkpoint.pt").is_file()  # the same run: kept, fit resumes it
    recipes._claim(tmp_path, "seed 1")
    assert not (tmp_path / "checkpoint.pt").exists()  # another run: emptied


def test_hardware_names_the_threads_of_each_stretch_of_epochs():
    """A run resumed with another --threads says so; records written before fit kept threads
    fall back to the count now."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine hardware() names the GPU")
    resumed = [{"threads": 1}] * 15 + [{"threads": 2}] * 85
    assert recipes.hardware(resumed).endswith("torch thread(s): 1 (epochs 1-15), then 2 (epochs 16-100)")
    assert recipes.hardware([{"threads": 2}] * 3).endswith(", 2 torch thread(s)")
    assert recipes.hardware([{}]).endswith(f", {torch.get_num_threads()} torch thread(s)")
