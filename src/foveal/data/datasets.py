"""Load a dataset by name or path: what ``--data`` accepts on the command line.

- ``digits``: scikit-learn's built-in 8×8 digits (no download).
- ``mnist``, ``cifar10``: the official files under ``root`` (default ``$FOVEAL_DATA`` or
  ``~/.cache/foveal/data``), downloaded first when ``download=True``.
- any other string is a path to a folder:

  - with a ``train/`` sub-folder: a split layout, ``path/<split>/<class>/<image>`` (as
    :func:`~foveal.data.image_folder.read_split_folder` reads it); a missing split is an error
    that lists the splits there are;
  - otherwise a single ImageFolder, ``path/<class>/<image>``. It is the ``train`` split; asking
    it for any other split is an error rather than silently returning the same images (a model
    "tested" on its training images reports a meaningless accuracy).

  Folders are read through the decoded cache (:mod:`foveal.data.cache`) when ``cache=True``.
  A single ImageFolder with a class that happens to be called ``train`` is read as a split
  layout; rename that class folder.

Anything else raises :class:`ConfigError` listing the valid names.
"""

from __future__ import annotations

import os
from pathlib import Path

from foveal.data.dataset import ArrayDataset
from foveal.data.image_folder import split_folder
from foveal.errors import ConfigError, DataError

DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "cifar10")


def default_data_root() -> Path:
    """``$FOVEAL_DATA``, else ``~/.cache/foveal/data``."""
    return Path(os.environ.get("FOVEAL_DATA", Path.home() / ".cache" / "foveal" / "data"))


def load_dataset(
    name_or_path: str,
    split: str = "train",
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    cache: bool = True,
    skip_corrupt: bool = False,
    progress: bool = True,
) -> ArrayDataset:
    """The ``split`` of a named dataset or image folder (see the module docstring).

    Args:
        name_or_path: one of :data:`DATASET_NAMES` or a folder.
        split: ``"train"`` or ``"test"`` (for a split layout: any split folder there is).
        root: where the MNIST / CIFAR-10 files are (default :func:`default_data_root`).
        download: fetch MNIST / CIFAR-10 into ``root`` first if they cannot be read there.
        cache: read folders through the decoded cache.
        skip_corrupt: skip unreadable images in folders with a warning instead of failing.
        progress: show progress bars.

    Returns images ``(N, H, W, C)`` uint8 and labels ``(N,)`` int64 (see :class:`ArrayDataset`).
    """
    if name_or_path == "digits":
        from foveal.data.digits import load_digits

        return load_digits(split)
    if name_or_path in ("mnist", "cifar10"):
        return _load_official(name_or_path, split, root, download, progress)
    path = Path(name_or_path)
    if path.exists() and not path.is_dir():
        raise DataError(f"expected dataset {name_or_path!r} to be a folder of images, got a file")
    if not path.is_dir():
        raise ConfigError(
            f"unknown dataset {name_or_path!r}: expected one of {', '.join(DATASET_NAMES)} "
            "or a path to an image folder"
        )
    if (path / "train").is_dir():
        folder = split_folder(path, split)
    elif split == "train":
        folder = path
    else:
        raise DataError(
            f"{str(path)!r} is a single image folder, which has only a 'train' split: expected "
            f"'{split}/' inside it for the {split!r} split"
        )
    name = f"{path.resolve().name}/{split}"
    if cache:
        from foveal.data.cache import cached_image_folder

        return cached_image_folder(folder, skip_corrupt=skip_corrupt, progress=progress,
                                   name=name)
    from foveal.data.image_folder import read_image_folder

    return read_image_folder(folder, skip_corrupt=skip_corrupt, progress=progress, name=name)


def _load_official(
    name: str, split: str, root: str | os.PathLike[str] | None, download: bool, progress: bool
) -> ArrayDataset:
    root = Path(root) if root is not None else default_data_root()
    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r} for {name}: expected 'train' or 'test'")
    if name == "mnist":
        from foveal.data.mnist import download_mnist, read_mnist

        reader, fetch = read_mnist, download_mnist
    else:
        from foveal.data.cifar10 import download_cifar10, read_cifar10

        reader, fetch = read_cifar10, download_cifar10
    try:
        return reader(root, split)
    except DataError as exc:
        if not download:
            raise DataError(
                f"{name} could not be read from {str(root)!r} ({exc}): pass --download to fetch "
                "the official files, or --data-root to point elsewhere"
            ) from None
    fetch(root, progress=progress)
    return reader(root, split)
