"""Where a run happens: the VIT_PROFILE switch, the device, and the project's folders.

`VIT_PROFILE=smoke` (set by CI) shrinks every notebook to a few CPU minutes, offline.
`full` (the default) is what a reader runs: real budgets, downloads allowed.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

PROFILES = ("full", "smoke")
ROOT = Path(__file__).resolve().parent.parent  # the repository root


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
    """Where datasets and caches land: $VIT_DATA, else <repo>/data."""
    path = Path(os.environ.get("VIT_DATA", ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    path = ROOT / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
