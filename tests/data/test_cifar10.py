"""CIFAR-10: both official formats, written here from the same arrays following the layout on
Krizhevsky's page, must read back identically and equal the source arrays."""

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from foveal.data.cifar10 import CIFAR10_URLS, download_cifar10, read_cifar10
from foveal.errors import DataError

from .conftest import CIFAR_NAMES, cifar_batches, cifar_planes, write_cifar


@pytest.fixture
def batches():
    return cifar_batches()


def test_both_formats_return_identical_arrays_equal_to_the_source(tmp_path, batches):
    write_cifar(tmp_path / "py", batches, "python")
    write_cifar(tmp_path / "bin", batches, "binary")
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]),
                         ("test", ["test_batch"])):
        py, bn = read_cifar10(tmp_path / "py", split), read_cifar10(tmp_path / "bin", split)
        expected_x = np.concatenate([batches[b][0] for b in names])
        expected_y = np.concatenate([batches[b][1] for b in names])
        for ds in (py, bn):
            assert ds.images.shape == (7 * len(names), 32, 32, 3) and ds.images.dtype == np.uint8
            np.testing.assert_array_equal(ds.images, expected_x)
            np.testing.assert_array_equal(ds.labels, expected_y)
            assert ds.classes == CIFAR_NAMES and ds.name == f"cifar10/{split}"
    assert py.metadata["format"] == "python" and bn.metadata["format"] == "binary"


def test_plane_order_is_red_then_green_then_blue(tmp_path):
    # Pitfall: reshaping the 3072 bytes straight to (32, 32, 3) interleaves the planes.
    x = np.zeros((1, 32, 32, 3), np.uint8)
    x[0, 0, 1] = (10, 20, 30)  # row 0, column 1
    write_cifar(tmp_path, {"test_batch": (x, np.array([3]))}, "binary")
    raw = (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()
    assert (raw[1 + 1], raw[1 + 1024 + 1], raw[1 + 2048 + 1]) == (10, 20, 30)
    ds = read_cifar10(tmp_path, "test")
    assert tuple(ds.images[0, 0, 1]) == (10, 20, 30) and ds.labels[0] == 3


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_root_may_be_the_batches_folder_and_meta_names_are_used(tmp_path, batches, fmt):
    names = [f"class{i}" for i in range(10)]
    folder = write_cifar(tmp_path, batches, fmt, names=names)
    ds = read_cifar10(folder, "test")
    assert ds.classes == names and len(ds) == 7


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_missing_meta_falls_back_to_the_official_names(tmp_path, batches, fmt):
    folder = write_cifar(tmp_path, batches, fmt)
    for meta in folder.glob("batches.meta*"):
        meta.unlink()
    assert read_cifar10(tmp_path, "test").classes == CIFAR_NAMES


def test_numpy1_pickles_written_like_the_official_batches_load(tmp_path, batches):
    # The official batches name NumPy 1's module numpy.core; NumPy 2 writes numpy._core.
    folder = write_cifar(tmp_path, batches, "python")
    blob = (folder / "test_batch").read_bytes()
    if b"numpy._core" in blob:
        (folder / "test_batch").write_bytes(blob.replace(b"numpy._core", b"numpy.core"))
    np.testing.assert_array_equal(read_cifar10(tmp_path, "test").images,
                                  batches["test_batch"][0])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_any_pickle_protocol_of_arrays_loads(tmp_path, batches, protocol):
    folder = write_cifar(tmp_path, batches, "python")
    x, y = batches["test_batch"]
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": cifar_planes(x), b"labels": np.asarray(y)}, f, protocol)
    np.testing.assert_array_equal(read_cifar10(tmp_path, "test").images, x)


class RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def test_pickle_with_other_globals_is_refused_without_running_them(tmp_path, batches):
    folder = write_cifar(tmp_path, batches, "python")
    marker = tmp_path / "was-run"
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": RunsCode(marker), b"labels": []}, f)
    with pytest.raises(DataError, match=r"refusing to load global posix\.mkdir"):
        read_cifar10(tmp_path, "test")
    assert not marker.exists()


def test_truncated_binary_batch(tmp_path, batches):
    d = write_cifar(tmp_path, batches, "binary")
    data = (d / "test_batch.bin").read_bytes()
    (d / "test_batch.bin").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"multiple of 3073 bytes .*got 21411") as info:
        read_cifar10(tmp_path, "test")
    assert "test_batch.bin" in str(info.value)


