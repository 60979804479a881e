"""tools.fakes: each fake is read by the library code a reader's run uses (torchvision's
datasets and weight enum, vit_core's loaders, transformers), offline, and is marked as fake."""
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from course import pretrained
from tools import fakes
from vit_core import from_google_npz, from_torchvision
from vit_core.data import load_tensors, pets_binary_loader


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("a fake must need no network"))


def skip_md5(monkeypatch, root):
    """What the rehearsal's kernel startup does: skip torchvision's md5 check for the fakes only."""
    import torchvision.datasets.cifar as cifar
    real = cifar.check_integrity
    monkeypatch.setattr(cifar, "check_integrity",
                        lambda path, md5=None: str(path).startswith(str(root)) or real(path, md5))


def test_fake_cifar100_is_read_by_torchvision_and_load_tensors(tmp_path, monkeypatch):
    fakes.write_cifar100(tmp_path)
    with pytest.raises(RuntimeError, match="corrupted"):  # the md5 check refuses fake bytes...
        torchvision.datasets.CIFAR100(str(tmp_path), train=True, download=False)
    skip_md5(monkeypatch, tmp_path)  # ...so only a rehearsal kernel skips it
    dataset = torchvision.datasets.CIFAR100(str(tmp_path), train=True, download=False)
    assert len(dataset) == 300 and sorted(set(dataset.targets)) == list(range(100))
    assert dataset.classes[7] == "fake_class_07"
    images, labels = load_tensors("cifar100", "test", tmp_path, download=False, verbose=False)
    assert images.shape == (100, 3, 32, 32) and images.dtype == torch.uint8 and labels.bincount().tolist() == [1] * 100
    assert "FAKE CIFAR-100" in "\n".join(fakes.described(tmp_path))


def test_fake_pets_are_read_by_torchvision(tmp_path):
    fakes.write_pets(tmp_path)
    train = pets_binary_loader("train", 64, 8, tmp_path, download=False, num_workers=0)
    test = pets_binary_loader("test", 64, 8, tmp_path, download=False, num_workers=0)
    assert len(train.dataset) == 48 and len(test.dataset) == 24
    x, y = next(iter(train))
    assert x.shape == (8, 3, 64, 64) and set(y.tolist()) <= {0, 1}
    assert sorted(set(train.dataset._bin_labels)) == [0, 1]  # cats and dogs both present
    assert "FAKE Oxford-IIIT Pet" in "\n".join(fakes.described(tmp_path))


@pytest.mark.slow  # the session's rehearsal fakes: about 1 GB, 20 s or more
def test_fake_vit_b16_weights_load_through_torchvision_and_vit_core(rehearsal_env, monkeypatch, capsys):
    """The rehearsal's fakes (written once per session by tests/conftest.py), loaded by the
    notebooks' one helper for pretrained weights: torchvision's weight enum, no download."""
    _, environ = rehearsal_env
    hub = Path(environ["TORCH_HOME"]) / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setenv("VIT_PROFILE", "full")
    weights = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1
    assert (hub / "checkpoints" / weights.url.rsplit("/", 1)[1]).is_file()
    loaded = pretrained.imagenet_vit_b16(fallback="no fallback expected")
    assert loaded is not None and "RANDOM WEIGHTS: vit_b_16-c867db91.pth" in capsys.readouterr().out
    assert loaded.heads.head.weight.std() > 0.01  # random, not torchvision's zero head
    ours = from_torchvision(loaded).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        reference = loaded(x)
        assert (reference - ours(x)).abs().max() < 1e-4
        from_npz = from_google_npz(np.load(Path(environ["VIT_DATA"]) / "ViT-B_16.npz")).eval()
        assert (from_npz(x) - reference).abs().max() < 1e-4  # the npz holds the same random weights
    assert "RANDOM WEIGHTS" in "\n".join(fakes.described(hub / "checkpoints"))
    assert "ViT-B_16.npz: RANDOM WEIGHTS" in "\n".join(fakes.described(environ["VIT_DATA"]))


@pytest.mark.slow
def test_fake_huggingface_cache_loads_offline(rehearsal_env, monkeypatch):
    transformers = pytest.importorskip("transformers")
    import huggingface_hub.constants as hub_constants
    _, environ = rehearsal_env
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    model = transformers.ViTForImageClassification.from_pretrained(
        fakes.HF_REPO, cache_dir=str(Path(environ["HF_HOME"]) / "hub"), attn_implementation="eager")
    assert model.config.num_labels == 1000 and model.classifier.weight.std() > 0.01


def test_a_rehearsal_takes_the_readers_path_or_fails(tmp_path, monkeypatch, capsys):
    """course.pretrained falls back (prints UNAVAILABLE, returns None) for a reader, but on
    fakes a failed load is an error: a rehearsal that quietly ran the fallback would prove nothing."""
    from course import env

    monkeypatch.setattr(env, "OFFLINE_CIFAR10", tmp_path / "absent.tar.xz")
    monkeypatch.setenv("VIT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("VIT_PROFILE", "full")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def broken():
        raise RuntimeError("Error(s) in loading state_dict: size mismatch")

    assert pretrained.load_or_none("some weights", broken, "https://example.org/w.pth", "a stand-in", cached=True) is None
    assert "some weights are UNAVAILABLE (RuntimeError: Error(s) in loading state_dict" in capsys.readouterr().out
    fakes.write_pets(tmp_path / "data", per_breed=(1, 1))  # now the data folder holds fakes: a rehearsal
    with pytest.raises(RuntimeError, match=r"rehearsal on fakes: some weights failed to load.*\(a stand-in\)"):
        pretrained.load_or_none("some weights", broken, "https://example.org/w.pth", "a stand-in", cached=True)
