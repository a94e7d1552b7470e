"""read_image_file: pixels equal what Pillow wrote; missing and corrupt files name the file."""

import numpy as np
import pytest
from PIL import Image

from foveal.data.image_file import read_image_file
from foveal.errors import DataError, GeometryError


@pytest.mark.parametrize("suffix", ["png", "ppm", "bmp"])
def test_lossless_files_round_trip(tmp_path, suffix):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / f"a.{suffix}")
    np.testing.assert_array_equal(read_image_file(tmp_path / f"a.{suffix}"), rgb)
    grey = read_image_file(tmp_path / f"a.{suffix}", grey=True)
    np.testing.assert_array_equal(grey, np.asarray(Image.fromarray(rgb).convert("L")))


def test_palette_and_alpha_images_become_rgb(tmp_path):
    Image.new("RGBA", (4, 3), (10, 20, 30, 128)).save(tmp_path / "a.png")
    Image.new("P", (4, 3), 5).save(tmp_path / "p.png")
    assert read_image_file(tmp_path / "a.png").shape == (3, 4, 3)
    assert read_image_file(tmp_path / "p.png").shape == (3, 4, 3)


def test_errors_are_one_line_and_of_the_callers_type(tmp_path):
    with pytest.raises(DataError, match=r"^load: expected an existing image file, got .*none"):
        read_image_file(tmp_path / "none.png", op="load")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(GeometryError, match=r"bad\.jpg' \(13 bytes, corrupt or not an image"):
        read_image_file(tmp_path / "bad.jpg", error=GeometryError)
    with pytest.raises(DataError, match="expected a readable image file"):
        read_image_file(tmp_path)
