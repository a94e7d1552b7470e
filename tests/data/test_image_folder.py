"""ImageFolder reading: pixels equal what PIL wrote (lossless PNG), and every bad input fails."""

import numpy as np
import pytest
from PIL import Image

from foveal.data.image_folder import read_image_folder, read_split_folder
from foveal.errors import DataError


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    pixels = {}
    for c in ("cat", "dog"):
        for i in range(3):
            a = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            write(tmp_path / "data" / c / f"{i}.png", a)
            pixels[(c, i)] = a
    return tmp_path / "data", pixels


def test_pixels_and_labels_equal_what_was_written(folder):
    root, pixels = folder
    ds = read_image_folder(root, progress=False)
    assert ds.classes == ["cat", "dog"] and ds.images.shape == (6, 5, 4, 3)
    for k, ((c, _), a) in enumerate(sorted(pixels.items())):
        np.testing.assert_array_equal(ds.images[k], a)
        assert ds.classes[ds.labels[k]] == c


def test_grey_images_give_one_channel_and_ppm_is_read(tmp_path):
    write(tmp_path / "a" / "x.pgm", np.full((3, 3), 7, np.uint8))
    write(tmp_path / "b" / "y.ppm", np.full((3, 3, 3), 9, np.uint8))
    ds = read_image_folder(tmp_path, progress=False)
    assert ds.images.shape == (2, 3, 3, 3)  # mixed grey and RGB: all converted to RGB
    np.testing.assert_array_equal(ds.images[0], np.full((3, 3, 3), 7, np.uint8))


def test_all_grey_folder_has_one_channel(tmp_path):
    write(tmp_path / "a" / "x.png", np.full((3, 3), 7, np.uint8))
    write(tmp_path / "b" / "y.png", np.full((3, 3), 9, np.uint8))
    ds = read_image_folder(tmp_path, progress=False)
    assert ds.images.shape == (2, 3, 3, 1) and ds.images[1, 0, 0, 0] == 9


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        read_image_folder(tmp_path / "nope", progress=False)


def test_directory_without_class_folders(tmp_path):
    write(tmp_path / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match=r"one sub-folder per class, got .* no sub-folders"):
        read_image_folder(tmp_path, progress=False)


def test_empty_class_is_named(folder):
    root, _ = folder
    (root / "emu").mkdir()
    with pytest.raises(DataError, match=r"class folder .*emu' is empty"):
        read_image_folder(root, progress=False)


def test_non_image_file_is_named(folder):
    root, _ = folder
    (root / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"expected image files .*notes\.txt"):
        read_image_folder(root, progress=False)


def test_hidden_files_are_ignored(folder):
    root, _ = folder
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")
    assert len(read_image_folder(root, progress=False)) == 6


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_image_fails_naming_the_file(folder, damage):
    root, _ = folder
    bad = root / "dog" / "1.png"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not an image")
    with pytest.raises(DataError, match=r"dog/1\.png: expected a readable image") as info:
        read_image_folder(root, progress=False)
    assert "\n" not in str(info.value)


def test_skip_corrupt_warns_and_skips(folder):
    root, _ = folder
    (root / "dog" / "1.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match=r"skipping unreadable image .*1\.png"):
        ds = read_image_folder(root, skip_corrupt=True, progress=False)
    assert len(ds) == 5


def test_mixed_sizes_need_image_size(folder):
    root, _ = folder
    write(root / "cat" / "big.png", np.zeros((9, 9, 3), np.uint8))
    with pytest.raises(DataError, match="expected images of one size"):
        read_image_folder(root, progress=False)
    ds = read_image_folder(root, image_size=(5, 4), progress=False)
    assert ds.images.shape == (7, 5, 4, 3)


def test_split_folder(folder):
    root, _ = folder
    with pytest.raises(DataError, match=r"expected a split folder .*test', got splits \['cat'"):
        read_split_folder(root, "test", progress=False)
