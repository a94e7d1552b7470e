"""Classifier architectures, built by name with :func:`build_model`."""

from foveal.models.mlp import MLP
from foveal.models.registry import DEFAULT_MODEL, MODEL_NAMES, build_model
from foveal.models.resnet9 import ResNet9
from foveal.models.small_cnn import SmallCNN

__all__ = ["DEFAULT_MODEL", "MLP", "MODEL_NAMES", "ResNet9", "SmallCNN", "build_model"]
