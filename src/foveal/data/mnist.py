"""MNIST in its official IDX format (gzip-compressed or raw).

An IDX file is a big-endian header followed by the data::

    bytes 0-1  zero;  byte 2  type (0x08 = unsigned byte);  byte 3  number of dimensions d
    then d big-endian uint32 sizes, then prod(sizes) values

so images are ``0x00000803`` with sizes ``(N, 28, 28)`` and labels ``0x00000801`` with ``(N,)``.
Gzip is recognised by its magic bytes (``1f 8b``), not the file name. The payload must hold
exactly ``prod(sizes)`` bytes: a truncated (or padded) file is an error, not a short dataset.

``read_mnist(root, split)`` looks in ``root`` for ``train-images-idx3-ubyte`` and
``train-labels-idx1-ubyte`` (``t10k-…`` for ``test``), each raw or with ``.gz``, and also in
``root/MNIST/raw/``, where other tools put them.

Reference: Y. LeCun, C. Cortes, C. Burges, "The MNIST database of handwritten digits".
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
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
    """Read an IDX file of unsigned bytes (gzip or raw) into a ``uint8`` array of its shape.

    An image file ``(magic 0x00000803)`` gives ``(N, rows, cols)``, a label file
    ``(0x00000801)`` gives ``(N,)``. The array is a writable copy.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"expected an IDX file at {str(path)!r}, got no such file") from exc
    except OSError as exc:
        raise DataError(f"expected a readable IDX file at {str(path)!r}, got {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DataError(
                f"{path}: expected a complete gzip-compressed IDX file, got {reason}"
            ) from exc
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DataError(
            f"{path}: expected an IDX magic number 0x0000TTDD (00 00 08 01 for labels, "
            f"00 00 08 03 for images), got {raw[:4].hex(' ') or 'an empty file'}"
        )
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise DataError(f"{path}: expected unsigned-byte data (type 0x08), got type {dtype:#04x}")
    if ndim == 0:
        raise DataError(f"{path}: expected at least one dimension in the IDX header, got 0")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path}: expected {ndim} dimension sizes in the IDX header, got a truncated header"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise DataError(
            f"{path}: expected {count} values for shape {shape}, got {len(raw) - header} "
            "(truncated or padded file)"
        )
    # bytes are immutable, so frombuffer would give a read-only array; copy it once
    return np.frombuffer(raw, np.uint8, count, header).reshape(shape).copy()


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz", root / "MNIST" / "raw" / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"expected the MNIST file {stem}[.gz] in {str(root)!r}, got no such file")


def read_mnist(root: str | os.PathLike[str], split: str = "train") -> ArrayDataset:
    """The ``train`` (60,000) or ``test`` (10,000) split: images ``(N, 28, 28, 1)`` uint8.

    Labels are the digits, ``classes`` is ``["0", …, "9"]``.
    """
    if split not in _PREFIX:
        raise DataError(f"unknown MNIST split {split!r}: expected 'train' or 'test'")
    root = Path(root)
    prefix = _PREFIX[split]
    image_path = _find(root, f"{prefix}-images-idx3-ubyte")
    label_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3:
        raise DataError(f"{image_path}: expected an IDX image file (N, 28, 28), magic 0x00000803, "
                        f"got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{label_path}: expected an IDX label file (N,), magic 0x00000801, "
                        f"got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"MNIST {split}: expected as many labels as images ({len(images)}), "
                        f"got {len(labels)} in {str(label_path)!r}")
    return ArrayDataset(images[..., None], labels.astype(np.int64),
                        [str(i) for i in range(10)], f"mnist/{split}")


def download_mnist(
    root: str | os.PathLike[str], *, base_url: str = MNIST_URL, progress: bool = True
) -> Path:
    """Fetch the four official gzip files into ``root``; returns ``root``.

    Each file is checked against its published md5 (``MNIST_FILES``); files already present and
    verified are not fetched again, and an interrupted download resumes (see :func:`download`).
    ``base_url`` may point at a mirror; the official checksums still apply.
    """
    root = Path(root)
    for name, md5 in MNIST_FILES.items():
        download(base_url.rstrip("/") + "/" + name, root / name, md5=md5, progress=progress)
    return root
