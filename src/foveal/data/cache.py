"""The decoded cache: decode a folder of images once, reuse the pixels while it is unchanged.

Decoding 60,000 JPEGs takes tens of seconds; loading the same pixels from one ``.npy`` file takes
a fraction of a second. A cache entry is a folder::

    <cache_dir>/decoded/<key>/
        images.npy     uint8 (N, H, W, C)
        labels.npy     int64 (N,)
        manifest.json  format version, source path, fingerprint, classes, shape, read options

``key`` is a hash of the source folder's absolute path. The fingerprint is a SHA-256 over the
sorted ``(relative path, size, mtime_ns)`` of every file below the source, so adding, removing or
rewriting any file triggers a fresh decode. An entry is written into a temporary folder that is
renamed into place only when complete, and ``manifest.json`` is written last: an interrupted
write never looks like a valid entry. A damaged entry is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from foveal.atomic import atomic_write_json
from foveal.data.dataset import ArrayDataset
from foveal.data.image_folder import read_image_folder

CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$FOVEAL_CACHE``, else ``~/.cache/foveal``."""
    return Path(os.environ.get("FOVEAL_CACHE", Path.home() / ".cache" / "foveal"))


def folder_fingerprint(root: str | os.PathLike[str]) -> str:
    """SHA-256 over the sorted ``(relative path, size, mtime_ns)`` of every file below ``root``."""
    root = Path(root)
    entries = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            entries.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}")
    entries.sort()
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _load_entry(entry: Path, fingerprint: str, options: dict[str, Any]) -> ArrayDataset | None:
    manifest_path = entry / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        if (manifest.get("format_version") != CACHE_FORMAT_VERSION
                or manifest.get("fingerprint") != fingerprint
                or manifest.get("options") != options):
            return None
        images = np.load(entry / "images.npy", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
        if list(images.shape) != manifest["shape"] or len(labels) != manifest["count"]:
            raise ValueError("array shapes disagree with the manifest")
        return ArrayDataset(images, labels, list(manifest["classes"]), manifest["name"])
    except Exception as exc:  # a damaged entry is rebuilt, never fatal
        warnings.warn(f"rebuilding damaged decoded cache {str(entry)!r}: {exc}", stacklevel=3)
        return None


def cached_image_folder(
    root: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    skip_corrupt: bool = False,
    image_size: tuple[int, int] | None = None,
    progress: bool = True,
    name: str | None = None,
) -> ArrayDataset:
    """:func:`read_image_folder` through the decoded cache (see the module docstring)."""
    root = Path(root).resolve()
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    entry = base / "decoded" / key
    options = {"skip_corrupt": skip_corrupt,
               "image_size": list(image_size) if image_size else None}
    fingerprint = folder_fingerprint(root)
    cached = _load_entry(entry, fingerprint, options)
    if cached is not None:
        if name:
            cached.name = name
        return cached
    dataset = read_image_folder(root, skip_corrupt=skip_corrupt, image_size=image_size,
                                progress=progress, name=name)
    tmp: Path | None = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=entry.parent))
        np.save(tmp / "images.npy", dataset.images)
        np.save(tmp / "labels.npy", dataset.labels)
        atomic_write_json(tmp / "manifest.json", {
            "format_version": CACHE_FORMAT_VERSION, "source": str(root),
            "fingerprint": fingerprint, "classes": dataset.classes, "name": dataset.name,
            "count": len(dataset), "shape": list(dataset.images.shape), "options": options,
        })
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    except OSError as exc:  # a read-only cache must not stop the run
        warnings.warn(f"could not write the decoded cache in {str(base)!r}: {exc}", stacklevel=2)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return dataset
