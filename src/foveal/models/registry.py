"""Build a classifier by name: the names the CLI and checkpoints use.

``build_model(name, in_channels=C, num_classes=K, image_size=S, **options)`` returns an
``nn.Module`` mapping ``(N, C, S, S)`` images to ``(N, K)`` logits.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from foveal.errors import ConfigError
from foveal.models.mlp import MLP
from foveal.models.resnet9 import ResNet9
from foveal.models.small_cnn import SmallCNN

MODEL_NAMES: tuple[str, ...] = ("resnet9", "small_cnn", "mlp")
DEFAULT_MODEL = "resnet9"

_OPTIONS: dict[str, tuple[str, ...]] = {
    "resnet9": ("width", "scale"),
    "small_cnn": (),
    "mlp": ("hidden", "dropout"),
}


def build_model(
    name: str, *, in_channels: int, num_classes: int, image_size: int, **options: Any
) -> nn.Module:
    """Instantiate the model ``name`` for ``in_channels×image_size×image_size`` inputs.

    ``options`` are the model's own keyword arguments (``width`` for resnet9, ``hidden`` and
    ``dropout`` for mlp). Unknown names or options raise :class:`ConfigError` listing valid ones.
    """
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        valid = ", ".join(_OPTIONS[name]) or "none"
        raise ConfigError(f"unknown option(s) {unknown} for model {name!r}: valid options: {valid}")
    if name == "resnet9":
        return ResNet9(in_channels, num_classes, **options)
    if name == "small_cnn":
        return SmallCNN(in_channels, num_classes, image_size)
    return MLP(in_channels * image_size * image_size, num_classes, **options)
