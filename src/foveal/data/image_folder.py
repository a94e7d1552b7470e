"""Read an ImageFolder directory into an :class:`ArrayDataset`.

Layout: ``root/<class>/<image>``, one sub-folder per class (class names sorted by name give the
label indices 0, 1, …), images ending in ``.jpg .jpeg .png .ppm .pgm .bmp`` (any case). Hidden
files and folders (names starting with ``.``, such as ``.DS_Store``) are ignored, and so are
plain files directly in ``root``; anything else inside a class folder (another file type, a
nested folder) is an error, so a stray file is never silently dropped. ``read_split_folder``
reads ``root/<split>/<class>/…``, the layout of the CIFAR-10 and MNIST image copies (``train/``
and ``test/``).

Every image is decoded completely (``Image.load()``), so a truncated file is caught here rather
than mid-training. All images must share one size unless ``image_size=(H, W)`` asks for a
bilinear resize. If every image is grey (PIL mode ``L``) the dataset has one channel, otherwise
every image is converted to RGB. Images within a class are ordered by file name.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from foveal.data.dataset import ArrayDataset
from foveal.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp")


def _entries(folder: Path) -> list[Path]:
    """The non-hidden entries of ``folder``."""
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError as exc:
        raise DataError(f"expected a readable folder at {str(folder)!r}, got "
                        f"{exc.strerror or exc}") from exc


def list_image_folder(root: str | os.PathLike[str]) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and ``(path, label)`` pairs of an ImageFolder, validated.

    Raises :class:`DataError` for a missing root, no class sub-folders, an empty class folder or
    a file that is not an image.
    """
    root = Path(root)
    if not root.is_dir():
        got = "a file" if root.exists() else "no such directory"
        raise DataError(f"expected an image folder at {str(root)!r}, got {got}")
    classes = sorted(p.name for p in _entries(root) if p.is_dir())
    if not classes:
        raise DataError(
            f"expected a directory with one sub-folder per class, got {str(root)!r} with no "
            "sub-folders"
        )
    items: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        files = sorted(_entries(root / name))
        for path in files:
            if path.is_dir():
                raise DataError(f"expected image files in class folder {name!r}, got a folder "
                                f"{str(path)!r}")
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(
                    f"expected image files ({', '.join(IMAGE_EXTENSIONS)}), got {str(path)!r}"
                )
            items.append((path, label))
        if not files:
            raise DataError(f"class folder {str(root / name)!r} is empty: expected images")
    return classes, items


def check_image_size(image_size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``image_size`` as an ``(H, W)`` tuple of positive ints (or None); ConfigError if not."""
    if image_size is None:
        return None
    if (not isinstance(image_size, tuple | list) or len(image_size) != 2
            or not all(isinstance(v, int | np.integer) and v > 0 for v in image_size)):
        raise ConfigError(f"expected image_size as (height, width) positive ints, got "
                          f"{image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _decode(path: Path, size: tuple[int, int] | None) -> np.ndarray | Exception:
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "RGB"):
                image = image.convert("L" if image.mode in ("1", "I;16", "I", "F") else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image)
    except Exception as exc:  # PIL raises many types for corrupt data
        return exc


def read_image_folder(
    root: str | os.PathLike[str],
    *,
    skip_corrupt: bool = False,
    image_size: tuple[int, int] | None = None,
    progress: bool = True,
    num_workers: int = 2,
    name: str | None = None,
) -> ArrayDataset:
    """Decode every image of ``root/<class>/<image>`` into memory.

    Args:
        root: the folder.
        skip_corrupt: warn about and skip unreadable images instead of raising.
        image_size: ``(H, W)`` to resize every image to; required if sizes differ.
        progress: show a progress bar.
        num_workers: decoding threads (PIL releases the GIL while decoding).
        name: the dataset's name (default: the folder's name).

    Returns:
        images ``(N, H, W, C)`` uint8 with ``C`` 1 (all grey) or 3, labels ``(N,)`` int64.
    """
    root = Path(root)
    image_size = check_image_size(image_size)
    classes, items = list_image_folder(root)
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        decoded = list(tqdm(pool.map(lambda it: _decode(it[0], image_size), items),
                            total=len(items), desc=f"decoding {root.name}", disable=not progress,
                            leave=False, unit="img"))
    arrays, labels = [], []
    for (path, label), result in zip(items, decoded, strict=True):
        if isinstance(result, Exception):
            message = (f"{path}: expected a readable image, got {type(result).__name__}: "
                       f"{_one_line(result)}")
            if not skip_corrupt:
                raise DataError(message + " (use skip_corrupt / --skip-corrupt to skip it)")
            warnings.warn(f"skipping unreadable image {message}", stacklevel=2)
            continue
        arrays.append(result)
        labels.append(label)
    if not arrays:
        raise DataError(f"expected at least one readable image in {str(root)!r}, got none")
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        raise DataError(
            f"expected images of one size in {str(root)!r}, got sizes {sorted(shapes)[:4]}: "
            "pass image_size to resize them"
        )
    grey = all(a.ndim == 2 for a in arrays)
    images = np.stack([a[..., None] if grey else _rgb(a) for a in arrays])
    return ArrayDataset(images, np.asarray(labels, np.int64), classes, name or root.name)


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a


def split_folder(root: str | os.PathLike[str], split: str) -> Path:
    """``root/<split>``, checked to exist; the error lists the split folders that do."""
    root = Path(root)
    folder = root / split
    if not folder.is_dir():
        found = (sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
                 if root.is_dir() else [])
        got = ", ".join(repr(f) for f in found) if found else "none"
        raise DataError(f"expected a split folder {str(folder)!r}, got splits: {got}")
    return folder


def read_split_folder(root: str | os.PathLike[str], split: str, **kwargs) -> ArrayDataset:
    """Read ``root/<split>/<class>/<image>`` (e.g. ``split="train"``).

    ``kwargs`` go to :func:`read_image_folder`; the name defaults to ``"<root name>/<split>"``.
    """
    folder = split_folder(root, split)
    kwargs.setdefault("name", f"{Path(root).name}/{split}")
    return read_image_folder(folder, **kwargs)
