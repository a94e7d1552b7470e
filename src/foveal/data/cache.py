"""The decoded cache: decode a folder of images once, reuse the pixels while it is unchanged.

Decoding 60,000 JPEGs takes tens of seconds; loading the same pixels from one ``.npy`` file takes
a fraction of a second. A cache entry is a folder::

    <cache_dir>/decoded/<key>/
        images.npy     uint8 (N, H, W, C)
        labels.npy     int64 (N,)
        manifest.json  format version, absolute source path, fingerprint, classes, name,
                       count, shape and the read options

``cache_dir`` defaults to ``$FOVEAL_CACHE``, else ``~/.cache/foveal``; ``key`` is the first 16
hex digits of the SHA-256 of the source folder's absolute path. The fingerprint is a SHA-256 over
the sorted ``(relative path, size, mtime_ns)`` of every file below the source, so adding,
removing or rewriting any file triggers a fresh decode, as does asking for other read options.

Writes are atomic: an entry is written into a temporary folder beside it (arrays first, each
flushed to disk, ``manifest.json`` last) and renamed into place only when complete, and an entry
is trusted only if its manifest is there and agrees with the arrays. An interrupted write
therefore never looks like a valid entry. A damaged entry is rebuilt with a warning, never fatal;
a cache folder that cannot be written only costs the reuse (with a warning).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from foveal.atomic import atomic_write, atomic_write_json
from foveal.data.dataset import ArrayDataset
from foveal.data.image_folder import check_image_size, read_image_folder

CACHE_FORMAT_VERSION = 1
_STALE_TMP_SECONDS = 3600.0  # leftovers of interrupted writes older than this are removed


def default_cache_dir() -> Path:
    """``$FOVEAL_CACHE``, else ``~/.cache/foveal``."""
    return Path(os.environ.get("FOVEAL_CACHE") or Path.home() / ".cache" / "foveal")


def cache_entry_dir(root: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
                    ) -> Path:
    """``<cache_dir>/decoded/<sha256 of the absolute path of root>[:16]``."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return base / "decoded" / key


def folder_fingerprint(root: str | os.PathLike[str]) -> str:
    """SHA-256 over the sorted ``(relative path, size, mtime_ns)`` of every file below ``root``."""
    root = Path(root)
    entries = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            try:
                st = os.stat(path)
            except OSError:  # a broken link: fingerprint the link; the reader names the file
                st = os.lstat(path)
            entries.append(f"{os.path.relpath(path, root)}\0{st.st_size}\0{st.st_mtime_ns}")
    entries.sort()
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def _load_entry(entry: Path, source: Path, fingerprint: str, options: dict[str, Any]
                ) -> ArrayDataset | None:
    """The cached dataset, or None if the entry is absent, stale or damaged (then warn)."""
    manifest_path = entry / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"expected a JSON object, got {type(manifest).__name__}")
        if (manifest.get("format_version") != CACHE_FORMAT_VERSION
                or manifest.get("source") != str(source)
                or manifest.get("fingerprint") != fingerprint
                or manifest.get("options") != options):
            return None  # stale, not damaged: rebuild quietly
        images = np.load(entry / "images.npy", allow_pickle=False)
        labels = np.load(entry / "labels.npy", allow_pickle=False)
        if list(images.shape) != manifest["shape"] or list(labels.shape) != [manifest["count"]]:
            raise ValueError(f"expected arrays of shape {manifest['shape']} and "
                             f"[{manifest['count']}], got {list(images.shape)} and "
                             f"{list(labels.shape)}")
        return ArrayDataset(images, labels, list(manifest["classes"]), str(manifest["name"]),
                            {"source": str(source), "cache": str(entry)})
    except Exception as exc:  # a damaged entry is rebuilt, never fatal
        reason = " ".join(str(exc).split()) or type(exc).__name__
        warnings.warn(f"rebuilding damaged decoded cache {str(entry)!r}: {reason}", stacklevel=3)
        return None


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb") as handle:  # flushed and fsynced before the manifest
        np.save(handle, array, allow_pickle=False)


def _remove_stale_temporaries(entry: Path) -> None:
    """Delete leftovers (``.<key>.*``) of writes that were interrupted long ago."""
    now = time.time()
    for tmp in entry.parent.glob(f".{entry.name}.*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)


def _write_entry(entry: Path, dataset: ArrayDataset, manifest: dict[str, Any]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(entry)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        _save_array(tmp / "images.npy", dataset.images)
        _save_array(tmp / "labels.npy", dataset.labels)
        atomic_write_json(tmp / "manifest.json", manifest)  # last: it makes the entry valid
        if entry.exists():  # move the old entry aside first: a directory cannot be replaced
            old = Path(tempfile.mkdtemp(prefix=f".{entry.name}.old.", dir=entry.parent))
            os.replace(entry, old / "entry")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already if the rename succeeded


def cached_image_folder(
    root: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    skip_corrupt: bool = False,
    image_size: tuple[int, int] | None = None,
    progress: bool = True,
    num_workers: int = 2,
    name: str | None = None,
) -> ArrayDataset:
    """:func:`read_image_folder` through the decoded cache (see the module docstring).

    Args:
        root: an ImageFolder, ``root/<class>/<image>``.
        cache_dir: where entries live (default ``$FOVEAL_CACHE`` or ``~/.cache/foveal``).
        skip_corrupt, image_size, progress, num_workers, name: as for
            :func:`read_image_folder`; ``skip_corrupt`` and ``image_size`` are part of the
            entry's identity, the others are not.

    Returns the same arrays a fresh :func:`read_image_folder` would.
    """
    root = Path(root).resolve()
    image_size = check_image_size(image_size)
    entry = cache_entry_dir(root, cache_dir)
    options = {"skip_corrupt": bool(skip_corrupt),
               "image_size": list(image_size) if image_size else None}
    fingerprint = folder_fingerprint(root)
    cached = _load_entry(entry, root, fingerprint, options)
    if cached is not None:
        if name:
            cached.name = name
        return cached
    dataset = read_image_folder(root, skip_corrupt=skip_corrupt, image_size=image_size,
                                progress=progress, num_workers=num_workers, name=name)
    manifest = {
        "format_version": CACHE_FORMAT_VERSION, "source": str(root), "fingerprint": fingerprint,
        "classes": dataset.classes, "name": dataset.name, "count": len(dataset),
        "shape": list(dataset.images.shape), "options": options,
    }
    try:
        _write_entry(entry, dataset, manifest)
    except Exception as exc:  # e.g. a read-only cache: lose the reuse, not the run
        reason = " ".join(str(exc).split()) or type(exc).__name__
        warnings.warn(f"could not write the decoded cache {str(entry)!r}: {reason}",
                      stacklevel=2)
    return dataset
