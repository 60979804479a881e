"""What a JPEG copy of a data set gave up, read from its files: the IJG quality whose
quantisation tables a file carries, and how its colour (chroma) was subsampled.

The CIFAR-10 copy this repository trains on is JPEG, not CIFAR-10's own pixels; notebook 06
prints `survey(<data>/cifar10/train)` beside its comparison with the number published by tintn's
vision-transformer-from-scratch.
Pillow does the reading; the quality is found by encoding a blank image at every IJG quality
1-100 with Pillow (libjpeg's tables) and matching the tables, so no table is written out here.
"""
from __future__ import annotations

import io
from collections import Counter
from functools import lru_cache
from pathlib import Path

from PIL import Image, JpegImagePlugin

SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}  # Pillow's get_sampling() codes
CHROMA_SCALE = {"4:4:4": (1, 1), "4:2:2": (2, 1), "4:2:0": (2, 2)}  # (width, height) divisors of the colour planes


def _tables(image: Image.Image) -> tuple:
    return tuple(tuple(image.quantization[k]) for k in sorted(image.quantization))


@lru_cache(maxsize=None)
def _ijg_tables(quality: int) -> tuple:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", quality=quality)
    return _tables(Image.open(buffer))


def jpeg_settings(path) -> dict:
    """{'quality': the IJG quality (1-100) whose tables the file uses, None when no IJG quality
    matches (another encoder's tables), 'subsampling': '4:4:4' | '4:2:2' | '4:2:0' | 'other',
    'size': (width, height)} of one JPEG file. Raises ValueError for a file that is not a JPEG."""
    with Image.open(path) as image:
        if image.format != "JPEG":
            raise ValueError(f"{path} is a {image.format} file, not a JPEG")
        tables, size = _tables(image), image.size
        subsampling = SUBSAMPLING.get(JpegImagePlugin.get_sampling(image), "other")
    quality = next((q for q in range(1, 101) if _ijg_tables(q) == tables), None)
    return {"quality": quality, "subsampling": subsampling, "size": size}


def survey(folder, every: int = 100) -> Counter:
    """Counts of (quality, subsampling, size) over every `every`-th JPEG (.jpg or .jpeg, any case)
    under `folder` (sorted paths, so the same files each time)."""
    files = sorted(f for f in Path(folder).rglob("*") if f.suffix.lower() in (".jpg", ".jpeg"))
    if not files:
        raise FileNotFoundError(f"no .jpg files under {folder}")
    return Counter(tuple(jpeg_settings(f).values()) for f in files[::every])


def colour_resolution(size: tuple[int, int], subsampling: str) -> tuple[int, int] | None:
    """(width, height) at which a file of `size` stores its colour planes; None if unknown."""
    if subsampling not in CHROMA_SCALE:
        return None
    (w, h), (dw, dh) = size, CHROMA_SCALE[subsampling]
    return -(-w // dw), -(-h // dh)  # rounded up: an odd width or height keeps its last colour sample
