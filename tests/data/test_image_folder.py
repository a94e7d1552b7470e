"""ImageFolder reading. Oracles: the arrays PIL was given to write (PNG, PGM, PPM and BMP are
lossless), PIL's own convert/resize for mode and size handling, and for the real CIFAR-10 JPEG
copy the per-class counts its README states and PIL decoding the archive's bytes directly."""

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from foveal.data.image_folder import read_image_folder, read_split_folder
from foveal.errors import ConfigError, DataError

from .conftest import SHARED_DATA

CIFAR_JPG = SHARED_DATA / "cifar10-jpg.tar.gz"
needs_cifar_jpg = pytest.mark.skipif(
    not CIFAR_JPG.is_file(),
    reason="real CIFAR-10 JPEG copy not found in ../shared/data (only present on the "
           "project's test machines)",
)


def write(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


def raises_one_line(match, root, **kwargs):
    with pytest.raises(DataError, match=match) as info:
        read_image_folder(root, progress=False, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    pixels = {}
    for c in ("dog", "cat"):  # written out of order: labels follow sorted names
        for i in range(3):
            a = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            write(tmp_path / "data" / c / f"{i}.png", a)
            pixels[(c, i)] = a
    return tmp_path / "data", pixels


def test_pixels_and_labels_equal_what_was_written(folder):
    root, pixels = folder
    ds = read_image_folder(root, progress=False, num_workers=3)
    assert ds.classes == ["cat", "dog"] and ds.images.shape == (6, 5, 4, 3)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    for k, ((c, _), a) in enumerate(sorted(pixels.items())):
        np.testing.assert_array_equal(ds.images[k], a)
        assert ds.classes[ds.labels[k]] == c
    assert ds.name == "data"


def test_every_extension_in_any_case_is_read(tmp_path):
    a = np.arange(27, dtype=np.uint8).reshape(3, 3, 3)
    for i, ext in enumerate([".jpg", ".JPEG", ".png", ".PPM", ".bmp"]):
        write(tmp_path / "c" / f"{i}{ext}", a, **({"quality": 100} if "j" in ext.lower() else {}))
    ds = read_image_folder(tmp_path, progress=False)
    assert len(ds) == 5
    for k in (2, 3, 4):  # the lossless ones (sorted: 0.jpg 1.JPEG 2.png 3.PPM 4.bmp)
        np.testing.assert_array_equal(ds.images[k], a)


def test_mixed_grey_and_rgb_are_all_converted_to_rgb(tmp_path):
    write(tmp_path / "a" / "x.pgm", np.full((3, 3), 7, np.uint8))
    write(tmp_path / "b" / "y.ppm", np.full((3, 3, 3), 9, np.uint8))
    ds = read_image_folder(tmp_path, progress=False)
    assert ds.images.shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(ds.images[0], np.full((3, 3, 3), 7, np.uint8))


def test_all_grey_folder_has_one_channel(tmp_path):
    write(tmp_path / "a" / "x.png", np.full((3, 3), 7, np.uint8))
    write(tmp_path / "b" / "y.pgm", np.full((3, 3), 9, np.uint8))
    ds = read_image_folder(tmp_path, progress=False)
    assert ds.images.shape == (2, 3, 3, 1) and ds.images[1, 0, 0, 0] == 9


def test_palette_and_rgba_images_equal_pil_convert_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgba = Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), "RGBA")
    pal = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).quantize(8)
    (tmp_path / "a").mkdir()
    rgba.save(tmp_path / "a" / "0.png")
    pal.save(tmp_path / "a" / "1.png")
    ds = read_image_folder(tmp_path, progress=False)
    np.testing.assert_array_equal(ds.images[0], np.asarray(rgba.convert("RGB")))
    np.testing.assert_array_equal(ds.images[1], np.asarray(pal.convert("RGB")))


def test_missing_root_and_a_file_as_root(tmp_path):
    raises_one_line("expected an image folder at .*nope', got no such directory", tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"")
    raises_one_line("expected an image folder at .*f.png', got a file", tmp_path / "f.png")


def test_directory_without_class_folders(tmp_path):
    write(tmp_path / "x.png", np.zeros((2, 2), np.uint8))
    (tmp_path / ".hidden").mkdir()
    raises_one_line(r"one sub-folder per class, got .* with no sub-folders", tmp_path)


def test_empty_class_is_named(folder):
    root, _ = folder
    (root / "emu").mkdir()
    (root / "emu" / ".DS_Store").write_bytes(b"\0")  # hidden files do not count as images
    raises_one_line(r"class folder .*emu' is empty", root)


def test_non_image_file_is_named(folder):
    root, _ = folder
    (root / "cat" / "notes.txt").write_text("hello")
    raises_one_line(r"expected image files \(.jpg, .*\), got .*cat/notes\.txt", root)


def test_nested_folder_in_a_class_is_named(folder):
    root, _ = folder
    (root / "cat" / "more").mkdir()
    raises_one_line(r"expected image files in class folder 'cat', got a folder .*more", root)


