"""MNIST in its official IDX format (gzip-compressed or raw).

An IDX file is a big-endian header followed by the data::

    bytes 0-1  zero;  byte 2  type (0x08 = unsigned byte);  byte 3  number of dimensions d
    then d big-endian uint32 sizes, then prod(sizes) values

so images are ``0x00000803`` with sizes ``(N, 28, 28)`` and labels ``0x00000801`` with ``(N,)``.
Gzip is recognised by its magic bytes (``1f 8b``), not the file name.

Reference: Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten digits".
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from foveal.data.dataset import ArrayDataset
from foveal.data.download import download
from foveal.errors import DataError

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip or raw) into a ``uint8`` array of its shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError as exc:
        raise DataError(f"IDX file not found: expected a file at {str(path)!r}") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: expected a gzip-compressed IDX file, got {exc}") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DataError(f"{path}: expected an IDX magic number 0x0000TTDD, got {raw[:4].hex()}")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise DataError(f"{path}: expected unsigned-byte data (type 0x08), got type {dtype:#04x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: expected {ndim} dimension sizes, got a truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise DataError(
            f"{path}: expected {count} values for shape {shape}, got {len(raw) - header} "
            "(truncated or padded file)"
        )
    return np.frombuffer(raw, np.uint8, count, header).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz", root / "MNIST" / "raw" / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"MNIST file {stem}[.gz] not found in {str(root)!r}")


def read_mnist(root: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """The ``train`` (60,000) or ``test`` (10,000) split: images ``(N, 28, 28, 1)`` uint8."""
    if split not in _PREFIX:
        raise DataError(f"unknown MNIST split {split!r}: expected 'train' or 'test'")
    root = Path(root)
    prefix = _PREFIX[split]
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"MNIST {split}: expected images (N, H, W) and N labels, got {images.shape} and "
            f"{labels.shape}"
        )
    return ArrayDataset(np.ascontiguousarray(images[..., None]), labels.astype(np.int64),
                        [str(i) for i in range(10)], f"mnist/{split}")


def download_mnist(
    root: str | os.PathLike[str], *, base_url: str = MNIST_URL, progress: bool = True
) -> Path:
    """Fetch the four official files into ``root`` (md5-verified, resumable); returns ``root``."""
    root = Path(root)
    for name, md5 in MNIST_FILES.items():
        download(base_url.rstrip("/") + "/" + name, root / name, md5=md5, progress=progress)
    return root
