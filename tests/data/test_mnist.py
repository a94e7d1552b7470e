"""MNIST IDX reading against the independent PNG copy, and malformed files."""

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from foveal.data.mnist import MNIST_FILES, download_mnist, read_idx, read_mnist
from foveal.errors import DataError

from .conftest import SHARED_DATA

IDX = SHARED_DATA / "mnist_idx_partial"
needs_data = pytest.mark.skipif(not IDX.is_dir(), reason="../shared/data (MNIST copies) absent")


def idx_bytes(array, magic):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    assert magic == 0x0800 | array.ndim
    return header + array.astype(np.uint8).tobytes()


@needs_data
def test_official_t10k_images_equal_the_png_copy():
    images = read_idx(IDX / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(IDX / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    checked = 0
    with tarfile.open(SHARED_DATA / "mnist-png.tar.gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[1] == "test" and member.isfile():
                index = int(parts[3].split(".")[0]) - 60000  # the copy numbers all 70,000
                if index % 37:
                    continue
                png = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())))
                np.testing.assert_array_equal(png, images[index])
                assert int(parts[2]) == labels[index]
                checked += 1
    assert checked > 200


@needs_data
def test_shared_files_match_the_official_md5s():
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                 "train-labels-idx1-ubyte.gz"):
        assert hashlib.md5((IDX / name).read_bytes()).hexdigest() == MNIST_FILES[name]


def test_raw_and_gzip_read_the_same(tmp_path):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    raw = idx_bytes(a, 0x0803)
    (tmp_path / "x.idx").write_bytes(raw)
    (tmp_path / "y.idx").write_bytes(gzip.compress(raw))  # gzip found by magic, not name
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "y.idx"), a)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\1\2\3\4", "IDX magic"),
     (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0]), "unsigned-byte data"),
     (bytes([0, 0, 8, 3, 0, 0]), "truncated header"),
     (idx_bytes(np.zeros((2, 3, 4)), 0x0803)[:-5], "truncated or padded")],
)
def test_malformed_idx(tmp_path, data, message):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "bad")


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.zeros((5, 2, 2)), 0x0803))
    (tmp_path / "bad.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "bad.gz")


def test_download_mnist_from_loopback_and_read(http_server, tmp_path, monkeypatch):
    url, h = http_server
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 256, (n, 28, 28)), 0x0803))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(
            idx_bytes(rng.integers(0, 10, n), 0x0801))
    for name, data in files.items():
        h.files[f"/mnist/{name}"] = data
    monkeypatch.setattr("foveal.data.mnist.MNIST_FILES",
                        {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    download_mnist(tmp_path, base_url=f"{url}/mnist/", progress=False)
    train = read_mnist(tmp_path, "train")
    assert train.images.shape == (6, 28, 28, 1) and len(read_mnist(tmp_path, "test")) == 4
