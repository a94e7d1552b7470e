"""load_dataset: names, paths and the messages that guide a user. Oracles: the individual
readers (load_digits, read_mnist, read_cifar10, read_image_folder) called directly."""

import functools
import gzip
import hashlib

import numpy as np
import pytest
from PIL import Image

from foveal.data import DATASET_NAMES, load_dataset
from foveal.data import mnist as mnist_mod
from foveal.data.cifar10 import read_cifar10
from foveal.data.digits import load_digits
from foveal.data.image_folder import read_image_folder
from foveal.data.mnist import read_mnist
from foveal.errors import ConfigError, DataError

from .conftest import cifar_batches, idx_bytes, write_cifar


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    # never touch the user's ~/.cache/foveal
    monkeypatch.setenv("FOVEAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FOVEAL_DATA", str(tmp_path / "data"))


def write_folder(root, splits=("train", "test"), classes=("x", "y")):
    for split in splits:
        for k, c in enumerate(classes):
            base = root / split if split else root
            (base / c).mkdir(parents=True)
            Image.fromarray(np.full((4, 4), 10 * k, np.uint8)).save(base / c / "0.png")


def test_names():
    assert DATASET_NAMES == ("digits", "mnist", "cifar10")


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ConfigError, match=r"^unknown dataset 'imagenet': expected one of digits, "
                                          r"mnist, cifar10 or a path to an image folder$"):
        load_dataset("imagenet")


def test_digits_equal_load_digits():
    for split in ("train", "test"):
        np.testing.assert_array_equal(load_dataset("digits", split).images,
                                      load_digits(split).images)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_official_files_say_where_they_were_looked_for(name, tmp_path):
    with pytest.raises(DataError, match=rf"^{name} could not be read from '{tmp_path}'.*"
                                        "pass --download") as info:
        load_dataset(name, root=tmp_path)
    assert "\n" not in str(info.value)


def test_default_root_is_foveal_data(tmp_path):
    with pytest.raises(DataError, match=f"from '{tmp_path / 'data'}'"):
        load_dataset("mnist")


def test_official_names_read_from_root(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 10, n))))
    write_cifar(tmp_path, cifar_batches(), "binary")
    for split in ("train", "test"):
        np.testing.assert_array_equal(load_dataset("mnist", split, root=tmp_path).images,
                                      read_mnist(tmp_path, split).images)
        np.testing.assert_array_equal(load_dataset("cifar10", split, root=tmp_path).images,
                                      read_cifar10(tmp_path, split).images)
    with pytest.raises(ConfigError, match="unknown split 'val' for mnist"):
        load_dataset("mnist", "val", root=tmp_path)


def test_download_true_fetches_then_reads(http_server, tmp_path, monkeypatch):
    url, h = http_server
    rng = np.random.default_rng(1)
    files = {}
    for prefix, n in (("train", 4), ("t10k", 2)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 10, n)))
    h.files.update({f"/{k}": v for k, v in files.items()})
    monkeypatch.setattr(mnist_mod, "MNIST_FILES",
                        {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    monkeypatch.setattr(mnist_mod, "download_mnist",
                        functools.partial(mnist_mod.download_mnist, base_url=url))
    ds = load_dataset("mnist", "test", root=tmp_path / "root", download=True, progress=False)
    assert ds.images.shape == (2, 28, 28, 1) and len(h.requests) == 4


@pytest.mark.parametrize("cache", [True, False])
def test_split_folder_layout_equals_read_image_folder(tmp_path, cache):
    write_folder(tmp_path / "d")
    ds = load_dataset(str(tmp_path / "d"), "test", cache=cache, progress=False)
    assert ds.name == "d/test" and ds.classes == ["x", "y"] and len(ds) == 2
    np.testing.assert_array_equal(ds.images,
                                  read_image_folder(tmp_path / "d" / "test").images)
    assert (tmp_path / "cache" / "decoded").is_dir() == cache


def test_missing_split_lists_the_splits_there_are(tmp_path):
    write_folder(tmp_path / "d", splits=("train", "val"))
    with pytest.raises(DataError, match=r"expected a split folder .*test', got splits: "
                                        r"'train', 'val'"):
        load_dataset(str(tmp_path / "d"), "test", progress=False)


def test_single_folder_has_only_a_train_split(tmp_path):
    write_folder(tmp_path / "d", splits=("",))
    assert len(load_dataset(str(tmp_path / "d"), cache=False, progress=False)) == 2
    with pytest.raises(DataError, match="has only a 'train' split"):
        load_dataset(str(tmp_path / "d"), "test", cache=False, progress=False)


def test_a_file_is_not_a_dataset(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="to be a folder of images, got a file"):
        load_dataset(str(tmp_path / "x.png"))
