"""Load a dataset by name or path: what ``--data`` accepts on the command line.

- ``digits``: scikit-learn's built-in 8×8 digits (no download).
- ``mnist``, ``cifar10``: the official files under ``root`` (default ``$FOVEAL_DATA`` or
  ``~/.cache/foveal/data``), downloaded first when ``download=True``.
- any other string is a path: a folder with ``train/`` and ``test/`` split folders, each in
  ImageFolder layout, or a single ImageFolder (then only ``split="train"`` exists). Folders are
  read through the decoded cache when ``cache=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

from foveal.data.dataset import ArrayDataset
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
    """The ``split`` of a named dataset or image folder (see the module docstring)."""
    if name_or_path == "digits":
        from foveal.data.digits import load_digits

        return load_digits(split)
    if name_or_path in ("mnist", "cifar10"):
        return _load_official(name_or_path, split, root, download, progress)
    path = Path(name_or_path)
    if not path.is_dir():
        raise ConfigError(
            f"unknown dataset {name_or_path!r}: expected one of {', '.join(DATASET_NAMES)} "
            "or a path to an image folder"
        )
    folder = path / split if (path / "train").is_dir() else path
    if folder == path and split != "train":
        raise DataError(
            f"{str(path)!r} is a single image folder, which has only a 'train' split: expected "
            f"'{split}/' inside it for the {split!r} split"
        )
    if not folder.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise DataError(f"expected a split folder {str(folder)!r}, got splits {found}")
    name = f"{path.name}/{split}"
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
