"""Classifier architectures, built by name with :func:`create` or :func:`build_model`.

Importing this package imports every architecture module, each of which registers its builders
in :mod:`foveal.models.registry`.
"""

# importing an architecture module registers its builders
from foveal.models import (  # noqa: F401
    airbench,
    alexnet,
    convnext,
    densenet,
    efficientnet,
    googlenet,
    mlp,
    mlp_mixer,
    mobilenet,
    resnet,
    resnet9,
    small_cnn,
    swin,
    vgg,
    vit,
)
from foveal.models.mlp import MLP
from foveal.models.registry import (
    DEFAULT_MODEL,
    ModelEntry,
    build_model,
    create,
    get_model_entry,
    list_models,
    model_names,
    register_model,
)
from foveal.models.resnet9 import ResNet9
from foveal.models.small_cnn import SmallCNN

MODEL_NAMES: tuple[str, ...] = model_names()

__all__ = ["DEFAULT_MODEL", "MLP", "MODEL_NAMES", "ModelEntry", "ResNet9", "SmallCNN",
           "build_model", "create", "get_model_entry", "list_models", "model_names",
           "register_model"]
