import numpy as np
import pytest
from sklearn.datasets import load_digits

from foveal.data.dataset import ArrayDataset


@pytest.fixture(scope="session")
def digits_pair():
    """A small train/test split of scikit-learn's real 8×8 digits, as ArrayDatasets."""
    d = load_digits()
    x = np.round(d.images * 255 / 16).astype(np.uint8)[..., None]
    classes = [str(i) for i in range(10)]
    order = np.random.default_rng(0).permutation(len(x))
    tr, te = order[:600], order[600:800]
    train = ArrayDataset(x[tr], d.target[tr], classes, "digits/train")
    test = ArrayDataset(x[te], d.target[te], classes, "digits/test")
    return train, test
