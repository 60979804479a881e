"""Pretrained weights, or a clearly labelled fallback: the one way the notebooks load them.

    from course import pretrained
    torchvision_model = pretrained.imagenet_vit_b16(fallback="using a stand-in")  # or None

The smoke profile never downloads, so it always gets None. In the full profile, weights
already in torch's hub cache load without a network; otherwise a reachability probe makes an
offline machine give up within seconds. Every None comes with one printed line that says
why and what the notebook does instead, except in a rehearsal on fakes (tools/rehearsal.py),
where a failed load is an error: there the reader's path must run, not the fallback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import torch

from vit_core.data import check_reachable

from . import env

T = TypeVar("T")


def load_or_none(what: str, load: Callable[[], T], url: str, fallback: str, cached: bool = False) -> T | None:
    """`load()`, or None with the reason printed: the smoke profile, no network, or a failed
    download. `url` is probed first unless `cached` says the file is already on disk."""
    if not env.downloads_allowed():
        print(f"smoke profile: no downloads, so {what} are SKIPPED -> {fallback}")
        return None
    try:
        if not cached:
            check_reachable(url, f"{what} need a network connection")
        return load()
    except (OSError, RuntimeError) as error:  # DataUnavailableError and URLError are OSErrors
        if env.fakes_in_use():  # a rehearsal (tools/rehearsal.py) must take the reader's path, not the fallback
            raise RuntimeError(f"rehearsal on fakes: {what} failed to load, which would send a reader "
                               f"to the fallback ({fallback})") from error
        print(f"{what} are UNAVAILABLE ({type(error).__name__}: {error}) -> {fallback}")
        return None


def in_hub_cache(url: str) -> bool:
    """Whether torch.hub already holds the file behind `url` (no download needed)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name).is_file()


def imagenet_vit_b16(fallback: str):
    """torchvision's `vit_b_16` with its ImageNet-1k weights (IMAGENET1K_V1, 330 MB), or None.

    Returns torchvision's own module; `vit_core.from_torchvision(model)` copies it into a ViT."""
    from torchvision.models import ViT_B_16_Weights, vit_b_16

    weights = ViT_B_16_Weights.IMAGENET1K_V1
    model = load_or_none("ImageNet-1k ViT-B/16 weights", lambda: vit_b_16(weights=weights).eval(),
                         weights.url, fallback, cached=in_hub_cache(weights.url))
    if model is not None and is_fake(weights.url):
        print(f"RANDOM WEIGHTS: {Path(weights.url).name} in {torch.hub.get_dir()} is a fake written for a "
              f"rehearsal (tools/fakes.py), not ImageNet weights: nothing this model predicts means anything")
    return model


def is_fake(url: str) -> bool:
    """Whether the hub-cache file behind `url` is one of tools/fakes.py's random stand-ins."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return any(line.startswith(Path(url).name + ":") for line in env.fakes_described(folder))
