"""Format-true fakes of everything the full profile downloads, so its real loading code runs offline.

    from tools import fakes
    fakes.write_all(data_root, torch_home, hf_home)

writes random stand-ins in exactly the on-disk layouts that torchvision, torch.hub and the
HuggingFace Hub cache read, so `CIFAR100(download=False)`, `OxfordIIITPet`, `vit_b_16(weights=
IMAGENET1K_V1)`, `from_google_npz` and `ViTForImageClassification.from_pretrained` all load
them as if they had been downloaded:

    <data_root>/cifar-100-python/{train,test,meta}           pickles, 3 + 1 random images per class
    <data_root>/oxford-iiit-pet/{images/*.jpg, annotations/{trainval,test}.txt}   2 cat + 2 dog breeds
    <data_root>/ViT-B_16.npz                                 Google's npz layout (notebook 10)
    <torch_home>/hub/checkpoints/vit_b_16-c867db91.pth       random ViT-B/16 tensors of the real shapes
    <hf_home>/hub/models--google--vit-base-patch16-224/      random ViT-B/16 in the Hub's cache layout

plus `FAKE_DATA.txt` in data_root and `FAKE_WEIGHTS.txt` beside the torch.hub file, naming every
fake. course.env and course.pretrained read those markers and label every output of a run on
them "FAKE DATA / RANDOM WEIGHTS". torchvision checks the md5 of CIFAR pickles; fakes cannot
pass it, so only a rehearsal kernel (tools/rehearsal.py) skips that check, for files under the
fake folder. Nothing written here is a result; only rehearsals use it. About 1 GB, 20 s.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from course.env import FAKE_DATA_MARKER as DATA_MARKER, FAKE_WEIGHTS_MARKER as WEIGHTS_MARKER
from course.env import fakes_described as described  # noqa: F401  (the markers' reader: the lessons need it too)

VIT_B_16_FILE = "vit_b_16-c867db91.pth"  # ViT_B_16_Weights.IMAGENET1K_V1's file name
HF_REPO = "google/vit-base-patch16-224"
HF_REVISION = "fa4e1e2c9f3a7b8d6e5c4b3a2918f7e6d5c4b3a2"  # any 40 hex digits: the snapshot's name
PET_BREEDS = (("Abyssinian", 1), ("Bengal", 1), ("beagle", 2), ("boxer", 2))  # (breed, species: 1 cat, 2 dog)


def _mark(folder: Path, marker: str, line: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / marker, "a") as f:
        f.write(line.rstrip() + "\n")


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)  # str keys: torchvision unpickles with encoding="latin1"


def write_cifar100(root, train_per_class: int = 3, test_per_class: int = 1, seed: int = 0) -> Path:
    """<root>/cifar-100-python as torchvision keeps it: `train` and `test` hold uint8 'data'
    (N, 3072: 1024 R, then G, then B, row-major) with 'fine_labels' and 'coarse_labels';
    `meta` names the 100 fine and 20 coarse classes."""
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        fine = np.repeat(np.arange(100), per_class)
        rng.shuffle(fine)
        _pickle(folder / split, {"filenames": [f"fake_{i}.png" for i in range(len(fine))],
                                 "batch_label": f"FAKE {split} batch", "fine_labels": fine.tolist(),
                                 "coarse_labels": (fine // 5).tolist(),
                                 "data": rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)})
    _pickle(folder / "meta", {"fine_label_names": [f"fake_class_{i:02d}" for i in range(100)],
                              "coarse_label_names": [f"fake_superclass_{i:02d}" for i in range(20)]})
    _mark(Path(root), DATA_MARKER, f"cifar-100-python: FAKE CIFAR-100, random pixels, "
                                   f"{100 * train_per_class} train / {100 * test_per_class} test images")
    return folder


def write_pets(root, per_breed: tuple[int, int] = (12, 6), size: tuple[int, int] = (80, 60), seed: int = 0) -> Path:
    """<root>/oxford-iiit-pet as torchvision keeps it: images/<Breed>_<n>.jpg and
    annotations/{trainval,test}.txt with lines '<image id> <class id> <species> <breed id>'."""
    from PIL import Image

    folder = Path(root) / "oxford-iiit-pet"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = {"trainval": [], "test": []}
    for class_id, (breed, species) in enumerate(PET_BREEDS, start=1):
        for n in range(1, sum(per_breed) + 1):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "images" / f"{breed}_{n}.jpg", quality=75)
            split = "trainval" if n <= per_breed[0] else "test"
            lines[split].append(f"{breed}_{n} {class_id} {species} {n}")
    for split, rows in lines.items():
        (folder / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    _mark(Path(root), DATA_MARKER, f"oxford-iiit-pet: FAKE Oxford-IIIT Pet, random-pixel JPEGs, "
                                   f"{len(lines['trainval'])} trainval / {len(lines['test'])} test")
    return folder


def random_fill(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values of the right shapes for every parameter and buffer, fast (no layer-by-layer
    initialisation): matrices N(0, 0.02), vectors N(0, 0.02) too (so that a loader that swapped
    two biases or gains would show), in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.normal_(0.0, 0.02, generator=generator)
    return model


def random_vit_b_16(seed: int = 0):
    """torchvision's vit_b_16 architecture with random_fill values (built on the meta device,
    then materialised: a second, where torchvision's own initialisation takes many)."""
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.vit_b_16()
    return random_fill(model.to_empty(device="cpu"), seed)


