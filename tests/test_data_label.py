"""The data label a run's record carries: vit_core's name of the copy, plus the JPEG quality
when the project's survey finds one IJG quality in every sampled file."""
from PIL import Image

from course.env import ROOT, cifar10_ready
from course.runs import data_label


def _jpeg_copy(root, qualities):
    for split in ("train", "test"):
        for i, quality in enumerate(qualities):
            folder = root / "cifar10" / split / "cat"
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (i * 40, 90, 200)).save(folder / f"{i}.jpg", quality=quality)
    return root


def test_one_quality_is_named(tmp_path):
    assert data_label(_jpeg_copy(tmp_path, [75, 75]), every=1) == "CIFAR-10 (JPEG q75 copy)"


def test_mixed_qualities_keep_the_plain_label(tmp_path):
    assert data_label(_jpeg_copy(tmp_path, [75, 90]), every=1) == "CIFAR-10 (JPEG copy)"


def test_the_shipped_copy_is_q75():
    assert cifar10_ready(ROOT / "data") is not None  # unpacks the shipped archive if needed
    assert data_label(ROOT / "data") == "CIFAR-10 (JPEG q75 copy)"
