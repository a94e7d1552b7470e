"""Datasets, readers, the decoded cache, the in-memory loader and batch augmentation."""

from foveal.data.augment import Augment
from foveal.data.dataset import ArrayDataset
from foveal.data.datasets import DATASET_NAMES, default_data_root, load_dataset
from foveal.data.loader import InMemoryLoader

__all__ = [
    "DATASET_NAMES", "ArrayDataset", "Augment", "InMemoryLoader", "default_data_root",
    "load_dataset",
]
