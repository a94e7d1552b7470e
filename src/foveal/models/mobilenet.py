"""MobileNet v1 (depthwise separable convolutions) and v2 (inverted residuals, linear bottlenecks).

**Depthwise separable convolution** (v1, §3.1): a ``k×k`` convolution from ``M`` to ``N`` channels
is factored into a depthwise ``k×k`` convolution (one filter per input channel, ``groups = M``)
and a pointwise ``1×1`` convolution ``M → N``, cutting weights from ``k²MN`` to ``k²M + MN``.
Each is followed by BN and ReLU. MobileNet v1 (Table 1)::

    conv 3×3/2 → 32
    dw/pw: 64, 128/2, 128, 256/2, 256, 512/2, 5 × 512, 1024/2, 1024     ("/2": depthwise stride 2)
    global average pool → FC 1024 → classes

Every channel count is scaled by the width multiplier ``α`` (§3.3, rounded down as in the Keras
reference). With ``α = 1`` and 1000 classes the network has 4,231,976 parameters (the paper's
"4.2 million"; the trainable parameters of the Keras ``MobileNet(alpha=1.0)`` reference).

**Inverted residual with linear bottleneck** (v2, §3.3 and Table 1): with expansion ``t``,

    x ↦ conv 1×1 → t·c_in, BN, ReLU6 → depthwise 3×3/s, BN, ReLU6 → conv 1×1 → c_out, BN

with no activation after the projection (the "linear bottleneck") and ``y = x + block(x)`` when
``s = 1`` and ``c_in = c_out``. The expansion convolution is omitted when ``t = 1``. MobileNet v2
(Table 2; ``t`` expansion, ``c`` channels, ``n`` repeats, ``s`` stride of the first repeat)::

    conv 3×3/2 → 32
    t c   n s:  1 16 1 1 | 6 24 2 2 | 6 32 3 2 | 6 64 4 2 | 6 96 3 1 | 6 160 3 2 | 6 320 1 1
    conv 1×1 → 1280, BN, ReLU6 → global average pool → dropout 0.2 → FC 1280 → classes

Channels are scaled by the width multiplier and rounded to multiples of 8 (:func:`make_divisible`);
the last convolution keeps 1280 channels unless the multiplier exceeds 1. With multiplier 1 and
1000 classes: 3,504,872 parameters (torchvision's published count).

Both networks pad every stride-2 convolution so that a side ``S`` becomes ``⌈S/2⌉``: any input of
at least 1×1 works.

References: A. Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861 (2017), §3 and Table 1; M. Sandler et al., "MobileNetV2: Inverted
Residuals and Linear Bottlenecks", CVPR 2018, §3–4, Tables 1–2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["MOBILENET_V1_CONFIG", "MOBILENET_V2_CONFIG", "InvertedResidual", "MobileNetV1",
           "MobileNetV2", "conv_bn_act", "depthwise_separable", "make_divisible", "mobilenet_v1",
           "mobilenet_v2"]

# Table 1 of the v1 paper after the stem: (pointwise output channels, depthwise stride).
MOBILENET_V1_CONFIG: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)

# Table 2 of the v2 paper: (expansion t, output channels c, repeats n, first stride s).
MOBILENET_V2_CONFIG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to the nearest multiple of ``divisor`` (at least
    ``min_value``, default ``divisor``), going up one step if rounding lost more than 10 %.

    The rule of the MobileNet v2 and EfficientNet reference code (TensorFlow ``_make_divisible``):
    ``make_divisible(32 · 0.35) = 16``, ``make_divisible(320 · 1.1) = 352``.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                groups: int = 1, activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Convolution with "same" padding ``(k − 1) / 2`` and no bias → BN → activation (if any).

    With stride ``s`` the side ``S`` becomes ``⌈S / s⌉`` for odd ``k``. ``groups = in_channels``
    makes it depthwise.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def depthwise_separable(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3×3/stride (BN, ReLU) → pointwise 1×1 (BN, ReLU): ``k²M + MN`` weights."""
    return nn.Sequential(
        conv_bn_act(in_channels, in_channels, 3, stride, groups=in_channels),
        conv_bn_act(in_channels, out_channels, 1),
    )


