"""The classic small CNN of the PyTorch CIFAR-10 tutorial (a LeNet-5 variant).

Layers, for a ``C×32×32`` input::

    conv 5×5, C→6    → ReLU → max-pool 2×2     (6×28×28 → 6×14×14)
    conv 5×5, 6→16   → ReLU → max-pool 2×2     (16×10×10 → 16×5×5)
    flatten 16·5·5 = 400 → FC 120 → ReLU → FC 84 → ReLU → FC num_classes

For other square sizes the flattened width is ``16·s·s`` with ``s = ((H − 4)//2 − 4)//2``,
so MNIST's 28×28 gives 256. The smallest usable input is 16×16 (``s = 1``).

Reference: Y. LeCun et al., "Gradient-based learning applied to document recognition", 1998;
layer sizes as in the PyTorch "Training a classifier" tutorial.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from foveal.errors import ConfigError
from foveal.models.registry import register_model


def small_cnn_feature_size(image_size: int) -> int:
    """Side ``s`` of the 16×s×s feature map the two conv/pool stages leave from a square input."""
    return ((image_size - 4) // 2 - 4) // 2


class SmallCNN(nn.Module):
    """Two 5×5 conv + max-pool stages and three fully connected layers.

    Args:
        in_channels: input channels ``C`` (3 for RGB, 1 for grey).
        num_classes: output logits.
        image_size: side of the square input; 32 gives the classic 400-wide flatten.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> None:
        super().__init__()
        s = small_cnn_feature_size(image_size)
        if s < 1:
            raise ConfigError(
                f"small_cnn needs inputs of at least 16×16, got {image_size}×{image_size}"
            )
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * s * s, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


@register_model("small_cnn", family="cnn", image_size=32,
                description="two conv-pool blocks and a linear head (MNIST, CIFAR)")
def small_cnn(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> SmallCNN:
    """:class:`SmallCNN` for ``image_size``² inputs."""
    return SmallCNN(in_channels, num_classes, image_size)
