"""Data for the notebooks: CIFAR as uint8 tensors on the device, and DataLoaders for folders.

Small images (CIFAR, 32 px) take the fast path: a split is decoded once into one uint8
tensor (cached under data/cache/), kept on the device, and `TensorLoader` crops, flips,
resizes and normalises whole batches there. A Python-side DataLoader would spend more time
per 32 px image than the model does. Folders of large images take the ordinary
torchvision `ImageFolder` + `DataLoader` path (`image_folder_loader`, `pets_binary_loader`).

Offline, missing data fails at once with `DataUnavailableError` naming what to provide.
"""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from . import env

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel mean of the CIFAR-10 train set, in [0, 1]
CIFAR10_STD = (0.2470, 0.2435, 0.2616)   # per-channel standard deviation, same units
IMAGENET_MEAN = (0.485, 0.456, 0.406)    # what torchvision's pretrained ViTs were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
SHARED_CIFAR10 = env.ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.xz"
DOWNLOAD_TIMEOUT_S = 30  # a stalled connection must fail, not hang a notebook forever


class DataUnavailableError(FileNotFoundError):
    """The data is not on disk and may not (or could not) be downloaded; the message says
    which file or folder to provide."""


def _download_allowed(download: bool | None) -> bool:
    return (not env.is_smoke()) if download is None else bool(download)


@contextmanager
def _download_guard(what: str):
    """Bound every socket operation and turn network failures into DataUnavailableError."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        yield
    except (OSError, RuntimeError) as error:  # URLError and socket.timeout are OSErrors
        if isinstance(error, DataUnavailableError):
            raise
        raise DataUnavailableError(f"could not download {what} ({type(error).__name__}: {error}); "
                                   f"provide it by hand as described above, then run again") from error
    finally:
        socket.setdefaulttimeout(old)


# ---------------------------------------------------------------- CIFAR as tensors

def _cifar10_missing_message(root: Path) -> str:
    hint = (f" or unpack {SHARED_CIFAR10} into {root}/ (tar -xJf {SHARED_CIFAR10} -C {root})"
            if SHARED_CIFAR10.exists() else
            f" or put the JPEG copy into {root}/cifar10/{{train,test}}/<class>/*.jpg")
    return f"CIFAR-10 is not in {root}: put cifar-10-python.tar.gz into {root}/{hint}"


def _missing_message(name: str, root: Path) -> str:
    if name == "cifar10":
        return _cifar10_missing_message(root)
    return (f"CIFAR-100 is not in {root}: put cifar-100-python.tar.gz "
            f"(https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz) into {root}/")


def _decode_folder(folder: Path, threads: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """An ImageFolder tree of small JPEGs -> uint8 (N, 3, H, W) and int64 labels.

    libjpeg via torchvision decodes a list of byte tensors about 10x faster than PIL one
    file at a time (measured: ~34,000 vs ~3,400 CIFAR JPEGs/s on one core); reading the
    bytes is I/O, so threads help there.
    """
    from concurrent.futures import ThreadPoolExecutor
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files, labels = [], []
    for label, cls in enumerate(classes):
        names = sorted(f for f in os.listdir(folder / cls) if f.lower().endswith((".jpg", ".jpeg")))
        files += [folder / cls / f for f in names]
        labels += [label] * len(names)
    with ThreadPoolExecutor(threads) as pool:
        raw = list(pool.map(read_file, [str(f) for f in files]))
    images = torch.stack(decode_jpeg(raw, mode=ImageReadMode.RGB))  # (N, 3, H, W) uint8
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
    if not (root / folder).is_dir() and not download:
        raise DataUnavailableError(_missing_message(name, root) + " (downloading is off: smoke profile "
                                   "or download=False)")
    with _download_guard(f"{name} from {cls.url}"):
        ds = cls(str(root), train=split == "train", download=not (root / folder).is_dir())
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def _jpeg_copy(name: str, root: Path) -> Path | None:
    return root / "cifar10" if name == "cifar10" and (root / "cifar10" / "train").is_dir() else None


def source_name(name: str, root=None) -> str:
    """How to label numbers measured on `name`: which copy of the data they come from."""
    root = Path(root) if root is not None else env.data_dir()
    if name == "cifar10":
        return "CIFAR-10 (JPEG q75 copy)" if _jpeg_copy(name, root) else "CIFAR-10 (torchvision)"
    if name == "cifar100":
        return "CIFAR-100 (torchvision)"
    raise ValueError(f"unknown dataset {name!r}; expected 'cifar10' or 'cifar100'")


def load_tensors(name: str, split: str, root=None, download: bool | None = None, verbose: bool = True):
    """One CIFAR split as (images uint8 (N, 3, 32, 32), labels int64 (N,)) on the CPU.

    cifar10 reads the JPEG copy at <root>/cifar10/<split> when present, else torchvision's
    download. The first call decodes and writes <root>/cache/<source>-<split>.pt; later
    calls load that (well under a second). download=None: allowed in the full profile only.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    label = source_name(name, root)  # also validates `name`
    root = Path(root) if root is not None else env.data_dir()
    jpeg = _jpeg_copy(name, root)
    if jpeg is not None and not (jpeg / split).is_dir():
        raise DataUnavailableError(f"{jpeg / split} is missing: the JPEG copy needs both train/ and test/")
    cache = root / "cache" / f"{name}-{'jpeg' if jpeg else 'torchvision'}-{split}.pt"
    if cache.is_file():
        blob = torch.load(cache, weights_only=True)
        return blob["images"], blob["labels"]
    start = time.perf_counter()
    if jpeg is not None:
        images, labels = _decode_folder(jpeg / split)
    else:
        images, labels = _torchvision_cifar(name, split, root, _download_allowed(download))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")  # atomic: a half-written cache is never read
    torch.save({"images": images, "labels": labels}, tmp)
    os.replace(tmp, cache)
    if verbose:
        print(f"{label} {split}: decoded {len(labels):,} images in {time.perf_counter() - start:.1f} s, "
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
                raise ValueError(f"class {old} has {len(idx)} images, fewer than per_class={per_class}")
            idx = idx[torch.randperm(len(idx), generator=generator)[:per_class]].sort().values
        keep.append(idx)
        new_labels.append(torch.full((len(idx),), new, dtype=torch.int64))
    keep, new_labels = torch.cat(keep), torch.cat(new_labels)
    order = keep.argsort()  # interleave the classes again as they were in the source
    return images[keep[order]], new_labels[order]
