"""CIFAR-10 in both official formats: Python pickle batches and the binary version.

- ``cifar-10-batches-py/``: ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` are pickled
  dicts with ``b"data"`` (uint8 ``(10000, 3072)``: the 1,024 red values of a 32×32 image in
  row-major order, then green, then blue) and ``b"labels"`` (10,000 ints in 0..9);
  ``batches.meta`` holds ``b"label_names"``. The batches were pickled by Python 2, so they are
  read with ``encoding="bytes"`` (keys are ``bytes``).
- ``cifar-10-batches-bin/``: ``data_batch_1.bin`` … ``data_batch_5.bin``, ``test_batch.bin``,
  each 10,000 records of 1 label byte + 3,072 pixel bytes in the same plane order;
  ``batches.meta.txt`` has one class name per line.

Both give ``(N, 32, 32, 3)`` uint8 images (channels last) and the same labels. The class names
come from the meta file when it is there, else the ten official names in order.

Pickle risk: unpickling an arbitrary file can run arbitrary code. The batches are therefore read
with an unpickler that only rebuilds plain containers and NumPy arrays and refuses every other
global; read only files from a source you trust all the same (the downloaded archive is
verified against its md5).

Reference: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009,
https://www.cs.toronto.edu/~kriz/cifar.html
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from foveal.data.dataset import ArrayDataset
from foveal.data.download import download
from foveal.errors import DataError

try:  # NumPy 2
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # NumPy 1
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

CIFAR10_URLS = {
    "python": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "c58f30108f718f92721af3b95e74349a", "cifar-10-batches-py"),
    "binary": ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
               "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin"),
}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
RECORD = 1 + 3072

# The only globals an official batch (or one written by NumPy 1 or 2) refers to.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # bytes pickled by Python 3, protocol 2
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
    **{(f"numpy.{core}.multiarray", "scalar"): scalar for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")},
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes, numbers and NumPy arrays; refuses any other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def _load_pickle(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"expected the CIFAR-10 file {str(path)!r}, got no such file") from exc
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # pickle raises many types for damaged data
        reason = " ".join(str(exc).split()) or "no details"
        raise DataError(
            f"{path}: expected a CIFAR-10 pickle batch, got {type(exc).__name__}: {reason}"
        ) from exc


def _planes_to_hwc(data: np.ndarray) -> np.ndarray:
    """``(N, 3072)`` R, G, B planes → ``(N, 32, 32, 3)``."""
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path}: expected a dict with b'data' and b'labels', got {got}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: expected b'data' as uint8 (N, 3072), got {data.dtype} "
                        f"{data.shape}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype,
                                                                          np.integer):
        raise DataError(f"{path}: expected {len(data)} integer labels, got {labels.dtype} "
                        f"{labels.shape}")
    return _planes_to_hwc(data), labels.astype(np.int64)


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"expected the CIFAR-10 file {str(path)!r}, got no such file") from exc
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"{path}: expected a non-zero multiple of {RECORD} bytes (label + 3072 "
                        f"pixels per record), got {raw.size} (truncated?)")
    records = raw.reshape(-1, RECORD)
    return _planes_to_hwc(records[:, 1:]), records[:, 0].astype(np.int64)


def _read_class_names(folder: Path, fmt: str) -> list[str]:
    """Names from ``batches.meta`` / ``batches.meta.txt``; the official ten if it is absent."""
    if fmt == "python":
        path = folder / "batches.meta"
        if not path.is_file():
            return list(CLASSES)
        meta = _load_pickle(path)
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
            raise DataError(f"{path}: expected a dict with b'label_names' (a list of names), "
                            f"got {type(meta).__name__}")
        names = [n.decode() if isinstance(n, bytes) else n for n in names]
    else:
        path = folder / "batches.meta.txt"
        if not path.is_file():
            return list(CLASSES)
        try:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: expected one class name per line, got {exc}") from exc
    if len(names) != 10:
        raise DataError(f"{path}: expected 10 class names, got {len(names)}")
    return names


def find_cifar10(root: str | os.PathLike[str]) -> tuple[Path, str]:
    """The batches directory at or under ``root`` and its format, ``python`` or ``binary``."""
    root = Path(root)
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-10-batches-bin"):
        if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
            return folder, "python"
        if (folder / "data_batch_1.bin").is_file() or (folder / "test_batch.bin").is_file():
            return folder, "binary"
    raise DataError(f"expected CIFAR-10 batches in {str(root)!r} or its cifar-10-batches-py/ "
                    "or cifar-10-batches-bin/ folder, got none")


def read_cifar10(root: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """The ``train`` (50,000) or ``test`` (10,000) split, from either official format.

    ``root`` is the batches folder itself or the folder holding it; the format is detected from
    the file names. Returns images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` in 0..9.
    """
    if split not in _BATCHES:
        raise DataError(f"unknown CIFAR-10 split {split!r}: expected 'train' or 'test'")
    folder, fmt = find_cifar10(root)
    classes = _read_class_names(folder, fmt)
    parts = [
        _read_pickle_batch(folder / b) if fmt == "python" else
        _read_binary_batch(folder / f"{b}.bin")
        for b in _BATCHES[split]
    ]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{folder}: expected labels 0..9, got {labels.min()}..{labels.max()}")
    return ArrayDataset(images, labels, classes, f"cifar10/{split}", {"format": fmt})


def _safe_extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target``, refusing links, devices and paths that leave it."""
    base = target.resolve()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                resolved = (base / member.name).resolve()
                if not (member.isfile() or member.isdir()) or not resolved.is_relative_to(base):
                    raise DataError(f"{archive}: expected plain files and folders inside the "
                                    f"archive, got unsafe member {member.name!r}")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                tar.extractall(base, members, filter="data")
            else:
                tar.extractall(base, members)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{archive}: expected a complete tar.gz archive, got {reason}") from exc


def download_cifar10(
    root: str | os.PathLike[str], *, format: str = "python", url: str | None = None,
    md5: str | None = None, progress: bool = True,
) -> Path:
    """Fetch and unpack an official archive into ``root``; returns the batches folder.

    Args:
        root: where ``cifar-10-batches-py/`` (or ``-bin/``) and the archive go.
        format: ``"python"`` (pickle batches) or ``"binary"``.
        url: a mirror of the archive (default: the official address).
        md5: the archive's md5 (default: the official one for ``format``).
        progress: show a progress bar.

    If the batches folder already exists nothing is fetched. The archive is unpacked into a
    temporary folder next to it and the batches folder is renamed into place only when complete.
    """
    if format not in CIFAR10_URLS:
        raise DataError(f"unknown CIFAR-10 format {format!r}: expected 'python' or 'binary'")
    default_url, default_md5, folder = CIFAR10_URLS[format]
    root = Path(root)
    target = root / folder
    if target.is_dir():
        return target
    archive = download(url or default_url, root / Path(default_url).name,
                       md5=md5 or default_md5, progress=progress)
    tmp = Path(tempfile.mkdtemp(prefix=".cifar10.", dir=root))
    try:
        _safe_extract(archive, tmp)
        if not (tmp / folder).is_dir():
            found = sorted(p.name for p in tmp.iterdir())
            raise DataError(f"{archive}: expected a {folder}/ folder inside the archive, got "
                            f"{found or 'nothing'}")
        os.replace(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
