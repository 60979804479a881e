"""Data: CIFAR as uint8 tensors on the device, and DataLoaders for folders of images.

Small images (CIFAR, 32 px) take the fast path: a split is decoded once into one uint8
tensor (cached under <root>/cache/), kept on the device, and `TensorLoader` crops, flips,
resizes and normalises whole batches there. A Python-side DataLoader would spend more time
per 32 px image than the model does. Folders of large images take the ordinary
torchvision `ImageFolder` + `DataLoader` path (`image_folder_loader`, `pets_binary_loader`,
defined in `folders.py` and importable from here, as are `downloads.py`'s error and probe).

Every function takes the data folder `root` from its caller and writes only inside it.
Downloads are torchvision's own code, and happen only with `download=True`; offline, missing
data fails at once with `DataUnavailableError` naming the file to provide.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from .augment import random_crop_flip
from .downloads import (CONNECT_TIMEOUT_S, DataUnavailableError, check_reachable,  # noqa: F401
                        download_errors)
from .folders import (IMAGENET_MEAN, IMAGENET_STD, PETS_CLASSES, PETS_URL,  # noqa: F401
                      folder_transform, image_folder_loader, pets_binary_loader)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel mean of the CIFAR-10 train set, in [0, 1]
CIFAR10_STD = (0.2470, 0.2435, 0.2616)   # per-channel standard deviation, same units


# ---------------------------------------------------------------- CIFAR as tensors

def _missing_message(name: str, root: Path) -> str:
    if name == "cifar100":
        return (f"CIFAR-100 is not in {root}: put cifar-100-python.tar.gz "
                f"(https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz) into {root}/")
    return (f"CIFAR-10 is not in {root}: put cifar-10-python.tar.gz "
            f"(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) into {root}/, "
            f"or a JPEG copy into {root}/cifar10/{{train,test}}/<class>/*.jpg")


def _decode_files(paths: list[str]) -> torch.Tensor:
    """JPEG files -> uint8 (n, 3, H, W). Python reads the bytes (torchvision's read_file is
    not safe to call from several threads); libjpeg decodes the whole list in one call."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # torchvision >= 0.29 deprecates its decoders; PIL gives the same pixels
        import numpy as np
        from PIL import Image
        pixels = [np.array(Image.open(p).convert("RGB")) for p in paths]  # n x (H, W, 3)
        return torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in pixels])  # (n, 3, H, W)
    raw = []
    for path in paths:
        with open(path, "rb") as f:
            raw.append(torch.frombuffer(bytearray(f.read()), dtype=torch.uint8))
    return torch.stack(decode_jpeg(raw, mode=ImageReadMode.RGB))  # (n, 3, H, W)


