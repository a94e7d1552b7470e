"""EfficientNet: MBConv blocks with squeeze-and-excitation, scaled in width, depth and resolution.

**MBConv** (the MobileNet v2 inverted residual plus SE, SiLU activations): for input channels
``c_in``, expansion ``t`` and kernel ``k``,

    h = SiLU(BN(conv1×1(x)))                  → t·c_in channels (a multiple of 8; none if t = 1)
    h = SiLU(BN(depthwise k×k / s (h)))
    h = SE(h), squeeze width max(1, ⌊c_in / 4⌋), inner activation SiLU, sigmoid gate
    y = BN(conv1×1(h))                        → c_out channels, no activation
    y = x + DropPath_p(y)                     when s = 1 and c_in = c_out

EfficientNet-B0 (paper Table 1; ``t`` expansion, ``k`` kernel, ``s`` stride, channels, repeats)::

    conv 3×3/2 → 32
    t k s  c_in → c_out  n:  1 3 1 32→16 1 | 6 3 2 16→24 2 | 6 5 2 24→40 2 | 6 3 2 40→80 3
                             6 5 1 80→112 3 | 6 5 2 112→192 4 | 6 3 1 192→320 1
    conv 1×1 → 1280, BN, SiLU → global average pool → dropout → FC → classes

5,288,548 parameters for 1000 classes (torchvision's published count).

**Compound scaling** (§3.3, eq. 3): with a compound coefficient ``φ``,

    depth d = α^φ,  width w = β^φ,  resolution r = γ^φ,  α·β²·γ² ≈ 2,  α, β, γ ≥ 1

so FLOPs grow by about ``2^φ``; the grid search on B0 gave ``α = 1.2, β = 1.1, γ = 1.15``
(:func:`compound_coefficients`). Channels scale as ``make_divisible(w · c, 8)``
(:func:`scale_width`) and repeats as ``⌈d · n⌉`` (:func:`scale_depth`). The released B1–B7 use
rounded coefficients (:data:`EFFICIENTNET_VARIANTS`, as the reference code and torchvision), which
is what the published counts are for.

**Stochastic depth**: block ``i`` of ``L`` drops its residual branch with probability
``p · i / (L − 1)`` (``p = 0.2``, :func:`foveal.models.stochastic_depth.linear_drop_rates`; the
TensorFlow reference uses ``p · i / L``). Batch norm keeps PyTorch's defaults (ε = 10⁻⁵,
momentum 0.1) as torchvision's B0–B4; the TensorFlow reference's ε = 10⁻³ and decay 0.99 suit
long ImageNet schedules but leave the running statistics near their initial values after a short
run. Every stride-2 convolution maps a side ``S`` to ``⌈S/2⌉``, so any input of at least 1×1
works.

Reference: M. Tan, Q. Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, §3.3 (eq. 3), §4 (Table 1) and §5.2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.mobilenet import conv_bn_act, make_divisible
from foveal.models.registry import register_model
from foveal.models.squeeze_excitation import SqueezeExcitation
from foveal.models.stochastic_depth import DropPath, linear_drop_rates

__all__ = ["EFFICIENTNET_B0_CONFIG", "EFFICIENTNET_VARIANTS", "EfficientNet", "MBConv",
           "MBConvConfig", "compound_coefficients", "efficientnet_b0", "efficientnet_b1",
           "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
           "efficientnet_b6", "efficientnet_b7", "scale_depth", "scale_width"]

class MBConvConfig(NamedTuple):
    """A Table 1 stage: expansion ``t``, kernel ``k``, first stride ``s``, channels, repeats."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


EFFICIENTNET_B0_CONFIG: tuple[MBConvConfig, ...] = (
    MBConvConfig(1, 3, 1, 32, 16, 1),
    MBConvConfig(6, 3, 2, 16, 24, 2),
    MBConvConfig(6, 5, 2, 24, 40, 2),
    MBConvConfig(6, 3, 2, 40, 80, 3),
    MBConvConfig(6, 5, 1, 80, 112, 3),
    MBConvConfig(6, 5, 2, 112, 192, 4),
    MBConvConfig(6, 3, 1, 192, 320, 1),
)