def test_hidden_files_and_folders_are_ignored(folder):
    root, _ = folder
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (root / ".thumbnails").mkdir()
    (root / ".thumbnails" / "x.txt").write_text("x")
    ds = read_image_folder(root, progress=False)
    assert len(ds) == 6 and ds.classes == ["cat", "dog"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_image_fails_naming_the_file(folder, damage):
    root, _ = folder
    bad = root / "dog" / "1.png"
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not an image",
                     "empty": b""}[damage])
    message = raises_one_line(r"dog/1\.png: expected a readable image", root)
    assert "skip_corrupt" in message


def test_truncated_jpeg_is_caught_by_the_full_decode(tmp_path):
    # Pitfall: Image.open only reads the header; a truncated JPEG fails only on load().
    rng = np.random.default_rng(2)
    write(tmp_path / "a" / "0.jpg", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "a" / "0.jpg").read_bytes()
    (tmp_path / "a" / "0.jpg").write_bytes(data[: len(data) * 2 // 3])
    with Image.open(tmp_path / "a" / "0.jpg") as im:
        assert im.size == (64, 64)  # the header alone looks fine
    raises_one_line(r"0\.jpg: expected a readable image", tmp_path)


def test_skip_corrupt_warns_names_and_skips(folder):
    root, pixels = folder
    (root / "dog" / "1.png").write_bytes(b"not an image")
    (root / "cat" / "2.png").write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        ds = read_image_folder(root, skip_corrupt=True, progress=False)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2 and "cat/2.png" in messages[0] and "dog/1.png" in messages[1]
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.images[2], pixels[("dog", 0)])  # order kept
    assert list(ds.labels) == [0, 0, 1, 1]


def test_skip_corrupt_with_nothing_readable_fails(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "0.png").write_bytes(b"x")
    with pytest.warns(UserWarning):
        raises_one_line("expected at least one readable image", tmp_path, skip_corrupt=True)


def test_mixed_sizes_need_image_size_then_equal_pil_bilinear(folder):
    root, _ = folder
    big = np.random.default_rng(3).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    write(root / "cat" / "big.png", big)
    raises_one_line(r"expected images of one size .* got sizes \[\(5, 4\), \(9, 9\)\]", root)
    ds = read_image_folder(root, image_size=(5, 4), progress=False)
    assert ds.images.shape == (7, 5, 4, 3)
    expected = Image.fromarray(big).resize((4, 5), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(ds.images[3], np.asarray(expected))  # cat: 0, 1, 2, big


@pytest.mark.parametrize("size", [(5,), (0, 4), (5.0, 4), "5x4"])
def test_bad_image_size_is_a_config_error(folder, size):
    root, _ = folder
    with pytest.raises(ConfigError, match="expected image_size as \\(height, width\\)"):
        read_image_folder(root, image_size=size, progress=False)


def test_split_folder(folder):
    root, _ = folder
    with pytest.raises(DataError, match=r"expected a split folder .*test', got splits: 'cat', "
                                        r"'dog'"):
        read_split_folder(root, "test", progress=False)
    ds = read_split_folder(root.parent, "data", progress=False)
    assert ds.name == f"{root.parent.name}/data" and len(ds) == 6


@pytest.fixture(scope="module")
def cifar_jpg_test_subset(tmp_path_factory):
    """The first three test classes of the CIFAR-10 JPEG copy (test/ comes first in the
    archive), extracted into a temporary folder; also returns the raw bytes per file."""
    out = tmp_path_factory.mktemp("cifar10-jpg")
    classes, raw = [], {}
    with tarfile.open(CIFAR_JPG) as tar:
        for member in tar:
            parts = member.name.split("/")  # cifar10-jpg/<split>/<class>/<NNNN>.jpg
            if parts[1:2] == ["train"]:
                break
            if len(parts) != 4 or parts[1] != "test" or not member.isfile():
                continue
            if parts[2] not in classes:
                if len(classes) == 3:
                    continue
                classes.append(parts[2])
            data = tar.extractfile(member).read()
            (out / parts[2]).mkdir(exist_ok=True)
            (out / parts[2] / parts[3]).write_bytes(data)
            raw[(parts[2], parts[3])] = data
    return out, raw


@needs_cifar_jpg
def test_real_cifar10_jpegs_three_classes(cifar_jpg_test_subset):
    root, raw = cifar_jpg_test_subset
    ds = read_image_folder(root, progress=False)
    classes = sorted({c for c, _ in raw})
    assert ds.classes == classes and ds.images.shape == (3000, 32, 32, 3)
    assert np.bincount(ds.labels).tolist() == [1000, 1000, 1000]  # README: 1,000 per class
    keys = sorted(raw)  # class, then file name: the reader's order
    for k in range(0, 3000, 97):
        c, name = keys[k]
        expected = np.asarray(Image.open(io.BytesIO(raw[(c, name)])).convert("RGB"))
        np.testing.assert_array_equal(ds.images[k], expected)
        assert ds.classes[ds.labels[k]] == c


@needs_cifar_jpg
@pytest.mark.slow
def test_real_cifar10_jpegs_all_60000(tmp_path):
    with tarfile.open(CIFAR_JPG) as tar:
        tar.extractall(tmp_path, filter="data")
    for split, per_class in (("train", 5000), ("test", 1000)):
        ds = read_split_folder(tmp_path / "cifar10-jpg", split, progress=False)
        assert ds.images.shape == (10 * per_class, 32, 32, 3)
        assert np.bincount(ds.labels).tolist() == [per_class] * 10
        assert ds.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck"]
