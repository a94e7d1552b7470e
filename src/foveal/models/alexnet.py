"""AlexNet in torchvision's single-tower layout (the "one weird trick" variant).

Krizhevsky et al. (2012) split AlexNet over two GPUs with 48/128/192/192/128 filters per tower;
the single-tower network of Krizhevsky (2014), which torchvision reproduces, uses::

    conv 11×11/4, pad 2 → 64    ReLU   max-pool 3/2
    conv  5×5,    pad 2 → 192   ReLU   max-pool 3/2
    conv  3×3,    pad 1 → 384   ReLU
    conv  3×3,    pad 1 → 256   ReLU
    conv  3×3,    pad 1 → 256   ReLU   max-pool 3/2
    adaptive average pool → 256 × 6 × 6
    dropout → FC 9216 → 4096, ReLU → dropout → FC 4096 → 4096, ReLU → FC 4096 → classes

All layers have biases: 61,100,840 parameters for 1000 classes.

The adaptive pool makes the classifier independent of the input size, but the three unpadded
3/2 max-pools need a 3×3 map each: with ``s₁ = ⌊(S − 7) / 4⌋ + 1`` after the first convolution,
the network needs ``s₁ ≥ 15``, i.e. ``S ≥ 63`` (torchvision's ``min_size`` for AlexNet).

References: A. Krizhevsky, I. Sutskever, G. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012, §3.5 and Fig. 2; A. Krizhevsky, "One weird trick for
parallelizing convolutional neural networks", arXiv:1404.5997 (2014).
"""

from __future__ import annotations

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["MIN_IMAGE_SIZE", "AlexNet", "alexnet"]

MIN_IMAGE_SIZE = 63


class AlexNet(nn.Module):
    """AlexNet: five convolutions, three max-pools, three fully connected layers.

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        dropout: probability of dropping a unit before each of the first two FC layers.

    Maps ``(N, in_channels, H, W)`` with ``H, W ≥ 63`` to logits ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model("alexnet", family="alexnet", image_size=224,
                description="AlexNet, single-tower layout (64-192-384-256-256, FC 4096-4096)",
                params=61_100_840,
                source="torchvision AlexNet_Weights.IMAGENET1K_V1 num_params; Krizhevsky 2014")
def alexnet(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
            dropout: float = 0.5) -> AlexNet:
    """:class:`AlexNet` for ``image_size ≥ 63`` (any smaller input is pooled away)."""
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"alexnet needs images of at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} "
                          f"(three 3×3/2 max-pools after an 11×11/4 convolution), "
                          f"got {image_size}×{image_size}")
    return AlexNet(in_channels, num_classes, dropout=dropout)
