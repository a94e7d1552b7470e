"""A fast residual network for small images: the ResNet-9 layout of the DAWNBench CIFAR-10 entry.

With base width ``w`` (64 in the original)::

    prep    conv 3×3 → w, BN, ReLU
    layer1  conv 3×3 → 2w, BN, ReLU, max-pool 2   + residual(2 × [conv 3×3 2w, BN, ReLU])
    layer2  conv 3×3 → 4w, BN, ReLU, max-pool 2
    layer3  conv 3×3 → 8w, BN, ReLU, max-pool 2   + residual(2 × [conv 3×3 8w, BN, ReLU])
    head    global max-pool → linear 8w → classes → × scale (0.125)

A residual block computes ``y = x + f(x)``. The final scaling keeps the initial logits small, which
lets the network train at high learning rates with label smoothing. The global pool makes the
network work on any input of at least 8×8 (three 2× pools), e.g. 8×8 digits or 28×28 MNIST.

Reference: D. Page, "How to train your ResNet" (Myrtle.ai, 2018), the 94% CIFAR-10 in 24 epochs
DAWNBench network; K. He et al., "Deep residual learning for image recognition", CVPR 2016.
"""

from __future__ import annotations

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model


def conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 convolution (no bias: BN supplies it) → batch norm → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """``y = x + f(x)`` with ``f`` two conv-BN-ReLU layers of the same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.f = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class ResNet9(nn.Module):
    """ResNet-9 for small images.

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        width: base width ``w``; the stages have ``w, 2w, 4w, 8w`` channels. 64 is the original
            (6.6 M parameters); 16 or 32 trade accuracy for speed on a CPU.
        scale: multiplier on the logits.
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 10, width: int = 64, scale: float = 0.125
    ) -> None:
        super().__init__()
        if width < 1:
            raise ConfigError(f"resnet9 width must be a positive integer, got {width}")
        w = width
        self.scale = scale
        self.prep = conv_bn(in_channels, w)
        self.layer1 = nn.Sequential(conv_bn(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w))
        self.layer2 = nn.Sequential(conv_bn(2 * w, 4 * w), nn.MaxPool2d(2))
        self.layer3 = nn.Sequential(conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(8 * w, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` with ``H, W ≥ 8`` → logits ``(N, num_classes)``."""
        if x.shape[-1] < 8 or x.shape[-2] < 8:
            raise ConfigError(f"resnet9 needs inputs of at least 8×8, got {tuple(x.shape[-2:])}")
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.scale


@register_model("resnet9", family="resnet", image_size=32,
                description="airbench-style ResNet-9 for CIFAR-sized images (width 64)")
def resnet9(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
            width: int = 64, scale: float = 0.125) -> ResNet9:
    """:class:`ResNet9` (any ``image_size`` ≥ 8: the head pools globally)."""
    return ResNet9(in_channels, num_classes, width=width, scale=scale)
