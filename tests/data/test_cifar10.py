"""CIFAR-10: both official formats written from the same arrays must read back identically."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

from foveal.data.cifar10 import download_cifar10, read_cifar10
from foveal.errors import DataError


def planes(images):
    """(N, 32, 32, 3) → (N, 3072): R plane, then G, then B, each row-major (the spec)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {b: (rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 7))
            for b in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]}


def write_python(root, arrays):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name, (x, y) in arrays.items():
        with open(d / name, "wb") as f:
            pickle.dump({b"data": planes(x), b"labels": y.tolist()}, f)
    return d


def write_binary(root, arrays):
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    for name, (x, y) in arrays.items():
        records = np.concatenate([y.astype(np.uint8)[:, None], planes(x)], axis=1)
        records.tofile(d / f"{name}.bin")
    return d


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_both_formats_return_the_source_pixels(tmp_path, arrays, fmt):
    (write_python if fmt == "python" else write_binary)(tmp_path, arrays)
    train, test = read_cifar10(tmp_path, "train"), read_cifar10(tmp_path, "test")
    expected = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(train.images, expected)
    np.testing.assert_array_equal(test.labels, arrays["test_batch"][1])
    assert train.classes[0] == "airplane" and train.images.shape == (35, 32, 32, 3)


def test_truncated_binary_batch(tmp_path, arrays):
    d = write_binary(tmp_path, arrays)
    data = (d / "test_batch.bin").read_bytes()
    (d / "test_batch.bin").write_bytes(data[:-100])
    with pytest.raises(DataError, match="multiple of 3073 bytes"):
        read_cifar10(tmp_path, "test")


def test_malformed_pickle_batch(tmp_path, arrays):
    d = write_python(tmp_path, arrays)
    (d / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="expected a CIFAR-10 pickle batch"):
        read_cifar10(tmp_path, "test")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        read_cifar10(tmp_path)


def test_download_from_loopback_then_read(http_server, tmp_path, arrays):
    url, h = http_server
    src = write_binary(tmp_path / "src", arrays)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-bin")
    h.files["/cifar.tgz"] = buf.getvalue()
    out = download_cifar10(tmp_path / "root", format="binary", url=f"{url}/cifar.tgz",
                           md5=hashlib.md5(buf.getvalue()).hexdigest(), progress=False)
    assert out.name == "cifar-10-batches-bin"
    assert len(read_cifar10(tmp_path / "root", "test")) == 7


def test_download_with_wrong_checksum_unpacks_nothing(http_server, tmp_path):
    url, h = http_server
    h.files["/cifar.tgz"] = b"not the archive"
    with pytest.raises(DataError, match="expected md5"):
        download_cifar10(tmp_path, url=f"{url}/cifar.tgz", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []
