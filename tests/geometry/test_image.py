"""Image reading against PIL's own decode, and grey conversion against OpenCV's cvtColor."""

import cv2
import numpy as np
import pytest
from PIL import Image

from foveal.errors import GeometryError
from foveal.geometry.image import read_image, to_grey, to_grey8

rng = np.random.default_rng(0)


def test_read_png_and_ppm_round_trip(tmp_path):
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    for suffix in ("png", "ppm"):
        Image.fromarray(rgb).save(tmp_path / f"a.{suffix}")
        np.testing.assert_array_equal(read_image(tmp_path / f"a.{suffix}"), rgb)
    assert read_image(tmp_path / "a.png", grey=True).shape == (7, 9)


def test_grey_equals_opencv_rgb2gray():
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ours = to_grey8(rgb)
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(ours.astype(int) - ref).max() <= 1  # OpenCV rounds in fixed point
    assert to_grey(rgb).dtype == np.float64


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(GeometryError, match="not found"):
        read_image(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(GeometryError, match=r"bad\.png"):
        read_image(tmp_path / "bad.png", op="sfm")


def test_bad_arrays_are_one_line_errors():
    with pytest.raises(GeometryError, match=r"shape \(H, W\) or \(H, W, 3\)"):
        to_grey(np.zeros((2, 3, 5)))
    with pytest.raises(GeometryError, match="NaN or inf"):
        to_grey(np.full((2, 2), np.nan))
