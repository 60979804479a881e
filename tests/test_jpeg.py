"""course.jpeg: reading a JPEG file's IJG quality and chroma subsampling back from the file."""
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from course.jpeg import colour_resolution, jpeg_settings, survey


def _image(seed=0, size=(32, 32)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("quality, subsampling, code", [(75, "4:2:0", 2), (90, "4:4:4", 0), (30, "4:2:2", 1)])
def test_quality_and_subsampling_are_read_back(tmp_path, quality, subsampling, code):
    path = tmp_path / "x.jpg"
    _image().save(path, "JPEG", quality=quality, subsampling=code)
    assert jpeg_settings(path) == {"quality": quality, "subsampling": subsampling, "size": (32, 32)}


def test_tables_of_another_encoder_match_no_ijg_quality(tmp_path):
    path = tmp_path / "custom.jpg"
    flat = [[3] * 64, [7] * 64]  # no IJG quality scales the standard tables to constants
    _image().save(path, "JPEG", qtables=flat)
    assert jpeg_settings(path)["quality"] is None


def test_a_png_is_refused(tmp_path):
    path = tmp_path / "x.png"
    _image().save(path)
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_settings(path)


def test_survey_counts_every_nth_file(tmp_path):
    for i in range(6):
        (tmp_path / "a").mkdir(exist_ok=True)
        _image(i).save(tmp_path / "a" / f"{i}.jpg", quality=75 if i % 2 == 0 else 50)
    assert survey(tmp_path, every=1) == Counter({(75, "4:2:0", (32, 32)): 3, (50, "4:2:0", (32, 32)): 3})
    assert survey(tmp_path, every=2) == Counter({(75, "4:2:0", (32, 32)): 3})  # files 0, 2, 4
    with pytest.raises(FileNotFoundError):
        survey(tmp_path / "empty")


def test_colour_resolution():
    assert colour_resolution((32, 32), "4:2:0") == (16, 16)
    assert colour_resolution((32, 32), "4:2:2") == (16, 32)
    assert colour_resolution((33, 31), "4:2:0") == (17, 16)
    assert colour_resolution((32, 32), "4:4:4") == (32, 32)
    assert colour_resolution((32, 32), "other") is None
