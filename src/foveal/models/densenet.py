"""DenseNet-BC: every layer of a dense block sees the concatenation of all earlier feature maps.

Inside a dense block the ``ℓ``-th layer computes

    x_ℓ = H_ℓ([x₀, x₁, …, x_{ℓ−1}])

where ``[·]`` concatenates along channels and ``H_ℓ`` is the bottleneck composite
BN → ReLU → conv 1×1 → ``bn_size · k`` → BN → ReLU → conv 3×3 → ``k`` (no biases), so a block of
``L`` layers on ``c`` channels outputs ``c + L·k`` channels (``k`` the growth rate). Between blocks
a transition layer BN → ReLU → conv 1×1 → ``⌊θ · c⌋`` → 2×2/2 average pool compresses the
channels by ``θ`` (0.5 in DenseNet-BC). The network::

    conv 7×7/2 → 2k, BN, ReLU, max-pool 3×3/2
    dense block (L₁) → transition → dense block (L₂) → transition → dense block (L₃)
    → transition → dense block (L₄) → BN → ReLU → global average pool → FC → classes

Table 1 configurations (``k``, ``(L₁, L₂, L₃, L₄)``, stem width): DenseNet-121 (32, (6, 12, 24, 16),
64) with 7,978,856 parameters for 1000 classes; DenseNet-169 (32, (6, 12, 32, 32), 64) 14,149,480;
DenseNet-201 (32, (6, 12, 48, 32), 64) 20,013,928; DenseNet-161 (48, (6, 12, 36, 24), 96)
28,681,000 (torchvision's published counts). All use ``bn_size = 4`` and ``θ = 0.5``.

The stem and three transitions halve the side five times with floor rounding, so the input side
must be at least 29 (29 → 15 → 8 → 4 → 2 → 1).

Reference: G. Huang, Z. Liu, L. van der Maaten, K. Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017, §3 (eq. 2, bottleneck and compression) and Table 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["MIN_IMAGE_SIZE", "DenseBlock", "DenseLayer", "DenseNet", "Transition",
           "densenet121", "densenet161", "densenet169", "densenet201"]

MIN_IMAGE_SIZE = 29


class DenseLayer(nn.Module):
    """``H_ℓ``: ``(N, c, H, W) → (N, k, H, W)`` via BN-ReLU-conv1×1 (``bn_size·k``)-BN-ReLU-conv3×3.

    Args:
        in_channels: ``c``, all feature maps concatenated so far.
        growth_rate: ``k``.
        bn_size: bottleneck width as a multiple of ``k``.
        dropout: probability of dropping a unit of the new features (0 in the ImageNet models).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        width = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.norm1(x)))
        return self.dropout(self.conv2(F.relu(self.norm2(x))))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers: ``(N, c, H, W) → (N, c + num_layers·k, H, W)``."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, dropout)
            for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN → ReLU → conv 1×1 → ``out_channels`` → 2×2/2 average pool: halves H and W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2, stride=2),
        )


class DenseNet(nn.Module):
    """DenseNet-BC for ImageNet-style inputs.

    Args:
        growth_rate: ``k``, channels each dense layer adds.
        block_config: layers per dense block, ``(L₁, …, L₄)``.
        stem_channels: width of the 7×7 stem convolution (``2k`` in the paper).
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        bn_size: bottleneck width as a multiple of ``k``.
        compression: ``θ``, the fraction of channels a transition keeps.
        dropout: dropout after each dense layer (0 for ImageNet).

    Maps ``(N, in_channels, H, W)`` with ``H, W ≥ 29`` to logits ``(N, num_classes)``.
    """

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 stem_channels: int = 64, in_channels: int = 3, num_classes: int = 1000,
                 bn_size: int = 4, compression: float = 0.5, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 < compression <= 1.0:
            raise ConfigError(f"expected a DenseNet compression θ in (0, 1], got {compression}")
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        channels = stem_channels
        for i, num_layers in enumerate(block_config):
            layers.append(DenseBlock(num_layers, channels, growth_rate, bn_size, dropout))
            channels += num_layers * growth_rate
            if i < len(block_config) - 1:
                out = int(channels * compression)
                layers.append(Transition(channels, out))
                channels = out
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(torch.flatten(x, 1))


def _densenet(name: str, growth_rate: int, block_config: tuple[int, ...], stem_channels: int,
              in_channels: int, num_classes: int, image_size: int, dropout: float) -> DenseNet:
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"{name} needs images of at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} "
                          f"(five stride-2 stages), got {image_size}×{image_size}")
    return DenseNet(growth_rate, block_config, stem_channels, in_channels, num_classes,
                    dropout=dropout)


@register_model("densenet121", family="densenet", image_size=224, params=7_978_856,
                description="DenseNet-121 (BC, k=32, blocks 6-12-24-16)",
                source="torchvision DenseNet121_Weights.IMAGENET1K_V1 num_params; "
                       "Huang et al. 2017, Table 1")
def densenet121(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                dropout: float = 0.0) -> DenseNet:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), bn_size 4, compression 0.5."""
    return _densenet("densenet121", 32, (6, 12, 24, 16), 64, in_channels, num_classes,
                     image_size, dropout)


@register_model("densenet169", family="densenet", image_size=224, params=14_149_480,
                description="DenseNet-169 (BC, k=32, blocks 6-12-32-32)",
                source="torchvision DenseNet169_Weights.IMAGENET1K_V1 num_params; "
                       "Huang et al. 2017, Table 1")
def densenet169(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                dropout: float = 0.0) -> DenseNet:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32)."""
    return _densenet("densenet169", 32, (6, 12, 32, 32), 64, in_channels, num_classes,
                     image_size, dropout)


@register_model("densenet201", family="densenet", image_size=224, params=20_013_928,
                description="DenseNet-201 (BC, k=32, blocks 6-12-48-32)",
                source="torchvision DenseNet201_Weights.IMAGENET1K_V1 num_params; "
                       "Huang et al. 2017, Table 1")
def densenet201(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                dropout: float = 0.0) -> DenseNet:
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32)."""
    return _densenet("densenet201", 32, (6, 12, 48, 32), 64, in_channels, num_classes,
                     image_size, dropout)


@register_model("densenet161", family="densenet", image_size=224, params=28_681_000,
                description="DenseNet-161 (BC, k=48, blocks 6-12-36-24, 96-channel stem)",
                source="torchvision DenseNet161_Weights.IMAGENET1K_V1 num_params; "
                       "Huang et al. 2017, Table 1")
def densenet161(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                dropout: float = 0.0) -> DenseNet:
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), stem 96 channels."""
    return _densenet("densenet161", 48, (6, 12, 36, 24), 96, in_channels, num_classes,
                     image_size, dropout)
