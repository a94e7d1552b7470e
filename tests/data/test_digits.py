"""Built-in digits against scikit-learn's own arrays."""

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from foveal.data.digits import load_digits
from foveal.errors import ConfigError


def test_pixels_and_labels_equal_sklearn_after_documented_scaling():
    ref = sk_load_digits()
    train, test = load_digits("train"), load_digits("test")
    assert len(train) + len(test) == len(ref.images) == 1797
    both = np.concatenate([train.images, test.images])[..., 0].astype(np.int64)
    labels = np.concatenate([train.labels, test.labels])
    expected = {(np.round(im * 255 / 16).astype(np.int64).tobytes(), t)
                for im, t in zip(ref.images, ref.target, strict=True)}
    assert {(im.tobytes(), t) for im, t in zip(both, labels, strict=True)} == expected


def test_split_is_stratified_disjoint_and_deterministic():
    test = load_digits("test")
    assert len(test) == 360
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert np.array_equal(load_digits("test").images, test.images)


def test_unknown_split():
    with pytest.raises(ConfigError, match="expected 'train' or 'test'"):
        load_digits("val")
