"""scikit-learn's built-in handwritten digits as an :class:`ArrayDataset`.

1,797 real 8×8 grey images of the digits 0–9 (UCI "Optical Recognition of Handwritten Digits"),
shipped inside scikit-learn, so this dataset needs no download. Pixel values ``v ∈ {0..16}`` are
mapped to ``uint8`` by ``round(v · 255 / 16)``. The train/test split is stratified by class and
fixed by ``seed``.
"""

from __future__ import annotations

import numpy as np

from foveal.data.dataset import ArrayDataset
from foveal.errors import ConfigError


def load_digits(split: str = "train", *, test_fraction: float = 0.2, seed: int = 0) -> ArrayDataset:
    """The ``train`` or ``test`` split of the digits: images ``(N, 8, 8, 1)`` uint8.

    Args:
        split: ``"train"`` or ``"test"``.
        test_fraction: the share of every class that goes to ``test`` (0.2: 360 of 1,797).
        seed: fixes the split; the same seed always gives the same two disjoint index sets,
            whose union is the whole dataset. Rows keep scikit-learn's order within a split.

    Labels are the digits themselves, ``classes`` is ``["0", …, "9"]``.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r} for digits: expected 'train' or 'test'")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"expected a digits test_fraction in (0, 1), got {test_fraction!r}")
    digits = sk_load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    index = np.arange(len(images))
    try:
        train_idx, test_idx = train_test_split(
            index, test_size=test_fraction, stratify=digits.target, random_state=seed
        )
    except ValueError as exc:  # too few test rows for one per class
        raise ConfigError(
            f"expected a digits test_fraction that leaves every class in both splits, got "
            f"{test_fraction!r} ({' '.join(str(exc).split())})"
        ) from exc
    chosen = np.sort(train_idx if split == "train" else test_idx)
    return ArrayDataset(
        images[chosen], digits.target[chosen].astype(np.int64), [str(i) for i in range(10)],
        f"digits/{split}", {"source": "sklearn.datasets.load_digits", "seed": str(seed)},
    )
