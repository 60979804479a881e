"""course.env's rehearsal switches: the fast dev run, the shipped CIFAR-10 copy unpacked on
first use, where figures go, and the FAKE DATA / RANDOM WEIGHTS banner."""
import io
import tarfile

import pytest
import torch

from course import env
from tools import fakes
from vit_core.train import TrainConfig


@pytest.mark.parametrize("value, on", [(None, False), ("", False), ("0", False), ("1", True), (" True ", True),
                                       ("yes", True)])
def test_fast_dev_run_switch(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    else:
        monkeypatch.setenv("VIT_FAST_DEV_RUN", value)
    assert env.is_fast_dev_run() == on
    config = TrainConfig(epochs=200, lr=3e-3, max_steps_per_epoch=None, warmup_epochs=5)
    capped = env.dev_run(config)
    if on:
        assert (capped.epochs, capped.max_steps_per_epoch, capped.max_eval_batches) == (1, 2, 2)
        assert capped.lr == config.lr and capped.warmup_epochs == config.warmup_epochs  # nothing else changes
        assert env.dev_run(TrainConfig(max_steps_per_epoch=1)).max_steps_per_epoch == 1
        assert env.dev_cap(256) == 4 and env.dev_cap(256, cap=32) == 32 and env.dev_cap(2) == 2
    else:
        assert capped == config and env.dev_cap(256) == 256


def test_expect_asserts_unless_fast_dev_run(monkeypatch, capsys):
    monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    env.expect(True, "fine")
    with pytest.raises(AssertionError, match="accuracy above chance"):
        env.expect(False, "accuracy above chance")
    monkeypatch.setenv("VIT_FAST_DEV_RUN", "1")
    env.expect(False, "accuracy above chance")
    assert capsys.readouterr().out == "fast dev run: not checked: accuracy above chance\n"


def tiny_archive(path, classes=("cat", "dog")):
    """A .tar.xz laid out like the shipped copy: cifar10/{train,test}/<class>/0000.jpg."""
    with tarfile.open(path, "w:xz") as archive:
        for split in ("train", "test"):
            for name in classes:
                info = tarfile.TarInfo(f"cifar10/{split}/{name}/0000.jpg")
                info.size = 3
                archive.addfile(info, io.BytesIO(b"jpg"))
    return path


def test_data_dir_unpacks_the_shipped_copy_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tiny_archive(tmp_path / "copy.tar.xz"))
    monkeypatch.setenv("VIT_DATA", str(tmp_path / "drive"))
    assert env.data_dir() == tmp_path / "drive"
    assert (tmp_path / "drive" / "cifar10" / "test" / "dog" / "0000.jpg").read_bytes() == b"jpg"
    assert "unpacking copy.tar.xz" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "drive").iterdir()] == ["cifar10"]  # no scratch folder left
    env.data_dir()
    assert capsys.readouterr().out == ""  # already there: not unpacked again


def test_without_the_archive_nothing_is_unpacked(monkeypatch, tmp_path):
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")
    assert env.cifar10_ready(tmp_path) is None and not (tmp_path / "cifar10").exists()


def test_the_shipped_archive_is_the_offline_copy():
    assert env.OFFLINE_CIFAR10 == env.ROOT / "data" / "cifar10-jpeg.tar.xz" and env.OFFLINE_CIFAR10.is_file()


def test_figures_go_to_figures_only_in_the_full_profile(monkeypatch, tmp_path):
    """A test run (smoke, fast dev run) must never overwrite the committed figures."""
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")
    monkeypatch.setenv("VIT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("VIT_FIGURES", raising=False)
    monkeypatch.delenv("VIT_FAST_DEV_RUN", raising=False)
    monkeypatch.setenv("VIT_PROFILE", "smoke")
    assert env.figures_dir() == tmp_path / "data" / "figures-smoke" and env.figures_dir().is_dir()
    monkeypatch.setenv("VIT_PROFILE", "full")
    assert env.figures_dir() == env.ROOT / "figures"
    monkeypatch.setenv("VIT_FAST_DEV_RUN", "1")
    assert env.figures_dir() == tmp_path / "data" / "figures-fast-dev-run"
    monkeypatch.setenv("VIT_FIGURES", str(tmp_path / "figs"))
    for profile in ("full", "smoke"):
        monkeypatch.setenv("VIT_PROFILE", profile)
        assert env.figures_dir() == tmp_path / "figs" and (tmp_path / "figs").is_dir()


def test_pytest_leaves_the_committed_figures_alone():
    """pytest (pyproject.toml: the smoke profile) sends every notebook's figures elsewhere."""
    import os

    if os.environ.get("VIT_PROFILE") == "smoke" and not os.environ.get("VIT_FIGURES"):
        assert env.figures_dir() != env.ROOT / "figures"
    else:
        pytest.skip("run without VIT_PROFILE/VIT_FIGURES (as `pytest` is) to check the default")


def test_describe_names_the_fast_dev_run_and_the_fakes(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")
    monkeypatch.setenv("VIT_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("VIT_FAST_DEV_RUN", "1")
    fakes.write_pets(tmp_path / "data", per_breed=(1, 1))
    text = env.describe()
    first, dev, fake = text.split(" · ")[0], text.split(" · ")[-2], text.split(" · ")[-1]
    assert "\n" not in text  # one line, whatever it adds
    assert first.startswith("profile ") and dev.startswith("FAST DEV RUN") and "no number below is a result" in dev
    assert fake.startswith("FAKE DATA / RANDOM WEIGHTS") and "FAKE Oxford-IIIT Pet" in fake
    assert capsys.readouterr().out == text + "\n"


def test_ci_reads_nothing_outside_the_checkout():
    text = (env.ROOT / ".ci" / "run").read_text()
    assert "../shared" not in text and "shared/data" not in text
    assert env.OFFLINE_CIFAR10.is_relative_to(env.ROOT)
