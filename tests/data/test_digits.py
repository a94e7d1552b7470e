"""Built-in digits against scikit-learn's own arrays and the documented scaling
round(v * 255 / 16)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from foveal.data.digits import load_digits
from foveal.errors import ConfigError


def rows(ds):
    return sorted((im.tobytes(), int(t)) for im, t in zip(ds.images, ds.labels, strict=True))


def test_pixels_and_labels_equal_sklearn_after_documented_scaling():
    ref = sk_load_digits()
    train, test = load_digits("train"), load_digits("test")
    assert train.images.shape[1:] == (8, 8, 1) and train.images.dtype == np.uint8
    assert train.classes == [str(d) for d in range(10)]
    expected = np.round(ref.images * 255 / 16).astype(np.uint8)[..., None]
    assert expected.max() == 255  # 16 maps to 255, 0 to 0
    # train + test, as a multiset of (pixels, label) rows, is exactly the whole dataset: the
    # splits are disjoint and cover everything (duplicated images are counted, not merged).
    whole = sorted((im.tobytes(), int(t)) for im, t in zip(expected, ref.target, strict=True))
    assert sorted(rows(train) + rows(test)) == whole
    assert len(train) + len(test) == 1797


def test_split_is_stratified():
    ref = np.bincount(sk_load_digits().target)
    test = np.bincount(load_digits("test").labels, minlength=10)
    assert test.sum() == 360
    assert np.all(np.abs(test - 0.2 * ref) <= 1)  # each class within one image of 20 %


def test_split_is_deterministic_and_follows_the_seed():
    a, b = load_digits("test", seed=0), load_digits("test", seed=0)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert rows(load_digits("test", seed=1)) != rows(a)


def test_test_fraction():
    assert len(load_digits("test", test_fraction=0.5)) == 899  # ceil(1797 * 0.5)
    for bad in (0.0, 1.0, -0.1, 0.001):
        with pytest.raises(ConfigError, match="expected a digits test_fraction") as info:
            load_digits("test", test_fraction=bad)
        assert "\n" not in str(info.value)


def test_unknown_split():
    with pytest.raises(ConfigError, match="expected 'train' or 'test'"):
        load_digits("val")
