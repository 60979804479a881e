"""DataLoaders for folders of large images: any ImageFolder tree, and Oxford-IIIT Pet as cat
vs dog. These take the ordinary torchvision `ImageFolder` + `DataLoader` path, decoding and
augmenting each image on the CPU in worker processes."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .downloads import DataUnavailableError, check_reachable, download_errors

PETS_CLASSES = ("cat", "dog")  # pets_binary_loader labels: Oxford-IIIT Pet binary-category order
IMAGENET_MEAN = (0.485, 0.456, 0.406)    # what torchvision's pretrained ViTs were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's OxfordIIITPet downloads from this host
PETS_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/"


def folder_transform(image_size: int, train: bool, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """PIL image -> normalised float tensor: random resized crop + flip for training,
    resize + centre crop (the usual 224/256 ratio) for evaluation."""
    from torchvision import transforms as T

    if train:
        steps = [T.RandomResizedCrop(image_size, scale=(0.35, 1.0)), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def _has_image_bytes(path: str) -> bool:
    # The Kaggle Cats-vs-Dogs archive ships a few empty files; skip them instead of crashing.
    image = path.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp"))
    return image and os.path.getsize(path) > 0


def _loader(dataset, batch_size: int, train: bool, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train,
                      num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                      persistent_workers=num_workers > 0)


def image_folder_loader(root, image_size: int, batch_size: int, train: bool, num_workers: int = 2,
                        mean=IMAGENET_MEAN, std=IMAGENET_STD) -> DataLoader:
    """Any ImageFolder tree (<root>/<class>/<image>, e.g. Kaggle's PetImages/{Cat,Dog}) as a
    DataLoader of (x float (B, 3, S, S) normalised, y int64 (B,)); classes in alphabetical order."""
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir() or not any(p.is_dir() for p in root.iterdir()):
        raise DataUnavailableError(f"{root} is not an image folder: "
                                   f"provide {root}/<class>/<image files>")
    dataset = ImageFolder(str(root), transform=folder_transform(image_size, train, mean, std),
                          is_valid_file=_has_image_bytes)
    return _loader(dataset, batch_size, train, num_workers)


def pets_binary_loader(split: str, image_size: int, batch_size: int, root, download: bool = False,
                       num_workers: int = 2) -> DataLoader:
    """Oxford-IIIT Pet (in the data folder `root`) as cat (0) vs dog (1); split 'train'
    (their trainval) or 'test'. download=True lets torchvision fetch it (about 800 MB)."""
    from torchvision.datasets import OxfordIIITPet

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(root) / "oxford-iiit-pet"
    present = (folder / "images").is_dir() and (folder / "annotations").is_dir()
    missing = (f"Oxford-IIIT Pet is not in {folder}: put images.tar.gz and annotations.tar.gz from "
               f"{PETS_URL} into {folder}/ and unpack them there")
    if not present and not download:
        raise DataUnavailableError(missing + ", or pass download=True")
    if not present:
        check_reachable(PETS_URL, missing)
    with download_errors("Oxford-IIIT Pet", missing):
        dataset = OxfordIIITPet(str(root), split="trainval" if split == "train" else "test",
                                target_types="binary-category", download=not present,
                                transform=folder_transform(image_size, split == "train"))
    return _loader(dataset, batch_size, split == "train", num_workers)
