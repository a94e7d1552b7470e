"""CIFAR-10 in both official formats: Python pickle batches and the binary version.

- ``cifar-10-batches-py/``: ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` are pickled
  dicts with ``b"data"`` (uint8 ``(10000, 3072)``: the 1,024 red values of a 32×32 image in
  row-major order, then green, then blue) and ``b"labels"``; ``batches.meta`` holds
  ``b"label_names"``. Unpickling can run code: read only files from a source you trust (the
  official archive is verified by its md5 on download).
- ``cifar-10-batches-bin/``: ``data_batch_1.bin`` … ``test_batch.bin``, each 10,000 records of
  1 label byte + 3,072 pixel bytes in the same plane order; ``batches.meta.txt`` has the names.

Both give ``(N, 32, 32, 3)`` uint8 images. Reference: A. Krizhevsky, "Learning multiple layers
of features from tiny images", 2009.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from foveal.data.dataset import ArrayDataset
from foveal.data.download import download
from foveal.errors import DataError

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


def _planes_to_hwc(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except FileNotFoundError as exc:
        raise DataError(f"CIFAR-10 batch not found: expected {str(path)!r}") from exc
    except Exception as exc:
        raise DataError(f"{path}: expected a CIFAR-10 pickle batch, got {exc!r}") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path}: expected data (N, 3072) with N labels, got {data.shape} and "
                        f"{labels.shape}")
    return _planes_to_hwc(data), labels


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"CIFAR-10 batch not found: expected {str(path)!r}") from exc
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"{path}: expected a multiple of {RECORD} bytes (label + 3072 pixels), "
                        f"got {raw.size} (truncated?)")
    records = raw.reshape(-1, RECORD)
    return _planes_to_hwc(records[:, 1:]), records[:, 0].astype(np.int64)


def find_cifar10(root: str | os.PathLike[str]) -> tuple[Path, str]:
    """The batches directory under (or at) ``root`` and its format, ``python`` or ``binary``."""
    root = Path(root)
    for folder in (root, root / "cifar-10-batches-py", root / "cifar-10-batches-bin"):
        if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
            return folder, "python"
        if (folder / "data_batch_1.bin").is_file() or (folder / "test_batch.bin").is_file():
            return folder, "binary"
    raise DataError(f"CIFAR-10 not found in {str(root)!r}: expected cifar-10-batches-py/ or "
                    "cifar-10-batches-bin/")


def read_cifar10(root: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """The ``train`` (50,000) or ``test`` (10,000) split, from either official format."""
    if split not in _BATCHES:
        raise DataError(f"unknown CIFAR-10 split {split!r}: expected 'train' or 'test'")
    folder, fmt = find_cifar10(root)
    parts = [
        _read_pickle_batch(folder / b) if fmt == "python" else
        _read_binary_batch(folder / f"{b}.bin")
        for b in _BATCHES[split]
    ]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{folder}: expected labels 0..9, got {labels.min()}..{labels.max()}")
    return ArrayDataset(images, labels, list(CLASSES), f"cifar10/{split}")


def _safe_extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            resolved = (target / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not resolved.is_relative_to(
                    target.resolve()):
                raise DataError(f"{archive}: refusing unsafe archive member {member.name!r}")
        tar.extractall(target, filter="data")


def download_cifar10(
    root: str | os.PathLike[str], *, format: str = "python", url: str | None = None,
    md5: str | None = None, progress: bool = True,
) -> Path:
    """Fetch and unpack an official archive into ``root``; returns the batches directory."""
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
            raise DataError(f"{archive}: expected a {folder}/ folder inside the archive")
        os.replace(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