def write_vit_b_16(torch_home, model=None) -> Path:
    """<torch_home>/hub/checkpoints/vit_b_16-c867db91.pth: the file torchvision's weight enum
    loads without a download (and without a hash check) when it is already there."""
    folder = Path(torch_home) / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save((model or random_vit_b_16()).state_dict(), folder / VIT_B_16_FILE)
    _mark(folder, WEIGHTS_MARKER, f"{VIT_B_16_FILE}: RANDOM WEIGHTS standing in for ImageNet-1k ViT-B/16")
    return folder / VIT_B_16_FILE


def write_google_npz(root, model=None) -> Path:
    """<root>/ViT-B_16.npz in the layout of Google's vit_models bucket (notebook 10 reads it)."""
    from vit_core import from_torchvision, to_google_npz

    path = Path(root) / "ViT-B_16.npz"
    to_google_npz(from_torchvision(model or random_vit_b_16()), path)
    _mark(Path(root), DATA_MARKER, "ViT-B_16.npz: RANDOM WEIGHTS in Google's npz layout")
    return path


def write_huggingface(hf_home, seed: int = 0) -> Path:
    """google/vit-base-patch16-224 in the Hub cache under <hf_home>/hub (HF_HOME), random weights:
    from_pretrained finds it there with HF_HUB_OFFLINE=1."""
    import transformers

    repo = Path(hf_home) / "hub" / f"models--{HF_REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / HF_REVISION
    with torch.device("meta"):
        model = transformers.ViTForImageClassification(transformers.ViTConfig(num_labels=1000))
    random_fill(model.to_empty(device="cpu"), seed).save_pretrained(snapshot)  # config.json + model.safetensors
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(HF_REVISION)
    _mark(snapshot, WEIGHTS_MARKER, f"{HF_REPO}: RANDOM WEIGHTS (fake Hub cache entry)")
    return snapshot


def write_all(data_root, torch_home, hf_home=None) -> dict[str, Path]:
    """Every fake above; returns {name: path}. One random ViT-B/16 serves the torch.hub file
    and the npz; hf_home=None skips the HuggingFace entry."""
    model = random_vit_b_16()
    paths = {"cifar100": write_cifar100(data_root), "pets": write_pets(data_root),
             "vit_b_16": write_vit_b_16(torch_home, model), "npz": write_google_npz(data_root, model)}
    if hf_home is not None:
        paths["huggingface"] = write_huggingface(hf_home)
    return paths
