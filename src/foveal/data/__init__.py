"""Datasets, readers, the decoded cache, the in-memory loader and batch augmentation."""

from foveal.data.augment import Augment
from foveal.data.cache import cached_image_folder
from foveal.data.cifar10 import download_cifar10, read_cifar10
from foveal.data.dataset import ArrayDataset
from foveal.data.datasets import DATASET_NAMES, default_data_root, load_dataset
from foveal.data.digits import load_digits
from foveal.data.download import download
from foveal.data.image_folder import read_image_folder, read_split_folder
from foveal.data.loader import InMemoryLoader
from foveal.data.mnist import download_mnist, read_idx, read_mnist
from foveal.data.shapes import SHAPE_CLASSES, generate_shapes, write_shapes_dataset

__all__ = [
    "DATASET_NAMES",
    "SHAPE_CLASSES",
    "ArrayDataset",
    "Augment",
    "InMemoryLoader",
    "cached_image_folder",
    "default_data_root",
    "download",
    "download_cifar10",
    "download_mnist",
    "generate_shapes",
    "load_dataset",
    "load_digits",
    "read_cifar10",
    "read_idx",
    "read_image_folder",
    "read_mnist",
    "read_split_folder",
    "write_shapes_dataset",
]