def _decode_folder(folder: Path, threads: int | None = None,
                   chunk: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """An ImageFolder tree of small JPEGs -> uint8 (N, 3, H, W) and int64 labels.

    torchvision's batched libjpeg decoder is used where it exists (it is much faster than
    PIL image by image); chunks run in threads so one chunk's file reads overlap another's
    decoding (both release the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files, labels = [], []
    for label, cls in enumerate(classes):
        names = sorted(f for f in os.listdir(folder / cls) if f.lower().endswith((".jpg", ".jpeg")))
        files += [str(folder / cls / f) for f in names]
        labels += [label] * len(names)
    if not files:
        raise DataUnavailableError(f"{folder} holds no <class>/*.jpg files")
    chunks = [files[i:i + chunk] for i in range(0, len(files), chunk)]
    # torchvision 0.29 deprecates decode_jpeg, still the fastest decoder here (the PIL branch
    # takes over once it is gone); the filter is set here, once, as it is process-wide.
    workers = threads or min(4, os.cpu_count() or 1)
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", DeprecationWarning)
        images = torch.cat(list(pool.map(_decode_files, chunks)))  # (N, 3, H, W) uint8
    return images, torch.tensor(labels, dtype=torch.int64)


def _torchvision_cifar(name: str, split: str, root: Path, download: bool):
    """torchvision's CIFAR-10/100 (the real download code for users) -> uint8 tensors."""
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import extract_archive

    cls, folder = {"cifar10": (CIFAR10, "cifar-10-batches-py"),
                   "cifar100": (CIFAR100, "cifar-100-python")}[name]
    archive = root / cls.filename
    if not (root / folder).is_dir() and archive.is_file():
        extract_archive(str(archive), str(root))  # a hand-placed archive: no network needed
    needed = not (root / folder).is_dir()
    if needed and not download:
        raise DataUnavailableError(_missing_message(name, root) + ", or pass download=True")
    if needed:
        check_reachable(cls.url, _missing_message(name, root))
    with download_errors(f"{name} from {cls.url}", _missing_message(name, root)):
        ds = cls(str(root), train=split == "train", download=needed)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def _jpeg_copy(name: str, root: Path) -> Path | None:
    return root / "cifar10" if name == "cifar10" and (root / "cifar10" / "train").is_dir() else None


def source_name(name: str, root) -> str:
    """How to label numbers measured on `name` in the data folder `root`: which copy
    `load_tensors` reads, the JPEG files in <root>/cifar10 or torchvision's copy."""
    root = Path(root)
    if name == "cifar10":
        return "CIFAR-10 (JPEG copy)" if _jpeg_copy(name, root) else "CIFAR-10 (torchvision)"
    if name == "cifar100":
        return "CIFAR-100 (torchvision)"
    raise ValueError(f"unknown dataset {name!r}; expected 'cifar10' or 'cifar100'")


def load_tensors(name: str, split: str, root, download: bool = False, verbose: bool = True):
    """One CIFAR split of the data folder `root` as (images uint8 (N, 3, 32, 32), labels
    int64 (N,)) on the CPU.

    cifar10 reads a JPEG copy at <root>/cifar10/<split> when present, else torchvision's
    copy in <root> (downloaded by torchvision when download=True). The first call decodes
    and writes <root>/cache/<source>-<split>.pt; later calls load that instead.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    label = source_name(name, root)  # also validates `name`
    root = Path(root)
    jpeg = _jpeg_copy(name, root)
    if jpeg is not None and not (jpeg / split).is_dir():
        raise DataUnavailableError(f"{jpeg / split} is missing: "
                                   f"the JPEG copy needs both train/ and test/")
    cache = root / "cache" / f"{name}-{'jpeg' if jpeg else 'torchvision'}-{split}.pt"
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
        return blob["images"], blob["labels"]
    start = time.perf_counter()
    if jpeg is not None:
        images, labels = _decode_folder(jpeg / split)
    else:
        images, labels = _torchvision_cifar(name, split, root, download)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")  # atomic: a half-written cache is never read
    torch.save({"images": images, "labels": labels}, tmp)
    os.replace(tmp, cache)
    if verbose:
        seconds = time.perf_counter() - start
        print(f"{label} {split}: decoded {len(labels):,} images in {seconds:.1f} s, "
              f"cached at {cache}")
    return images, labels


def subset(images, labels, classes=None, per_class=None, seed: int = 0):
    """Keep only `classes` (relabelled 0..k-1 in the order given) and/or `per_class` images
    of each class (drawn at random with `seed`, kept in their original order)."""
    classes = list(classes) if classes is not None else sorted(set(labels.tolist()))
    generator = torch.Generator().manual_seed(seed)
    keep, new_labels = [], []
    for new, old in enumerate(classes):
        idx = (labels == old).nonzero().flatten()
        if per_class is not None:
            if len(idx) < per_class:
                raise ValueError(f"class {old} has {len(idx)} images, "
                                 f"fewer than per_class={per_class}")
            idx = idx[torch.randperm(len(idx), generator=generator)[:per_class]].sort().values
        keep.append(idx)
        new_labels.append(torch.full((len(idx),), new, dtype=torch.int64))
    keep, new_labels = torch.cat(keep), torch.cat(new_labels)
    order = keep.argsort()  # interleave the classes again as they were in the source
    return images[keep[order]], new_labels[order]


# ---------------------------------------------------------------- batches on the device

class TensorLoader:
    """Batches from uint8 image tensors kept on `device`: shuffle, augment, resize, normalise.

    Yields (x float32 (B, 3, S, S) normalised, y) on `device`; y is int64 (B,), or soft
    targets (B, classes) when a `mix` function (MixUp/CutMix) is given. With train=True it
    shuffles and drops the last partial batch. `augment`: True for the batched pad-4 crop +
    flip (the default when training), False for none, or any function of a uint8 batch (e.g.
    `augment.PerImage(v2.TrivialAugmentWide())`). The shuffle and the batched crop draw from
    the loader's own generator, reseeded from (seed, epoch) at each pass, so an epoch is
    reproducible on its own: `set_epoch(e)` picks the epoch (fit() does), otherwise each pass
    moves on to the next epoch. Per-image v2 transforms and `mix` draw from torch's global
    generator (fit's private, seeded copy during training). `shard(rank, world)` (fit calls it
    under torchrun) makes a training loader yield only this process's part of every global
    batch: the order is the same in every process, the augmentation draws are its own.
    """

    def __init__(self, images, labels, batch_size, *, train, augment=None, mix=None,
                 image_size=None, mean=CIFAR10_MEAN, std=CIFAR10_STD, device=None, seed=0):
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"expected uint8 images (N, C, H, W) and N labels, got {images.dtype} "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        if len(images) == 0 or batch_size < 1 or (train and len(images) < batch_size):
            raise ValueError(f"{len(images)} images cannot make a training batch of {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size, self.train, self.seed, self.epoch = batch_size, train, seed, 0
        self.augment = train if augment is None else augment
        self.mix = mix
        self.image_size = image_size
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)  # (1, C, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.generator = torch.Generator(device=self.device)
        self.rank, self.world = 0, 1

    def shard(self, rank: int, world: int) -> "TensorLoader":
        """Yield only process `rank`'s share (batch_size / world images) of each global batch."""
        if self.batch_size % world:
            raise ValueError(f"a global batch of {self.batch_size} cannot be split evenly over "
                             f"{world} processes: choose a batch size divisible by {world}")
        self.rank, self.world = rank, world
        return self

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict):
        self.epoch, self.seed = state["epoch"], state["seed"]

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) on the device -> the model's float input (B, C, S, S)."""
        if self.augment is True:
            images = random_crop_flip(images, self.generator)
        elif callable(self.augment):
            images = self.augment(images)
        x = images.float().div_(255)  # (B, C, H, W) in [0, 1]
        if self.image_size is not None and self.image_size != x.shape[-1]:
            # bilinear, as torchvision's Resize does on tensors; antialias only matters
            # when shrinking
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=self.image_size < x.shape[-1])
        return (x - self.mean) / self.std

    def __iter__(self):
        # Mix the epoch into the seed so that epochs differ but each can be replayed alone.
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        if self.world > 1 and self.train:  # same order everywhere, each process its own draws
            self.generator.manual_seed((self.seed * 1_000_003 + self.epoch) * 1_009 + 1 + self.rank)
        self.epoch += 1  # a plain `for` loop over epochs gets a new shuffle each time
        share = self.batch_size // self.world if self.train else self.batch_size
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]  # one global batch
            if self.train and self.world > 1:
                idx = idx[self.rank * share:(self.rank + 1) * share]  # this process's part
            x, y = self.transform(self.images[idx]), self.labels[idx]
            yield self.mix(x, y) if self.mix is not None else (x, y)


def train_val_split(images, labels, val_per_class: int, seed: int = 0):
    """Carve a validation set of `val_per_class` images per class out of a training set
    (drawn with `seed`; both parts keep the source order). Returns (train_images,
    train_labels, val_images, val_labels): select recipes on val, report test once."""
    generator = torch.Generator().manual_seed(seed)
    val = []
    for c in sorted(set(labels.tolist())):
        idx = (labels == c).nonzero().flatten()
        if len(idx) <= val_per_class:
            raise ValueError(f"class {c} has {len(idx)} images, "
                             f"not more than val_per_class={val_per_class}")
        val.append(idx[torch.randperm(len(idx), generator=generator)[:val_per_class]])
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[torch.cat(val)] = True
    return images[~is_val], labels[~is_val], images[is_val], labels[is_val]
