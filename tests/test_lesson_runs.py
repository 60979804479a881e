"""Project checks that notebooks 08 and 09 used to run in their visible code (issue: the
lessons' code teaches or plots), and the one-line fallbacks of course.pretrained.

- 08: the stand-in's shipped transfer runs were built as steps 2 and 3 teach: a copy of the
  shipped backbone, a new head drawn from the run's seed (zeroed where the recipe says), and
  the recipe's frozen blocks. The notebook shows that its `new_head` and `freeze_but_last`
  match vit_core's `replace_head` and `freeze_all_but_last`; this checks that course.runs
  builds with those, so the notebook's `fine_tune_model` gives the model that was trained.
- 09: the per-epoch curves of every cat-vs-dog record are on the validation split, which its
  selection table reads.
- course.pretrained: offline or without a GPU, one short line says what is missing and what
  runs instead; the full error stays in `pretrained.last_error`.
"""
import copy
import socket

import pytest
import torch

from course import env, pretrained, recipes, runs
from vit_core.data import DataUnavailableError, load_tensors
from vit_core.train import freeze_all_but_last, replace_head

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("arm", ["mbastola", "improved"])
@pytest.mark.parametrize("seed", SEEDS)
def test_transfer_runs_are_built_as_notebook_08_teaches(arm, seed):
    recipe = recipes.RECIPES[f"transfer-{arm}"]
    backbone = runs.load_exported(recipe.init_from)  # what 08's trained(BACKBONE) returns
    torch.manual_seed(seed)  # 08's fine_tune_model: the seed draws a default-init head
    ours = copy.deepcopy(backbone)
    replace_head(ours, recipe.model.num_classes, zero_init=recipe.zero_head)
    if recipe.trainable_blocks is not None:
        freeze_all_but_last(ours, recipe.trainable_blocks, train_norm=recipe.train_norm)
    built = runs.build_model(recipe, seed)
    assert list(ours.state_dict()) == list(built.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), built.state_dict().values()))
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in built.parameters()]


def test_transfer_scratch_is_not_built_from_the_backbone():
    assert recipes.RECIPES["transfer-scratch"].init_from is None


CAT_DOG = [f"catdog-{arm}-{n}" for n in recipes.CAT_DOG_SIZES for arm in ("scratch", "pretrained")]


@pytest.mark.parametrize("name", [*CAT_DOG, "catdog-scratch-long"])
def test_cat_dog_records_have_validation_curves_and_a_selected_epoch(name):
    for seed in SEEDS:
        record = runs.record(recipes.run_name(name, seed))
        assert record is not None, f"{recipes.run_name(name, seed)} is not shipped"
        assert record["curves_on"] == "val", f"{recipes.run_name(name, seed)}: 09's at_epoch reads val curves"
        epochs = [h["epoch"] for h in record["history"]]
        assert record["selected_epoch"] in epochs


# ---------------------------------------------------------------- course.pretrained's one line

def offline(monkeypatch):
    def unreachable(address, timeout=None, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "create_connection", unreachable)


def test_offline_weights_print_one_short_line_and_keep_the_error(monkeypatch, capsys):
    monkeypatch.setenv("VIT_PROFILE", "full")
    offline(monkeypatch)
    monkeypatch.setattr(pretrained, "last_error", None)
    assert pretrained.load_or_none("test weights", lambda: "model", "https://example.org/w.pth", "STAND-IN") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and len(out) < 160, out
    assert out.startswith("test weights are UNAVAILABLE (cannot reach example.org;") and out.rstrip().endswith("-> STAND-IN")
    assert "Temporary failure" not in out and "network connection" not in out  # kept, not printed:
    assert "Temporary failure in name resolution" in str(pretrained.last_error)
    assert isinstance(pretrained.last_error.__cause__, socket.gaierror)


def test_no_gpu_skips_the_weights_in_one_line_without_the_network(monkeypatch, capsys):
    monkeypatch.setenv("VIT_PROFILE", "full")
    monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed the network"))
    assert pretrained.imagenet_vit_b16(fallback="the STAND-IN runs", device=torch.device("cpu")) is None
    out = capsys.readouterr().out
    assert out.startswith("no GPU (") and out.rstrip().endswith("-> the STAND-IN runs") and out.count("\n") == 1


@pytest.mark.parametrize("switch", ["on_cpu", "fast dev run"])
def test_on_cpu_or_a_fast_dev_run_goes_on_to_the_download(monkeypatch, capsys, switch):
    monkeypatch.setenv("VIT_PROFILE", "full")
    if switch == "fast dev run":
        monkeypatch.setenv("VIT_FAST_DEV_RUN", "1")
    monkeypatch.setattr(pretrained, "in_hub_cache", lambda url: False)
    offline(monkeypatch)
    assert pretrained.imagenet_vit_b16(fallback="STAND-IN", device="cpu", on_cpu=switch == "on_cpu") is None
    out = capsys.readouterr().out
    assert out.startswith("ImageNet-1k ViT-B/16 weights are UNAVAILABLE (cannot reach download.pytorch.org;")


def test_missing_data_prints_one_line_naming_the_file(monkeypatch, capsys, tmp_path):
    result = pretrained.data_or_none("CIFAR-100's files", lambda: load_tensors("cifar100", "train", tmp_path),
                                     "REAL PATH SKIPPED")
    out = capsys.readouterr().out
    assert result is None and out.count("\n") == 1
    assert out.startswith("CIFAR-100's files are UNAVAILABLE (CIFAR-100 is not in ") and len(out) < 200
    assert ": put cifar-100-python.tar.gz; full error in pretrained.last_error) -> REAL PATH SKIPPED" in out
    assert isinstance(pretrained.last_error, DataUnavailableError)


def test_data_or_none_passes_other_errors_and_a_rehearsal_fails(monkeypatch):
    with pytest.raises(ValueError):
        pretrained.data_or_none("x", lambda: (_ for _ in ()).throw(ValueError("a bug")), "fallback")
    monkeypatch.setattr(env, "fakes_in_use", lambda: ["fake data"])
    with pytest.raises(RuntimeError, match="rehearsal on fakes: x failed to load"):
        pretrained.data_or_none("x", lambda: (_ for _ in ()).throw(DataUnavailableError("gone")), "fallback")


def test_short_reason_keeps_the_first_clause():
    long = DataUnavailableError("cannot reach host.org (gaierror: [Errno -3] ...); put file.tar.gz into data/")
    assert pretrained.short_reason(long) == "cannot reach host.org"
    assert pretrained.short_reason(RuntimeError("Error(s) in loading state_dict for X:\n\tMissing key(s)")) == (
        "RuntimeError: Error(s) in loading state_dict for X:")
    assert len(pretrained.short_reason(OSError("x" * 500))) <= len("OSError: ") + pretrained.SHORT
