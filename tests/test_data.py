"""vit_core.data: offline failures, the JPEG decode + cache, subset, TensorLoader, folders."""
import socket
import time

import numpy as np
import pytest
import torch
from PIL import Image

from course import env
from vit_core import data
from vit_core.augment import random_crop_flip

DATA = env.data_dir()  # $VIT_DATA, else data/ in the repository
REAL_CIFAR10 = DATA / "cifar10"


def write_jpeg_tree(root, split_counts, size=32, seed=0):
    """<root>/<split>/<class>/NNNN.jpg with random pixels; returns {split: [(path, label)]}."""
    g = torch.Generator().manual_seed(seed)
    written = {}
    for split, per_class in split_counts.items():
        written[split] = []
        for label, cls in enumerate(["bird", "cat", "dog"]):  # alphabetical = label order
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                path = root / split / cls / f"{i:04d}.jpg"
                pixels = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(path, quality=75)
                written[split].append((path, label))
    return written


# ---------------------------------------------------------------- failing fast offline

@pytest.mark.parametrize("name, expected", [("cifar10", "cifar-10-python.tar.gz"),
                                            ("cifar100", "cifar-100-python.tar.gz")])
def test_missing_cifar_fails_fast_and_names_the_file(tmp_path, name, expected):
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_tensors(name, "train", tmp_path)
    assert time.perf_counter() - start < 5
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_without_download_true_nothing_touches_the_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to reach the network although download is off")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError, match="download=True"):
        data.load_tensors("cifar10", "test", tmp_path)  # download defaults to False
    with pytest.raises(data.DataUnavailableError, match="oxford-iiit-pet"):
        data.pets_binary_loader("test", 64, 8, tmp_path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("name, expected", [("cifar10", "cifar-10-python.tar.gz"),
                                            ("cifar100", "cifar-100-python.tar.gz")])
def test_offline_download_fails_fast_and_names_the_file(tmp_path, monkeypatch, name, expected):
    """download=True on a machine without a network: the probe fails, no download starts."""
    def offline(address, timeout=None, **kwargs):
        assert timeout is not None, "the probe must not wait forever"
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    def no_download(*args, **kwargs):
        raise AssertionError("a download started although the host was unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr("urllib.request.urlopen", no_download)
    old_timeout = socket.getdefaulttimeout()
    with pytest.raises(data.DataUnavailableError, match="cannot reach www.cs.toronto.edu") as info:
        data.load_tensors(name, "train", tmp_path, download=True)
    assert expected in str(info.value) and str(tmp_path) in str(info.value)
    assert socket.getdefaulttimeout() == old_timeout  # no process-wide state was touched
    with pytest.raises(data.DataUnavailableError, match="cannot reach www.robots.ox.ac.uk"):
        data.pets_binary_loader("test", 64, 8, tmp_path, download=True)


def test_bad_folder_paths_fail_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailableError, match="no_such_folder"):
        data.image_folder_loader(tmp_path / "no_such_folder", 64, 4, train=True)
    (tmp_path / "cifar10" / "train").mkdir(parents=True)  # a half-unpacked JPEG copy
    with pytest.raises(data.DataUnavailableError, match=r"cifar10[/\\]test is missing: the JPEG copy needs both"):
        data.load_tensors("cifar10", "test", tmp_path)
    assert time.perf_counter() - start < 5


def test_unknown_dataset_and_split_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="cifar10"):
        data.load_tensors("mnist", "train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_tensors("cifar10", "val", root=tmp_path)


# ---------------------------------------------------------------- decode and cache

def test_jpeg_copy_decodes_exactly_and_is_cached(tmp_path):
    written = write_jpeg_tree(tmp_path / "cifar10", {"train": 4, "test": 2})
    images, labels = data.load_tensors("cifar10", "train", root=tmp_path, verbose=False)
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.tolist() == [label for _, label in written["train"]]
    for i in (0, 5, 11):  # libjpeg through torchvision must match PIL's decode of the same file
        pil = torch.from_numpy(np.array(Image.open(written["train"][i][0]).convert("RGB")))
        assert torch.equal(images[i], pil.permute(2, 0, 1))
    cache = tmp_path / "cache" / "cifar10-jpeg-train.pt"
    assert cache.is_file() and data.source_name("cifar10", root=tmp_path) == "CIFAR-10 (JPEG copy)"
    for path, _ in written["train"]:
        path.unlink()  # the second load must come from the cache alone
    again, again_labels = data.load_tensors("cifar10", "train", root=tmp_path)
    assert torch.equal(again, images) and torch.equal(again_labels, labels)


@pytest.mark.skipif(not (REAL_CIFAR10 / "test").is_dir(),
                    reason=f"the CIFAR-10 JPEG copy is not in {REAL_CIFAR10} (tar -xJf {env.OFFLINE_CIFAR10} -C {DATA})")
def test_real_cifar10_test_split():
    images, labels = data.load_tensors("cifar10", "test", DATA)  # caches under <DATA>/cache
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.bincount().tolist() == [1000] * 10
    assert data.source_name("cifar10", DATA) == "CIFAR-10 (JPEG copy)"
    mean = images.float().div(255).mean((0, 2, 3))
    assert torch.allclose(mean, torch.tensor(data.CIFAR10_MEAN), atol=0.01)  # the constants fit the data


# ---------------------------------------------------------------- subset

def test_subset_relabels_in_the_given_order():
    labels = torch.arange(40) % 4  # 10 images of each of 4 classes
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2)
    sub_images, sub_labels = data.subset(images, labels, classes=[3, 1])
    assert sub_labels.tolist().count(0) == 10 and sub_labels.tolist().count(1) == 10
    original = sub_images[:, 0, 0, 0].long()  # which source image each one is
    assert torch.equal(labels[original], torch.tensor([3, 1])[sub_labels])
    assert torch.all(original[1:] > original[:-1])  # source order kept
    few_images, few_labels = data.subset(images, labels, per_class=3, seed=1)
    assert few_labels.bincount().tolist() == [3, 3, 3, 3]
    assert not torch.equal(few_images, data.subset(images, labels, per_class=3, seed=2)[0])
    with pytest.raises(ValueError, match="fewer"):
        data.subset(images, labels, per_class=11)


