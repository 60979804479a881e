"""Augmentations for uint8 image batches, built from torchvision.transforms.v2.

`TensorLoader` (data.py) calls an `augment` function on each uint8 batch (B, C, H, W) and a
`mix` function on each normalised float batch with its labels. What torchvision ships is
used as it ships; the only code here is the per-image loop (a v2 transform given a batch
draws one set of random parameters for the whole batch) and the batched pad-crop-flip,
which is the one augmentation cheap enough to vectorise by hand.

A per-image v2 transform runs a Python loop over the batch; with a small model on small
images that loop can take a large share of each training step, so time it before relying on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import v2


class PerImage:
    """Apply a torchvision v2 transform to every image of a uint8 batch on its own, so each
    image gets its own random parameters. Random draws come from torch's global generator
    (inside `fit` that is fit's private, seeded copy)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(image) for image in images])  # (B, C, H, W)

    def __repr__(self):
        return f"PerImage({self.transform})"


def random_crop_flip(images: torch.Tensor, generator: torch.Generator | None = None,
                     padding: int = 4) -> torch.Tensor:
    """Pad-`padding` random crop and horizontal flip of a whole uint8 batch at once.

    Every image gets its own offset and coin flip; two gathers (rows, then columns) do all
    the crops, a few kernel launches per batch instead of a Python loop per image.
    """
    B, C, H, W = images.shape
    padded = F.pad(images, (padding,) * 4)  # (B, C, H + 2p, W + 2p), zero border
    dy, dx = torch.randint(0, 2 * padding + 1, (2, B, 1), generator=generator, device=images.device)
    rows = dy + torch.arange(H, device=images.device)  # (B, H): source row of each output row
    cols = dx + torch.arange(W, device=images.device)  # (B, W)
    flip = torch.rand(B, 1, generator=generator, device=images.device) < 0.5
    cols = torch.where(flip, cols.flip(-1), cols)  # a flipped image reads its columns backwards
    rows = rows[:, None, :, None].expand(B, C, H, W + 2 * padding)  # (B, C, H, W + 2p)
    out = padded.gather(2, rows)  # (B, C, H, W + 2p): the crop's rows
    return out.gather(3, cols[:, None, None, :].expand(B, C, H, W))  # (B, C, H, W)


def flip_resized_crop(image_size: int = 32, scale: tuple[float, float] = (0.8, 1.0)) -> PerImage:
    """Horizontal flip, then a random resized crop of `scale` (a fraction of the area, 80-100%
    by default), aspect 3/4-4/3, bilinear, back to `image_size`."""
    return PerImage(v2.Compose([
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomResizedCrop(image_size, scale=scale, ratio=(3 / 4, 4 / 3), antialias=True),
    ]))


def flip_rotate(degrees: float = 10.0) -> PerImage:
    """Horizontal flip, then a random rotation of up to `degrees` either way (the corners it
    uncovers are filled with black)."""
    return PerImage(v2.Compose([v2.RandomHorizontalFlip(p=0.5), v2.RandomRotation(degrees)]))


def trivial_augment_crop_flip() -> PerImage:
    """TrivialAugment (one random op of random strength per image), then pad-4 crop + flip."""
    return PerImage(v2.Compose([v2.TrivialAugmentWide(), v2.RandomCrop(32, padding=4),
                                v2.RandomHorizontalFlip()]))


def rand_augment_crop_flip(num_ops: int = 2, magnitude: int = 9) -> PerImage:
    """RandAugment (`num_ops` random ops at `magnitude` per image), then pad-4 crop + flip."""
    return PerImage(v2.Compose([v2.RandAugment(num_ops=num_ops, magnitude=magnitude),
                                v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]))


def mixup_or_cutmix(num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0):
    """Per batch, MixUp or CutMix (one of the two at random, as timm and DeiT do). Takes
    (float images, int labels), returns (mixed images, soft targets (B, num_classes))."""
    return v2.RandomChoice([v2.MixUp(alpha=mixup_alpha, num_classes=num_classes),
                            v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes)])
