"""Pretrained weights (and the data a real experiment needs), or a clearly labelled fallback:
the one way the notebooks load them.

    from course import pretrained
    torchvision_model = pretrained.imagenet_vit_b16(fallback="using a stand-in", device=device)  # or None
    cifar100 = pretrained.data_or_none("CIFAR-100's files", load_cifar100, fallback="using a stand-in")

The smoke profile never downloads, so it always gets None. In the full profile, weights
already in torch's hub cache load without a network; otherwise a reachability probe makes an
offline machine give up within seconds. Every None comes with one short printed line that says
what is missing and what the notebook does instead; the full error (a network failure can
take several lines) is kept in `pretrained.last_error`, with its exception chain, and not
printed. In a rehearsal on fakes (tools/rehearsal.py) a failed load is an error: there the
reader's path must run, not the fallback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import torch

from vit_core.data import DataUnavailableError, check_reachable

from . import env

T = TypeVar("T")
SHORT = 80  # characters of an error's message that the printed line keeps

last_error: BaseException | None = None  # the full error behind the last printed fallback


def short_reason(error: BaseException, limit: int = SHORT) -> str:
    """The first clause of an error's message, e.g. 'cannot reach download.pytorch.org' for a
    probe that failed with the resolver's whole story; the error's type unless it is a
    DataUnavailableError, whose messages say what is missing."""
    text = (str(error).strip().splitlines() or [""])[0]
    for cut in (" (", "; "):
        text = text.split(cut, 1)[0]
    if len(text) > limit:  # keep both ends: a long folder name in the middle, the file to provide at the end
        text = text[:limit // 2 - 2] + " ... " + text[-(limit - limit // 2 - 3):]
    if isinstance(error, DataUnavailableError):
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def fall_back(what: str, error: BaseException, fallback: str) -> None:
    """Print one line (what is unavailable, why in brief, what runs instead), keep `error` in
    `last_error`, return None; in a rehearsal on fakes raise instead."""
    global last_error
    if env.fakes_in_use():  # a rehearsal (tools/rehearsal.py) must take the reader's path, not the fallback
        raise RuntimeError(f"rehearsal on fakes: {what} failed to load, which would send a reader "
                           f"to the fallback ({fallback})") from error
    last_error = error
    print(f"{what} are UNAVAILABLE ({short_reason(error)}; full error in pretrained.last_error) -> {fallback}")
    return None


def load_or_none(what: str, load: Callable[[], T], url: str, fallback: str, cached: bool = False) -> T | None:
    """`load()`, or None with the reason printed in one line: the smoke profile, no network, or
    a failed download. `url` is probed first unless `cached` says the file is already on disk."""
    if not env.downloads_allowed():
        print(f"smoke profile: no downloads, so {what} are SKIPPED -> {fallback}")
        return None
    try:
        if not cached:
            check_reachable(url, f"{what} need a network connection")
        return load()
    except (OSError, RuntimeError) as error:  # DataUnavailableError and URLError are OSErrors
        return fall_back(what, error, fallback)


def data_or_none(what: str, load: Callable[[], T], fallback: str) -> T | None:
    """`load()`, a dataset loader of vit_core.data (which fails within seconds offline, with
    DataUnavailableError naming the file to provide), or None with one printed line."""
    try:
        return load()
    except DataUnavailableError as error:
        return fall_back(what, error, fallback)


def in_hub_cache(url: str) -> bool:
    """Whether torch.hub already holds the file behind `url` (no download needed)."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name).is_file()


def imagenet_vit_b16(fallback: str, device=None, on_cpu: bool = False):
    """torchvision's `vit_b_16` with its ImageNet-1k weights (IMAGENET1K_V1, 330 MB), or None.

    `device`: where the weights would be fine-tuned. Fine-tuning ViT-B/16 at 224 px takes
    hours on a CPU, so on one the weights are not loaded (one line says so) unless `on_cpu`
    or a fast dev run (2 steps). Returns torchvision's own module;
    `vit_core.from_torchvision(model)` copies it into a ViT."""
    from torchvision.models import ViT_B_16_Weights, vit_b_16

    if device is not None and torch.device(device).type != "cuda" and not (on_cpu or env.is_fast_dev_run()):
        print(f"no GPU ({env.hardware()}): ViT-B/16 at 224 px is a GPU job, its weights are not loaded -> {fallback}")
        return None
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
