"""Classifiers built from scratch layers, mirroring :mod:`foveal.models` parameter for parameter.

The state-dict keys and shapes equal those of the torch models of the same name, so weights
trained here load into ``foveal.models.build_model(name, …)`` (and back) unchanged:

- ``small_cnn``: conv 5×5 → ReLU → max-pool 2×2, twice, then FC → ReLU → FC → ReLU → FC
  (:class:`foveal.models.small_cnn.SmallCNN`, the conv-relu-pool ×2 + FC network);
- ``mlp``: flatten → [Linear → ReLU → Dropout] × len(hidden) → Linear
  (:class:`foveal.models.mlp.MLP`); ``hidden=(h,)`` is the classic two-layer net.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from foveal.models.small_cnn import small_cnn_feature_size
from foveal.scratch.layers.activation import ReLU
from foveal.scratch.layers.conv import Conv2d
from foveal.scratch.layers.dropout import Dropout
from foveal.scratch.layers.linear import Flatten, Linear
from foveal.scratch.layers.module import Module, Sequential
from foveal.scratch.ops.activation import relu
from foveal.scratch.ops.pool import max_pool2d
from foveal.scratch.ops.shape import flatten
from foveal.scratch.tensor import Tensor

SCRATCH_MODEL_NAMES: tuple[str, ...] = ("small_cnn", "mlp")


class SmallCNN(Module):
    """(N, C, S, S) → (N, K): two conv-ReLU-pool stages and three FC layers (see module doc)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, *,
                 rng: np.random.Generator | None = None, dtype: type = np.float32) -> None:
        super().__init__()
        s = small_cnn_feature_size(image_size)
        if s < 1:
            raise ValueError(f"small_cnn: expected inputs of at least 16×16, got "
                             f"{image_size}×{image_size}")
        rng = rng or np.random.default_rng()
        self.conv1 = Conv2d(in_channels, 6, 5, rng=rng, dtype=dtype)
        self.conv2 = Conv2d(6, 16, 5, rng=rng, dtype=dtype)
        self.fc1 = Linear(16 * s * s, 120, rng=rng, dtype=dtype)
        self.fc2 = Linear(120, 84, rng=rng, dtype=dtype)
        self.fc3 = Linear(84, num_classes, rng=rng, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = max_pool2d(relu(self.conv1(x)), 2)
        x = max_pool2d(relu(self.conv2(x)), 2)
        x = flatten(x, 1)
        x = relu(self.fc1(x))
        x = relu(self.fc2(x))
        return self.fc3(x)


class MLP(Module):
    """Flatten, then [Linear → ReLU → Dropout(p)] per hidden width, then Linear."""

    def __init__(self, in_features: int, num_classes: int = 10,
                 hidden: Sequence[int] = (512, 256), dropout: float = 0.1, *,
                 rng: np.random.Generator | None = None, dtype: type = np.float32) -> None:
        super().__init__()
        rng = rng or np.random.default_rng()
        layers: list[Module] = [Flatten()]
        width = in_features
        for h in hidden:
            layers += [Linear(width, h, rng=rng, dtype=dtype), ReLU(), Dropout(dropout, rng=rng)]
            width = h
        layers.append(Linear(width, num_classes, rng=rng, dtype=dtype))
        self.net = Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_scratch_model(name: str, *, in_channels: int, num_classes: int, image_size: int,
                        seed: int = 0, **options: Any) -> Module:
    """The scratch twin of ``foveal.models.build_model(name, …)``, initialised from ``seed``."""
    rng = np.random.default_rng(seed)
    if name == "small_cnn":
        if options:
            raise ValueError(f"small_cnn: takes no options, got {sorted(options)}")
        return SmallCNN(in_channels, num_classes, image_size, rng=rng)
    if name == "mlp":
        unknown = sorted(set(options) - {"hidden", "dropout"})
        if unknown:
            raise ValueError(f"mlp: unknown option(s) {unknown}: valid options: hidden, dropout")
        return MLP(in_channels * image_size * image_size, num_classes, rng=rng, **options)
    raise ValueError(
        f"unknown scratch model {name!r}: expected one of {', '.join(SCRATCH_MODEL_NAMES)}"
    )
