"""vit_core.train: fine-tuning helpers, schedule, fit's checkpoints, resume, NaN stop, and
proof that the tiny model learns CIFAR-10."""
import json
import math
import time

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from course import env
from vit_core import data, plots, train
from vit_core.model import ViT, ViTConfig

matplotlib.use("Agg")
DATA = env.data_dir()  # $VIT_DATA, else data/ in the repository
REAL_CIFAR10 = DATA / "cifar10"
TINY = ViTConfig.cifar10_tiny(image_size=16, dim=32, depth=2, heads=2, mlp_dim=64, num_classes=4, dropout=0.1)
TIMING = ("seconds", "img_per_s")


def tiny_data(n=192, seed=0):
    """Images whose class sets the brightness of one colour channel: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 100, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    images[labels < 3, labels[labels < 3]] += 150  # class c < 3 lights channel c; class 3 stays dark
    return images, labels


def loaders(n=192, batch_size=32):
    images, labels = tiny_data(n)
    train_loader = data.TensorLoader(images, labels, batch_size, train=True, device="cpu", seed=3)
    test_images, test_labels = tiny_data(64, seed=1)
    return train_loader, data.TensorLoader(test_images, test_labels, 32, train=False, device="cpu")


class InterruptAt:
    """Wraps a loader; at one (epoch, step) it either raises KeyboardInterrupt (a user's
    Ctrl-C, what="interrupt") or yields a batch of infinities (what="inf")."""

    def __init__(self, loader, epoch, step, what="interrupt"):
        self.loader, self.at, self.what, self.epoch = loader, (epoch, step), what, 0

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        self.epoch = epoch + 1  # 1-based, as fit reports epochs
        self.loader.set_epoch(epoch)

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)

    def __iter__(self):
        for step, (x, y) in enumerate(self.loader, start=1):
            if (self.epoch, step) == self.at:
                if self.what == "interrupt":
                    raise KeyboardInterrupt
                x = torch.full_like(x, math.inf)  # a corrupt batch: the loss becomes NaN
            yield x, y


def quiet_fit(model, train_loader, test_loader, config, **kwargs):
    return train.fit(model, train_loader, test_loader, config, device="cpu", progress=False, verbose=False, **kwargs)


# ---------------------------------------------------------------- helpers

def test_count_freeze_and_replace_head():
    model = ViT(ViTConfig.cifar10_tiny())
    trainable, total = train.count_parameters(model)
    assert trainable == total == sum(p.numel() for p in model.parameters())
    train.freeze_all_but_last(model, 1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {n for n, _ in model.named_parameters() if n.startswith(("encoder.blocks.3.", "norm.", "head."))}
    trainable, _ = train.count_parameters(model)
    assert trainable == sum(p.numel() for m in (model.blocks[3], model.norm, model.head) for p in m.parameters())
    train.freeze_all_but_last(model, 0)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"norm.weight", "norm.bias",
                                                                           "head.weight", "head.bias"}
    with pytest.raises(ValueError):
        train.freeze_all_but_last(model, 5)
    train.replace_head(model, 2)
    assert model.head.out_features == 2 and model.config.num_classes == 2
    assert model.head.weight.abs().sum() == 0 and model.head.weight.requires_grad
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 2)


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [train.lr_factor(s, 100, 10, "cosine") for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[10] == 1.0
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.001
    assert train.lr_factor(50, 100, 10, "constant") == 1.0
    with pytest.raises(ValueError):
        train.lr_factor(50, 100, 10, "linear")


def test_optimizers_and_weight_decay_groups():
    model = ViT(TINY)
    for name, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)):
        opt = train.make_optimizer(model, train.TrainConfig(optimizer=name), torch.device("cpu"))
        assert isinstance(opt, cls)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert id(model.head.weight) in decayed and id(model.pos_embed) not in decayed
    assert id(model.norm.weight) not in decayed and id(model.head.bias) not in decayed
    with pytest.raises(ValueError):
        train.make_optimizer(model, train.TrainConfig(optimizer="lion"), torch.device("cpu"))


def decayed_names(model, **options) -> set[str]:
    opt = train.make_optimizer(model, train.TrainConfig(**options), torch.device("cpu"))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    return {name for name, p in model.named_parameters() if id(p) in decayed}


def test_weight_decay_skips_what_the_model_names():
    """make_optimizer asks the model (timm's no_weight_decay) instead of knowing ViT's names."""
    model = ViT(TINY)
    matrices = {n for n, p in model.named_parameters() if p.ndim >= 2}
    assert model.no_weight_decay() == {"pos_embed", "cls_token"}
    assert decayed_names(model) == matrices - {"pos_embed", "cls_token"}
    assert decayed_names(model, decay_all=True) == {n for n, _ in model.named_parameters()}
    mean_pooled = ViT(ViTConfig(**{**TINY.__dict__, "pool": "mean", "pos": "sincos"}))
    assert mean_pooled.no_weight_decay() == set()  # sin-cos positions are a buffer, no CLS token
    assert decayed_names(mean_pooled) == {n for n, p in mean_pooled.named_parameters() if p.ndim >= 2}

    class Custom(torch.nn.Module):  # any model can name its own exemptions, or name none
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1, 4))
            self.proj = torch.nn.Linear(4, 4)

        def no_weight_decay(self):
            return {"scale"}

    assert decayed_names(Custom()) == {"proj.weight"}
    assert decayed_names(torch.nn.Sequential(torch.nn.Linear(4, 4))) == {"0.weight"}


# ---------------------------------------------------------------- fit

def test_the_training_loss_is_label_smoothed():
    """With lr 0 the weights never move, so the reported training loss must equal the
    label-smoothed cross-entropy of the unchanged model over the same batches."""
    torch.manual_seed(0)
    model = ViT(ViTConfig(**{**TINY.__dict__, "dropout": 0.0}))
    loader = data.TensorLoader(*tiny_data(64), 32, train=True, augment=False, device="cpu")
    config = train.TrainConfig(epochs=1, lr=0.0, warmup_epochs=0, weight_decay=0.0, label_smoothing=0.3)
    history = quiet_fit(model, loader, None, config)
    loader.set_epoch(0)  # the batches fit saw in its first epoch
    with torch.no_grad():
        batches = [(model(x), y) for x, y in loader]
    by_hand = {eps: sum(F.cross_entropy(z, y, label_smoothing=eps).item() for z, y in batches) / len(batches)
               for eps in (0.0, 0.3)}
    assert history[0]["train_loss"] == pytest.approx(by_hand[0.3], rel=1e-5)
    assert abs(by_hand[0.3] - by_hand[0.0]) > 1e-3 * by_hand[0.3]  # 100x the tolerance: a dropped smoothing shows


def test_fit_learns_and_writes_history(tmp_path):
    torch.manual_seed(0)
    model = ViT(TINY)
    train_loader, test_loader = loaders()
    history = quiet_fit(model, train_loader, test_loader, train.TrainConfig(epochs=3, lr=3e-3), out_dir=tmp_path)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "img_per_s",
                               "threads"}
    assert history[0]["threads"] == torch.get_num_threads()  # the CPU threads each epoch ran on
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_acc"] > 0.6
    assert json.loads((tmp_path / "history.json").read_text()) == history
    result = train.evaluate(model, test_loader)
    preds, labels = train.predict(model, test_loader)
    assert preds.dtype == labels.dtype == torch.int64 and preds.device.type == "cpu" and len(preds) == 64
    assert result["acc"] == pytest.approx((preds == labels).float().mean().item())
    assert result["acc"] == pytest.approx(history[-1]["test_acc"]) and result["loss"] == pytest.approx(history[-1]["test_loss"])
    fig = plots.plot_history({"tiny": history, "again": history})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4
    assert len(plots.plot_confusion(preds, labels, ["r", "g", "b", "dark"]).axes) == 2  # the matrix and its colour bar
    with_chance = plots.plot_history({"run": history}, num_classes=4)
    loss_axis, acc_axis = with_chance.axes
    assert len(loss_axis.lines) == 3 and acc_axis.get_ylim() == (0, 100) and loss_axis.get_ylim()[0] == 0
    assert acc_axis.lines[-1].get_ydata()[0] == 25 and loss_axis.lines[-1].get_ydata()[0] == pytest.approx(math.log(4))


def test_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path):
    config = train.TrainConfig(epochs=2, lr=3e-3, warmup_epochs=0.5, label_smoothing=0.1)
    torch.manual_seed(0)
    straight = ViT(TINY)
    reference = quiet_fit(straight, *loaders(), config, out_dir=tmp_path / "straight")

    torch.manual_seed(0)
    interrupted = ViT(TINY)
    train_loader, test_loader = loaders()
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(interrupted, InterruptAt(train_loader, epoch=2, step=3), test_loader, config, out_dir=tmp_path / "run")
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 1

    torch.manual_seed(123)  # a fresh process: other weights, other RNG state, a new loader
    resumed = ViT(TINY)
    history = quiet_fit(resumed, *loaders(), config, out_dir=tmp_path / "run", resume=True)
    strip = lambda hs: [{k: v for k, v in h.items() if k not in TIMING} for h in hs]  # noqa: E731
    assert strip(history) == strip(reference)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert len(saved["history"]) == 2 and saved["step"] == 2 * 6


def test_resume_refuses_a_checkpoint_from_another_run(tmp_path):
    torch.manual_seed(0)
    quiet_fit(ViT(TINY), *loaders(), train.TrainConfig(epochs=1, lr=1e-3), out_dir=tmp_path)
    with pytest.warns(UserWarning, match="TrainConfig differs"):
        history = quiet_fit(ViT(TINY), *loaders(), train.TrainConfig(epochs=1, lr=2e-3), out_dir=tmp_path, resume=True)
    assert len(history) == 1  # trained afresh, not skipped as "already done"
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["config"]["lr"] == 2e-3
    with pytest.warns(UserWarning, match="steps per epoch"):
        quiet_fit(ViT(TINY), *loaders(n=256), train.TrainConfig(epochs=1, lr=2e-3), out_dir=tmp_path, resume=True)
    with pytest.warns(UserWarning, match="do not fit"):
        wider = ViTConfig(**{**TINY.__dict__, "dim": 16})
        quiet_fit(ViT(wider), *loaders(n=256), train.TrainConfig(epochs=1, lr=2e-3), out_dir=tmp_path, resume=True)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ViT(TINY)
    train_loader, test_loader = loaders()
    config = train.TrainConfig(epochs=3)
    with pytest.raises(train.NonFiniteLossError, match="epoch 2, step 4"):
        quiet_fit(model, InterruptAt(train_loader, 2, 4, what="inf"), test_loader, config, out_dir=tmp_path)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(saved["history"]) == 1 and len(json.loads((tmp_path / "history.json").read_text())) == 1
    restored = ViT(TINY)
    restored.load_state_dict(saved["model"])
    assert all(torch.isfinite(p).all() for p in restored.parameters())
    assert math.isfinite(train.evaluate(restored, test_loader)["loss"])


def test_huge_learning_rate_is_caught(tmp_path):
    torch.manual_seed(0)
    config = train.TrainConfig(epochs=2, lr=1e12, warmup_epochs=0, grad_clip=None, weight_decay=0.0)
    with pytest.raises(train.NonFiniteLossError, match=r"epoch \d, step \d"):
        quiet_fit(ViT(TINY), *loaders(), config, out_dir=tmp_path)


def test_an_interrupted_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = ViT(TINY)
    train_loader, test_loader = loaders()
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(model, InterruptAt(train_loader, 2, 1), test_loader, train.TrainConfig(epochs=2), out_dir=tmp_path)
    before = torch.load(tmp_path / "checkpoint.pt", weights_only=True)

    def killed_mid_write(obj, path):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        quiet_fit(model, *loaders(), train.TrainConfig(epochs=2), out_dir=tmp_path, resume=True)
    monkeypatch.undo()
    after = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert len(after["history"]) == 1 and all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


# ---------------------------------------------------------------- it learns real data

@pytest.mark.slow  # about 45 s on 2 free cores; CI runs it (the marker only lets you deselect it)
@pytest.mark.skipif(not (REAL_CIFAR10 / "train").is_dir(),
                    reason=f"the CIFAR-10 JPEG copy is not in {REAL_CIFAR10} (tar -xJf {env.OFFLINE_CIFAR10} -C {DATA})")
def test_tiny_model_learns_cifar10_in_one_epoch():
    """The tiny ViT, one CPU epoch on CIFAR-10: test accuracy >= 35% (chance: 10%)."""
    torch.manual_seed(0)
    train_images, train_labels = data.load_tensors("cifar10", "train", DATA)
    test_images, test_labels = data.load_tensors("cifar10", "test", DATA)
    train_loader = data.TensorLoader(train_images, train_labels, 128, train=True, augment=False, device="cpu")
    test_loader = data.TensorLoader(test_images, test_labels, 1000, train=False, device="cpu")
    model = ViT(ViTConfig.cifar10_tiny())
    start = time.perf_counter()
    history = quiet_fit(model, train_loader, test_loader, train.TrainConfig(epochs=1, lr=2e-3, warmup_epochs=0.1))
    print(f"test accuracy {history[0]['test_acc']:.1%} after one epoch, {time.perf_counter() - start:.0f} s")
    assert history[0]["test_acc"] >= 0.35


def test_seed_table_reports_mean_and_sample_std():
    table = plots.seed_table({"a": [0.30, 0.32, 0.34]}, seeds=[0, 1, 2])
    row = table.splitlines()[1].split()
    assert row[:4] == ["a", "3", "32.0%", "2.0%"]  # sample std of 30, 32, 34 is 2 points
    assert row[4:] == ["30.0%,", "32.0%,", "34.0%"]
    assert plots.seed_table({"one": [0.5]}, seeds=[7]).splitlines()[1].split()[:4] == ["one", "1", "50.0%", "-"]
    with pytest.raises(ValueError, match="2 accuracies for 3 seeds"):
        plots.seed_table({"a": [0.1, 0.2]}, seeds=[0, 1, 2])


def test_the_epoch_log_names_what_it_evaluated_on(capsys):
    torch.manual_seed(0)
    train_loader, held_out = loaders()
    config = train.TrainConfig(epochs=1, lr=3e-3)
    train.fit(ViT(TINY), train_loader, held_out, config, progress=False, eval_name="val")
    log = capsys.readouterr().out
    assert "| val loss" in log and "test loss" not in log
    train.fit(ViT(TINY), train_loader, held_out, config, progress=False)
    assert "| test loss" in capsys.readouterr().out  # the default label is unchanged
