"""VGG: stacks of 3×3 convolutions and 2×2 max-pools, then three fully connected layers.

Simonyan & Zisserman's Table 1 configurations, as output widths of 3×3 convolutions (stride 1,
padding 1, with bias) and ``M`` for a 2×2/2 max-pool::

    A (VGG-11)  64 M 128 M 256 256 M 512 512 M 512 512 M
    B (VGG-13)  64 64 M 128 128 M 256 256 M 512 512 M 512 512 M
    D (VGG-16)  64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
    E (VGG-19)  64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M

Each convolution is followed by ReLU (and, in the ``_bn`` variants, by batch normalisation first:
conv → BN → ReLU, the convolution keeping its bias as in torchvision). The head is an adaptive
average pool to 512 × 7 × 7 (the identity at 224 px), then FC 25088 → 4096, ReLU, dropout,
FC 4096 → 4096, ReLU, dropout, FC 4096 → classes. The adaptive pool lets any input of at least
32×32 through (five 2× pools reduce 32 px to one cell, which the pool repeats 7×7 times).

Parameter counts for 1000 classes (torchvision's published ``num_params``)::

    vgg11 132,863,336   vgg13 133,047,848   vgg16 138,357,544   vgg19 143,667,240
    vgg11_bn 132,868,840  vgg13_bn 133,053,736  vgg16_bn 138,365,992  vgg19_bn 143,678,248

Reference: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, §2 and Table 1; batch-normalised variants: torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["CONFIGS", "MIN_IMAGE_SIZE", "VGG", "make_features", "vgg11", "vgg11_bn", "vgg13",
           "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

MIN_IMAGE_SIZE = 32

# Table 1 of the paper: ints are 3×3 convolution widths, "M" a 2×2/2 max-pool.
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"),
}


def make_features(config: Sequence[int | str], in_channels: int = 3,
                  batch_norm: bool = False) -> nn.Sequential:
    """The convolutional trunk of one Table 1 column: ``(N, C, H, W) → (N, 512, H/32, W/32)``."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        width = int(item)
        layers.append(nn.Conv2d(channels, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG classifier: :func:`make_features` trunk, 7×7 adaptive pool, three FC layers.

    Args:
        config: one of :data:`CONFIGS` (``"A"``, ``"B"``, ``"D"``, ``"E"``) or an explicit list.
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        batch_norm: insert batch normalisation after every convolution.
        dropout: probability of dropping a unit after each of the first two FC layers.

    Maps ``(N, in_channels, H, W)`` with ``H, W ≥ 32`` to logits ``(N, num_classes)``.
    """

    def __init__(self, config: str | Sequence[int | str] = "D", in_channels: int = 3,
                 num_classes: int = 1000, batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ConfigError(f"expected a VGG configuration in {sorted(CONFIGS)}, "
                                  f"got {config!r}")
            config = CONFIGS[config]
        widths = [c for c in config if c != "M"]
        self.features = make_features(config, in_channels, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(int(widths[-1]) * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation (fan-out) for the ReLU convolutions, small normal FC weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _vgg(name: str, config: str, batch_norm: bool, in_channels: int, num_classes: int,
         image_size: int, dropout: float) -> VGG:
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"{name} needs images of at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} "
                          f"(five 2×2 max-pools), got {image_size}×{image_size}")
    return VGG(config, in_channels, num_classes, batch_norm=batch_norm, dropout=dropout)


_SOURCE = "torchvision {}_Weights.IMAGENET1K_V1 num_params; Simonyan & Zisserman 2015, Table 1"


@register_model("vgg11", family="vgg", image_size=224, params=132_863_336,
                description="VGG-11 (configuration A)", source=_SOURCE.format("VGG11"))
def vgg11(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
          dropout: float = 0.5) -> VGG:
    """VGG-11, configuration A: 8 convolutions + 3 FC layers."""
    return _vgg("vgg11", "A", False, in_channels, num_classes, image_size, dropout)


@register_model("vgg11_bn", family="vgg", image_size=224, params=132_868_840,
                description="VGG-11 (configuration A) with batch normalisation",
                source=_SOURCE.format("VGG11_BN"))
def vgg11_bn(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.5) -> VGG:
    """VGG-11 with conv → BN → ReLU."""
    return _vgg("vgg11_bn", "A", True, in_channels, num_classes, image_size, dropout)


@register_model("vgg13", family="vgg", image_size=224, params=133_047_848,
                description="VGG-13 (configuration B)", source=_SOURCE.format("VGG13"))
def vgg13(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
          dropout: float = 0.5) -> VGG:
    """VGG-13, configuration B: 10 convolutions + 3 FC layers."""
    return _vgg("vgg13", "B", False, in_channels, num_classes, image_size, dropout)


@register_model("vgg13_bn", family="vgg", image_size=224, params=133_053_736,
                description="VGG-13 (configuration B) with batch normalisation",
                source=_SOURCE.format("VGG13_BN"))
def vgg13_bn(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.5) -> VGG:
    """VGG-13 with conv → BN → ReLU."""
    return _vgg("vgg13_bn", "B", True, in_channels, num_classes, image_size, dropout)


@register_model("vgg16", family="vgg", image_size=224, params=138_357_544,
                description="VGG-16 (configuration D)", source=_SOURCE.format("VGG16"))
def vgg16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
          dropout: float = 0.5) -> VGG:
    """VGG-16, configuration D: 13 convolutions + 3 FC layers."""
    return _vgg("vgg16", "D", False, in_channels, num_classes, image_size, dropout)


@register_model("vgg16_bn", family="vgg", image_size=224, params=138_365_992,
                description="VGG-16 (configuration D) with batch normalisation",
                source=_SOURCE.format("VGG16_BN"))
def vgg16_bn(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.5) -> VGG:
    """VGG-16 with conv → BN → ReLU."""
    return _vgg("vgg16_bn", "D", True, in_channels, num_classes, image_size, dropout)


@register_model("vgg19", family="vgg", image_size=224, params=143_667_240,
                description="VGG-19 (configuration E)", source=_SOURCE.format("VGG19"))
def vgg19(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
          dropout: float = 0.5) -> VGG:
    """VGG-19, configuration E: 16 convolutions + 3 FC layers."""
    return _vgg("vgg19", "E", False, in_channels, num_classes, image_size, dropout)


@register_model("vgg19_bn", family="vgg", image_size=224, params=143_678_248,
                description="VGG-19 (configuration E) with batch normalisation",
                source=_SOURCE.format("VGG19_BN"))
def vgg19_bn(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.5) -> VGG:
    """VGG-19 with conv → BN → ReLU."""
    return _vgg("vgg19_bn", "E", True, in_channels, num_classes, image_size, dropout)