def _check_width(name: str, width_mult: float) -> None:
    if not width_mult > 0:
        raise ConfigError(f"{name} width_mult must be positive, got {width_mult}")


class MobileNetV1(nn.Module):
    """MobileNet v1: a 3×3/2 stem and 13 depthwise separable blocks (Table 1).

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        width_mult: ``α``; every layer gets ``⌊α · channels⌋`` channels.
        dropout: probability of dropping a pooled feature before the classifier.

    Maps ``(N, in_channels, H, W)`` to logits ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.0,
                 config: Sequence[tuple[int, int]] = MOBILENET_V1_CONFIG) -> None:
        super().__init__()
        _check_width("mobilenet_v1", width_mult)

        def width(c: int) -> int:
            return max(1, int(c * width_mult))

        layers: list[nn.Module] = [conv_bn_act(in_channels, width(32), 3, stride=2)]
        channels = width(32)
        for out, stride in config:
            layers.append(depthwise_separable(channels, width(out), stride))
            channels = width(out)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = self.features(x).mean((2, 3))
        return self.fc(self.dropout(x))


class InvertedResidual(nn.Module):
    """MobileNet v2 block: expand 1×1 (ReLU6) → depthwise 3×3/stride (ReLU6) → linear project 1×1.

    ``(N, c_in, H, W) → (N, c_out, ⌈H/s⌉, ⌈W/s⌉)``, plus the input when ``s = 1`` and
    ``c_in = c_out``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: float) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"expected an inverted residual stride of 1 or 2, got {stride}")
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn_act(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            conv_bn_act(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNet v2 (Table 2 of the paper).

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        width_mult: channel multiplier; widths are rounded to multiples of ``round_nearest``.
        dropout: probability of dropping a pooled feature before the classifier.
        round_nearest: the channel divisor of :func:`make_divisible` (8).

    Maps ``(N, in_channels, H, W)`` to logits ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.2, round_nearest: int = 8,
                 config: Sequence[tuple[int, int, int, int]] = MOBILENET_V2_CONFIG) -> None:
        super().__init__()
        _check_width("mobilenet_v2", width_mult)
        channels = make_divisible(32 * width_mult, round_nearest)
        last = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        layers: list[nn.Module] = [conv_bn_act(in_channels, channels, 3, 2, activation=nn.ReLU6)]
        for t, c, n, s in config:
            out = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(conv_bn_act(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(last, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = self.features(x).mean((2, 3))
        return self.fc(self.dropout(x))


def _init_weights(model: nn.Module) -> None:
    # torchvision's MobileNet scheme: He (fan-out) convolutions, N(0, 0.01) classifier.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def _check_size(name: str, image_size: int) -> None:
    if image_size < 1:
        raise ConfigError(f"{name} needs a positive image size, got {image_size}")


@register_model("mobilenet_v1", family="mobilenet", image_size=224, params=4_231_976,
                description="MobileNet v1 (depthwise separable, width 1.0)",
                source="Howard et al. 2017, Table 1 (4.2 M); Keras MobileNet(alpha=1.0) "
                       "trainable params")
def mobilenet_v1(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                 width_mult: float = 1.0, dropout: float = 0.0) -> MobileNetV1:
    """:class:`MobileNetV1` (any ``image_size ≥ 1``)."""
    _check_size("mobilenet_v1", image_size)
    return MobileNetV1(in_channels, num_classes, width_mult=width_mult, dropout=dropout)


@register_model("mobilenet_v2", family="mobilenet", image_size=224, params=3_504_872,
                description="MobileNet v2 (inverted residuals, linear bottlenecks, width 1.0)",
                source="torchvision MobileNet_V2_Weights.IMAGENET1K_V1 num_params; "
                       "Sandler et al. 2018, Table 2")
def mobilenet_v2(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                 width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV2:
    """:class:`MobileNetV2` (any ``image_size ≥ 1``)."""
    _check_size("mobilenet_v2", image_size)
    return MobileNetV2(in_channels, num_classes, width_mult=width_mult, dropout=dropout)
