"""Every augmentation the recipes name: shapes and dtype kept, a real change to the images,
the same output under the same seed, and MixUp/CutMix targets that stay distributions."""
import pytest
import torch

from vit_core import augment as aug

PER_IMAGE = {
    "flip_resized_crop": aug.flip_resized_crop,
    "flip_rotate": aug.flip_rotate,
    "trivialaugment": aug.trivial_augment_crop_flip,
    "randaugment": aug.rand_augment_crop_flip,
}


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("name", PER_IMAGE)
def test_per_image_keeps_shape_and_changes_images(name):
    images = batch()
    torch.manual_seed(0)
    out = PER_IMAGE[name]()(images)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert not torch.equal(out, images)


@pytest.mark.parametrize("name", PER_IMAGE)
def test_per_image_is_deterministic_under_a_seed(name):
    images, transform = batch(), PER_IMAGE[name]()
    torch.manual_seed(1)
    first = transform(images)
    torch.manual_seed(1)
    assert torch.equal(first, transform(images))
    torch.manual_seed(2)
    assert not torch.equal(first, transform(images))


def test_per_image_draws_for_each_image():
    same = batch(1).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    torch.manual_seed(0)
    out = aug.flip_rotate()(same)
    assert len({tuple(o.flatten()[:64].tolist()) for o in out}) > 1  # not one draw for the whole batch


def test_flip_rotate_turns_the_corners_black():
    white = torch.full((4, 3, 32, 32), 255, dtype=torch.uint8)
    torch.manual_seed(0)
    out = aug.flip_rotate(degrees=10)(white)
    rotated = (out != 255).flatten(1).any(1)
    assert rotated.any() and (out[rotated][..., 0, 0] == 0).any()  # an uncovered corner is filled with 0


def test_random_crop_flip_is_deterministic_under_a_generator():
    images = batch()
    a = aug.random_crop_flip(images, torch.Generator().manual_seed(3))
    b = aug.random_crop_flip(images, torch.Generator().manual_seed(3))
    assert a.shape == images.shape and torch.equal(a, b)


def test_mixup_or_cutmix_mixes_labels_into_distributions():
    torch.manual_seed(0)
    images = batch().float() / 255
    labels = torch.arange(8) % 10
    mixed, targets = aug.mixup_or_cutmix(10)(images, labels)
    assert mixed.shape == images.shape and targets.shape == (8, 10)
    assert torch.allclose(targets.sum(1), torch.ones(8)) and (targets >= 0).all()
    assert (targets.max(1).values < 1).any()  # at least one target really mixes two classes
    torch.manual_seed(0)
    again, again_targets = aug.mixup_or_cutmix(10)(images, labels)
    assert torch.equal(mixed, again) and torch.equal(targets, again_targets)