def test_binary_label_out_of_range(tmp_path, batches):
    d = write_cifar(tmp_path, batches, "binary")
    data = bytearray((d / "test_batch.bin").read_bytes())
    data[0] = 11
    (d / "test_batch.bin").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"expected labels 0\.\.9, got 0\.\.11"):
        read_cifar10(tmp_path, "test")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"garbage", "expected a CIFAR-10 pickle batch"),
     (None, "expected a CIFAR-10 pickle batch"),  # truncated pickle
     (pickle.dumps([1, 2]), "expected a dict with b'data' and b'labels', got list"),
     (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
      r"expected b'data' as uint8 \(N, 3072\), got uint8 \(2, 100\)"),
     (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
      "expected 2 integer labels")],
    ids=["garbage", "truncated", "not-a-dict", "bad-shape", "label-count"],
)
def test_malformed_pickle_batch(tmp_path, batches, content, message):
    d = write_cifar(tmp_path, batches, "python")
    if content is None:
        content = (d / "test_batch").read_bytes()[:5000]
    (d / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_cifar10(tmp_path, "test")
    assert "\n" not in str(info.value) and "test_batch" in str(info.value)


def test_missing_batch_and_folder(tmp_path, batches):
    with pytest.raises(DataError, match=r"expected CIFAR-10 batches in .* got none"):
        read_cifar10(tmp_path)
    d = write_cifar(tmp_path, batches, "python")
    (d / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"expected the CIFAR-10 file .*data_batch_3"):
        read_cifar10(tmp_path, "train")


def tarball(members):
    """A tar.gz of ``{name: bytes | (TarInfo type, linkname)}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type, info.linkname = content
                tar.addfile(info)
    return buf.getvalue()


def official_tarball(tmp_path, batches, fmt):
    src = write_cifar(tmp_path / "src", batches, fmt)
    return tarball({f"{src.name}/{p.name}": p.read_bytes() for p in sorted(src.iterdir())})


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_download_from_loopback_then_read(http_server, tmp_path, batches, fmt):
    url, h = http_server
    h.files["/cifar.tgz"] = blob = official_tarball(tmp_path, batches, fmt)
    out = download_cifar10(tmp_path / "root", format=fmt, url=f"{url}/cifar.tgz",
                           md5=hashlib.md5(blob).hexdigest(), progress=False)
    folder = "cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin"
    assert out == tmp_path / "root" / folder
    np.testing.assert_array_equal(read_cifar10(tmp_path / "root", "test").images,
                                  batches["test_batch"][0])
    assert not list((tmp_path / "root").glob(".cifar10.*"))  # the temporary folder is gone
    download_cifar10(tmp_path / "root", format=fmt, url=f"{url}/cifar.tgz", progress=False)
    assert len(h.requests) == 1  # already unpacked: nothing fetched


def test_download_with_the_official_md5_constant_patched(http_server, tmp_path, batches,
                                                         monkeypatch):
    url, h = http_server
    h.files["/cifar-10-python.tar.gz"] = blob = official_tarball(tmp_path, batches, "python")
    monkeypatch.setitem(CIFAR10_URLS, "python", (f"{url}/cifar-10-python.tar.gz",
                                                 hashlib.md5(blob).hexdigest(),
                                                 "cifar-10-batches-py"))
    download_cifar10(tmp_path, progress=False)
    assert len(read_cifar10(tmp_path, "train")) == 35


def test_download_with_wrong_checksum_unpacks_nothing(http_server, tmp_path):
    url, h = http_server
    h.files["/cifar.tgz"] = b"not the archive"
    with pytest.raises(DataError, match="expected md5"):
        download_cifar10(tmp_path, url=f"{url}/cifar.tgz", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("members", "message"),
    [({"../evil.txt": b"x"}, "unsafe member '../evil.txt'"),
     ({"/abs/evil.txt": b"x"}, "unsafe member '/abs/evil.txt'"),
     ({"cifar-10-batches-py/link": (tarfile.SYMTYPE, "/etc/passwd")}, "unsafe member"),
     ({"cifar-10-batches-py/hard": (tarfile.LNKTYPE, "../../x")}, "unsafe member"),
     ({"other/file": b"x"}, r"expected a cifar-10-batches-py/ folder inside the archive, "
                            r"got \['other'\]")],
    ids=["dotdot", "absolute", "symlink", "hardlink", "wrong-layout"],
)
def test_unsafe_or_wrong_archive_is_refused(http_server, tmp_path, members, message):
    url, h = http_server
    h.files["/cifar.tgz"] = blob = tarball(members)
    root = tmp_path / "root"
    with pytest.raises(DataError, match=message):
        download_cifar10(root, url=f"{url}/cifar.tgz", md5=hashlib.md5(blob).hexdigest(),
                         progress=False)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]
    assert not (tmp_path / "evil.txt").exists()


def test_truncated_archive_is_a_data_error(http_server, tmp_path, batches):
    url, h = http_server
    h.files["/cifar.tgz"] = blob = official_tarball(tmp_path, batches, "binary")[:3000]
    with pytest.raises(DataError, match=r"expected a complete tar\.gz archive") as info:
        download_cifar10(tmp_path / "root", format="binary", url=f"{url}/cifar.tgz",
                         md5=hashlib.md5(blob).hexdigest(), progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "root" / "cifar-10-batches-bin").exists()
