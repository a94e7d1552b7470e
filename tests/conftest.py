from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from foveal.data.dataset import ArrayDataset


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test runs torch on one thread: the suite runs one test per core (pytest -n 2), test
    inputs are small, and threads on a busy machine wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


# /work/main/tests/conftest.py -> /work/shared/data (the repository's ../shared/data)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_COCO = SHARED_DATA / "tiny_coco" / "tiny_coco"


@pytest.fixture(scope="session")
def tiny_coco_dir() -> Path:
    """The real tiny_coco subset of MS-COCO 2017 (``annotations/``, ``train2017/``, ``val2017/``);
    skips when the shared data folder is absent."""
    if not (TINY_COCO / "annotations" / "instances_val2017.json").is_file():
        pytest.skip(f"tiny_coco not found at {TINY_COCO} (the shared data folder is absent)")
    return TINY_COCO