# ---------------------------------------------------------------- TensorLoader

def test_tensor_loader_shapes_and_normalisation():
    images = torch.full((10, 3, 8, 8), 51, dtype=torch.uint8)  # 51/255 = 0.2 everywhere
    labels = torch.arange(10)
    loader = data.TensorLoader(images, labels, 4, train=False, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.25),
                               image_size=16, device="cpu")
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # evaluation keeps the last partial batch
    x, y = batches[0]
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected = torch.tensor([(0.2 - 0.1) / 0.5, 0.0, (0.2 - 0.3) / 0.25]).view(1, 3, 1, 1)
    assert torch.allclose(x, expected.expand_as(x), atol=1e-6)
    assert torch.cat([b[1] for b in batches]).tolist() == list(range(10))  # in order, all of them


def test_tensor_loader_train_shuffles_deterministically():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.arange(50)
    make = lambda seed: data.TensorLoader(images, labels, 8, train=True, device="cpu", seed=seed)  # noqa: E731
    a, b = make(0), make(0)
    assert len(a) == 6  # 50 // 8: the partial batch is dropped
    first = [(x, y) for x, y in a]
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(first, b))
    seen = torch.cat([y for _, y in first])
    assert len(seen.unique()) == 48  # each image at most once per epoch
    second = [y for _, y in a]  # a plain second pass is the next epoch: a new order
    assert not torch.equal(torch.cat(second), seen)
    a.set_epoch(0)  # replaying epoch 0 gives exactly its batches again
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(first, a))
    assert not torch.equal(torch.cat([y for _, y in make(1)]), seen)


def test_random_crop_flip_is_a_shifted_window_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 8, 8), generator=g, dtype=torch.uint8)  # no zeros inside
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    kinds = set()
    for i in range(64):
        matches = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)
                   if torch.equal(out[i], (lambda w: w.flip(-1) if flip else w)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a crop of its padded source"
        kinds.add(matches[0])
    assert len(kinds) > 10 and {k[2] for k in kinds} == {False, True}  # offsets and flips vary


# ---------------------------------------------------------------- folders of images

def test_image_folder_loader_skips_empty_files(tmp_path):
    write_jpeg_tree(tmp_path, {"train": 3}, size=40)
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"")  # as in Kaggle's PetImages
    loader = data.image_folder_loader(tmp_path / "train", 24, 4, train=False, num_workers=0)
    assert loader.dataset.classes == ["bird", "cat", "dog"] and len(loader.dataset) == 9
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.float32 and y.tolist() == [0, 0, 0, 1]