# Released variants: (width multiplier, depth multiplier, resolution, dropout).
EFFICIENTNET_VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}


def compound_coefficients(phi: float, alpha: float = 1.2, beta: float = 1.1,
                          gamma: float = 1.15) -> tuple[float, float, float]:
    """Eq. 3: the depth, width and resolution multipliers ``(α^φ, β^φ, γ^φ)``.

    With the paper's ``α = 1.2, β = 1.1, γ = 1.15``, ``α·β²·γ² ≈ 1.92``, so each unit of ``φ``
    roughly doubles the FLOPs.
    """
    if min(alpha, beta, gamma) < 1.0:
        raise ConfigError(f"expected compound scaling bases α, β, γ ≥ 1, "
                          f"got {alpha}, {beta}, {gamma}")
    return alpha**phi, beta**phi, gamma**phi


def scale_width(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels after width scaling: ``make_divisible(width_mult · channels, divisor)``."""
    return make_divisible(channels * width_mult, divisor)


def scale_depth(repeats: int, depth_mult: float) -> int:
    """Repeats after depth scaling: ``⌈depth_mult · repeats⌉``."""
    return math.ceil(repeats * depth_mult)


class MBConv(nn.Module):
    """Mobile inverted bottleneck with SE: ``(N, c_in, H, W) → (N, c_out, ⌈H/s⌉, ⌈W/s⌉)``.

    Args:
        in_channels, out_channels: ``c_in``, ``c_out``.
        kernel: depthwise kernel ``k`` (3 or 5).
        stride: depthwise stride ``s`` (1 or 2).
        expand_ratio: ``t``.
        drop_path: stochastic-depth probability of the residual branch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int, drop_path: float = 0.0) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"expected an MBConv stride of 1 or 2, got {stride}")
        hidden = make_divisible(in_channels * expand_ratio)
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(conv_bn_act(in_channels, hidden, 1, activation=nn.SiLU))
        layers += [
            conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, activation=nn.SiLU),
            SqueezeExcitation(hidden, max(1, in_channels // 4), activation=nn.SiLU),
            conv_bn_act(hidden, out_channels, 1, activation=None),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path = DropPath(drop_path, mode="row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + self.drop_path(y) if self.use_residual else y


class EfficientNet(nn.Module):
    """EfficientNet: a 3×3/2 stem, MBConv stages, a 1×1 head convolution and a linear classifier.

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        width_mult: ``w``, applied to every stage's channels with :func:`scale_width`.
        depth_mult: ``d``, applied to every stage's repeats with :func:`scale_depth`.
        dropout: probability of dropping a pooled feature before the classifier.
        stochastic_depth: drop probability ``p`` of the last block (linear from 0).
        config: the B0 stages (:data:`EFFICIENTNET_B0_CONFIG`).

    Maps ``(N, in_channels, H, W)`` to logits ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, width_mult: float = 1.0,
                 depth_mult: float = 1.0, dropout: float = 0.2, stochastic_depth: float = 0.2,
                 config: Sequence[MBConvConfig] = EFFICIENTNET_B0_CONFIG) -> None:
        super().__init__()
        if not (width_mult > 0 and depth_mult > 0):
            raise ConfigError(f"expected positive EfficientNet width and depth multipliers, "
                              f"got {width_mult} and {depth_mult}")
        stages = [(c, scale_width(c.in_channels, width_mult),
                   scale_width(c.out_channels, width_mult), scale_depth(c.repeats, depth_mult))
                  for c in config]
        rates = iter(linear_drop_rates(stochastic_depth, sum(n for *_, n in stages)))
        stem = stages[0][1]
        layers: list[nn.Module] = [conv_bn_act(in_channels, stem, 3, 2, activation=nn.SiLU)]
        for c, c_in, c_out, n in stages:
            for i in range(n):
                layers.append(MBConv(c_in if i == 0 else c_out, c_out, c.kernel,
                                     c.stride if i == 0 else 1, c.expand_ratio, next(rates)))
        head = 4 * stages[-1][2]
        layers.append(conv_bn_act(stages[-1][2], head, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(head, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's scheme: He (fan-out) convolutions, U(±1/√K) classifier weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        x = self.features(x).mean((2, 3))
        return self.fc(self.dropout(x))


def _efficientnet(variant: str, in_channels: int, num_classes: int, image_size: int,
                  dropout: float | None, stochastic_depth: float) -> EfficientNet:
    if image_size < 1:
        raise ConfigError(f"efficientnet_{variant} needs a positive image size, got {image_size}")
    width, depth, _, default_dropout = EFFICIENTNET_VARIANTS[variant]
    return EfficientNet(in_channels, num_classes, width, depth,
                        default_dropout if dropout is None else dropout, stochastic_depth)


_SOURCE = "torchvision EfficientNet_{}_Weights.IMAGENET1K_V1 num_params; Tan & Le 2019"


@register_model("efficientnet_b0", family="efficientnet", image_size=224, params=5_288_548,
                description="EfficientNet-B0 (MBConv + SE, SiLU)", source=_SOURCE.format("B0"))
def efficientnet_b0(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B0 (Table 1); ``dropout`` defaults to the variant's 0.2."""
    return _efficientnet("b0", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b1", family="efficientnet", image_size=240, params=7_794_184,
                description="EfficientNet-B1 (width 1.0, depth 1.1, 240 px)",
                source=_SOURCE.format("B1"))
def efficientnet_b1(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 240,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B1: width 1.0, depth 1.1, dropout 0.2."""
    return _efficientnet("b1", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b2", family="efficientnet", image_size=260, params=9_109_994,
                description="EfficientNet-B2 (width 1.1, depth 1.2, 260 px)",
                source=_SOURCE.format("B2"))
def efficientnet_b2(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 260,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B2: width 1.1, depth 1.2, dropout 0.3."""
    return _efficientnet("b2", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b3", family="efficientnet", image_size=300, params=12_233_232,
                description="EfficientNet-B3 (width 1.2, depth 1.4, 300 px)",
                source=_SOURCE.format("B3"))
def efficientnet_b3(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 300,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B3: width 1.2, depth 1.4, dropout 0.3."""
    return _efficientnet("b3", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b4", family="efficientnet", image_size=380, params=19_341_616,
                description="EfficientNet-B4 (width 1.4, depth 1.8, 380 px)",
                source=_SOURCE.format("B4"))
def efficientnet_b4(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 380,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B4: width 1.4, depth 1.8, dropout 0.4."""
    return _efficientnet("b4", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b5", family="efficientnet", image_size=456, params=30_389_784,
                description="EfficientNet-B5 (width 1.6, depth 2.2, 456 px)",
                source=_SOURCE.format("B5"))
def efficientnet_b5(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 456,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B5: width 1.6, depth 2.2, dropout 0.4."""
    return _efficientnet("b5", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b6", family="efficientnet", image_size=528, params=43_040_704,
                description="EfficientNet-B6 (width 1.8, depth 2.6, 528 px)",
                source=_SOURCE.format("B6"))
def efficientnet_b6(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 528,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B6: width 1.8, depth 2.6, dropout 0.5."""
    return _efficientnet("b6", in_channels, num_classes, image_size, dropout, stochastic_depth)


@register_model("efficientnet_b7", family="efficientnet", image_size=600, params=66_347_960,
                description="EfficientNet-B7 (width 2.0, depth 3.1, 600 px)",
                source=_SOURCE.format("B7"))
def efficientnet_b7(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 600,
                    dropout: float | None = None, stochastic_depth: float = 0.2) -> EfficientNet:
    """EfficientNet-B7: width 2.0, depth 3.1, dropout 0.5."""
    return _efficientnet("b7", in_channels, num_classes, image_size, dropout, stochastic_depth)
