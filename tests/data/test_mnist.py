"""MNIST IDX reading against the independent PNG copy (rasbt/mnist-pngs), the published md5s,
and IDX files written here from the format's specification."""

import gzip
import hashlib
import tarfile

import numpy as np
import pytest
from PIL import Image

from foveal.data.mnist import MNIST_FILES, download_mnist, read_idx, read_mnist
from foveal.errors import DataError

from .conftest import SHARED_DATA, idx_bytes

IDX = SHARED_DATA / "mnist_idx_partial"
needs_data = pytest.mark.skipif(
    not (IDX.is_dir() and (SHARED_DATA / "mnist-png.tar.gz").is_file()),
    reason="real MNIST copies not found in ../shared/data (only present on the project's "
           "test machines)",
)


@needs_data
def test_official_t10k_equals_the_png_copy_pixel_for_pixel(tmp_path):
    test = read_mnist(IDX, "test")
    assert test.images.shape == (10000, 28, 28, 1) and test.labels.shape == (10000,)
    # The copy stores test image i as test/<label>/<60000 + i>.png. Extract every 29th by name;
    # test/ precedes train/ in the archive, so stop at train/ instead of reading all 70,000.
    extracted = []
    with tarfile.open(SHARED_DATA / "mnist-png.tar.gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if parts[1:2] == ["train"] and len(parts) > 3:
                break
            if len(parts) == 4 and parts[1] == "test" and member.isfile():
                index = int(parts[3].removesuffix(".png")) - 60000
                if index % 29 == 0:
                    tar.extract(member, tmp_path, filter="data")
                    extracted.append((index, int(parts[2]), tmp_path / member.name))
    assert len(extracted) == len(range(0, 10000, 29))
    for index, label, path in extracted:
        png = np.asarray(Image.open(path))
        np.testing.assert_array_equal(test.images[index, ..., 0], png)
        assert test.labels[index] == label


@needs_data
def test_shared_files_match_the_official_md5s():
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                 "train-labels-idx1-ubyte.gz"):
        assert hashlib.md5((IDX / name).read_bytes()).hexdigest() == MNIST_FILES[name]


@needs_data
def test_official_train_labels_equal_the_png_copy_index():
    # train.csv of the PNG copy lists train/<label>/<index>.png for all 60,000 images.
    labels = read_idx(IDX / "train-labels-idx1-ubyte.gz")
    assert labels.shape == (60000,)
    with tarfile.open(SHARED_DATA / "mnist-png.tar.gz") as tar:
        # iterate to the (second) member: looking it up by name would index all 70,000 first
        member = next(m for m in tar if m.name == "mnist-pngs/train.csv")
        rows = tar.extractfile(member).read().decode().split()[1:]
    expected = np.zeros(60000, np.int64) - 1
    for row in rows:
        path, label = row.split(",")
        expected[int(path.split("/")[2].removesuffix(".png"))] = int(label)
    np.testing.assert_array_equal(labels, expected)


def test_raw_and_gzip_read_the_same_and_are_writable(tmp_path):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    raw = idx_bytes(a)
    (tmp_path / "x.idx").write_bytes(raw)
    (tmp_path / "y.idx").write_bytes(gzip.compress(raw))  # gzip found by magic, not name
    (tmp_path / "z.gz").write_bytes(raw)  # a raw file with a .gz name is still raw
    for name in ("x.idx", "y.idx", "z.gz"):
        out = read_idx(tmp_path / name)
        np.testing.assert_array_equal(out, a)
        assert out.dtype == np.uint8 and out.flags.writeable


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"\1\2\3\4", "expected an IDX magic number"),
     (b"", "got an empty file"),
     (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0]), r"unsigned-byte data \(type 0x08\), got type 0x0d"),
     (bytes([0, 0, 8, 0]), "at least one dimension"),
     (bytes([0, 0, 8, 3, 0, 0]), "truncated header"),
     (idx_bytes(np.zeros((2, 3, 4)))[:-5], r"expected 24 values for shape \(2, 3, 4\), got 19"),
     (idx_bytes(np.zeros((2, 3, 4))) + b"\0", "got 25")],
    ids=["magic", "empty", "dtype", "ndim0", "header", "truncated-raw", "padded-raw"],
)
def test_malformed_idx(tmp_path, data, message):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(tmp_path / "bad")
    assert "\n" not in str(info.value) and "bad" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_gzip(tmp_path, damage):
    blob = bytearray(gzip.compress(idx_bytes(np.arange(400).reshape(4, 10, 10) % 7)))
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[15:25] = b"0123456789"  # deflate data that fails to decode (zlib.error)
    (tmp_path / "bad.gz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="expected a complete gzip-compressed IDX file") as info:
        read_idx(tmp_path / "bad.gz")
    assert "\n" not in str(info.value)


def write_mnist(root, n_train=6, n_test=4, seed=0, gz=True):
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, n))
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return files


@pytest.mark.parametrize("gz", [True, False])
def test_read_mnist_returns_the_written_arrays(tmp_path, gz):
    files = write_mnist(tmp_path, gz=gz)
    test = read_mnist(tmp_path, "test")
    expected = np.frombuffer(files["t10k-images-idx3-ubyte"][16:], np.uint8).reshape(4, 28, 28)
    np.testing.assert_array_equal(test.images[..., 0], expected)
    np.testing.assert_array_equal(test.labels, np.frombuffer(files["t10k-labels-idx1-ubyte"][8:],
                                                             np.uint8))
    assert test.classes == [str(d) for d in range(10)] and test.name == "mnist/test"


def test_read_mnist_rejects_swapped_and_mismatched_files(tmp_path):
    files = write_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(files["t10k-labels-idx1-ubyte"])
    with pytest.raises(DataError, match=r"expected an IDX image file .*0x00000803"):
        read_mnist(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(files["train-images-idx3-ubyte"])
    with pytest.raises(DataError, match="expected as many labels as images \\(6\\), got 4"):
        read_mnist(tmp_path, "test")
    with pytest.raises(DataError, match="expected the MNIST file train-images-idx3-ubyte"):
        read_mnist(tmp_path / "elsewhere", "train")
    with pytest.raises(DataError, match="expected 'train' or 'test'"):
        read_mnist(tmp_path, "val")


def test_download_mnist_from_loopback_and_read(http_server, tmp_path, monkeypatch):
    url, h = http_server
    files = {f"{k}.gz": gzip.compress(v) for k, v in write_mnist(tmp_path / "src").items()}
    for name, data in files.items():
        h.files[f"/mnist/{name}"] = data
    monkeypatch.setattr("foveal.data.mnist.MNIST_FILES",
                        {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    assert download_mnist(tmp_path / "root", base_url=f"{url}/mnist", progress=False) == \
        tmp_path / "root"
    assert sorted(r["path"] for r in h.requests) == sorted(f"/mnist/{n}" for n in files)
    train = read_mnist(tmp_path / "root", "train")
    np.testing.assert_array_equal(train.images, read_mnist(tmp_path / "src", "train").images)
    download_mnist(tmp_path / "root", base_url=f"{url}/mnist", progress=False)
    assert len(h.requests) == 4  # verified files are not fetched again


def test_download_mnist_rejects_a_wrong_file(http_server, tmp_path):
    url, h = http_server
    for name in MNIST_FILES:  # the real md5s: the tampered mirror must fail
        h.files[f"/{name}"] = b"tampered"
    with pytest.raises(DataError, match="expected md5 "):
        download_mnist(tmp_path, base_url=url, progress=False)
    assert list(tmp_path.iterdir()) == []
