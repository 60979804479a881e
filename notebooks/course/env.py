"""Where a notebook runs: the VIT_PROFILE switch, the device banner, and the course's folders.

`VIT_PROFILE=smoke` (set by CI) shrinks every notebook to a few CPU minutes and never
downloads; `full` (the default) is what a reader runs: real budgets, downloads allowed.
`VIT_DATA` moves the data folder (datasets, caches, runs) anywhere, e.g. a Google Drive
folder on Colab; by default it is data/ in this repository. Only this module reads the
environment; vit_core takes every path and switch as an argument.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

PROFILES = ("full", "smoke")
ROOT = Path(__file__).resolve().parents[2]  # the repository: notebooks/course/env.py -> ../..
# The offline JPEG copy of CIFAR-10 as this project's machines keep it next to the checkout;
# unpack it into the data folder with `tar -xJf <archive> -C <data folder>` (.ci/run does).
OFFLINE_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.xz"


def get_profile() -> str:
    profile = os.environ.get("VIT_PROFILE", "full").strip().lower() or "full"
    if profile not in PROFILES:
        raise ValueError(f"VIT_PROFILE must be one of {PROFILES}, got {profile!r}")
    return profile


def is_smoke() -> bool:
    return get_profile() == "smoke"


def pick(full, smoke):
    """The value for the current profile: `pick(full=100, smoke=2)` epochs."""
    return smoke if is_smoke() else full


def downloads_allowed() -> bool:
    """Whether notebooks may download data or weights: in the full profile only."""
    return not is_smoke()


def get_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def hardware_name(device: torch.device | None = None) -> str:
    device = device or get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"


def describe() -> str:
    """One line every notebook prints first: profile, device and library versions."""
    import torchvision

    line = (f"profile: {get_profile()} | device: {hardware_name()} | "
            f"torch {torch.__version__} | torchvision {torchvision.__version__}")
    print(line)
    return line


def data_dir() -> Path:
    """Where datasets, decode caches and runs land: $VIT_DATA, else data/ in the repository."""
    path = Path(os.environ.get("VIT_DATA") or ROOT / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """figures/ in the repository, where the README's figures come from."""
    path = ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
