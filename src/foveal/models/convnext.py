"""ConvNeXt V2: a modernised ResNet with global response normalisation.

Layout (Woo et al. 2023, §3–4; the ConvNeXt macro design of Liu et al. 2022)::

    stem        conv p×p/p (p = 4) → C₁, LayerNorm2d                    224 → 56
    stage i     d_i blocks of width C_i                                    56, 28, 14, 7
    downsample  LayerNorm2d, conv 2×2/2 C_i → C_{i+1}   (before stages 2–4)
    head        global average pool → LayerNorm → linear C₄ → classes

Block (``x`` is ``(N, C, H, W)``)::

    y = x + DropPath(pw₂(GRN(GELU(pw₁(LN(dw7×7(x)))))))

with ``dw7×7`` a depthwise convolution (padding 3), ``LN`` a LayerNorm over channels (computed
channels-last), ``pw₁ : C → 4C`` and ``pw₂ : 4C → C`` pointwise (linear) layers. V2 drops V1's
layer scale and adds GRN (eq. 1–3) after the expansion, for ``X`` of shape ``(N, H, W, C)``:

    G(X)_c = ‖X_{:, :, c}‖₂                   (L2 norm over the spatial positions)      (1)
    N(X)_c = G(X)_c / (mean_c' G(X)_c' + ε)   (divisive normalisation across channels)  (2)
    GRN(X) = γ ⊙ (X ⊙ N(X)) + β + X           (γ, β ∈ R^C, both initialised to 0)       (3)

so GRN starts as the identity. Stochastic depth rises linearly from 0 to ``drop_path_rate``
over all blocks (Huang et al. 2016).

Configurations (depths, widths) and exact parameter counts for 1000 classes, counted from the
official implementation's layout (facebookresearch/ConvNeXt-V2, ``models/convnextv2.py``; its
README rounds them to 3.7M, 5.2M, 9.1M, 15.6M, 28.6M; timm's ``convnextv2_*`` has the same
layout)::

    convnextv2_atto   [2, 2, 6, 2]  [40, 80, 160, 320]     3,708,400
    convnextv2_femto  [2, 2, 6, 2]  [48, 96, 192, 384]     5,233,240
    convnextv2_pico   [2, 2, 6, 2]  [64, 128, 256, 512]    9,066,280
    convnextv2_nano   [2, 2, 8, 2]  [80, 160, 320, 640]   15,623,800
    convnextv2_tiny   [3, 3, 9, 3]  [96, 192, 384, 768]   28,635,496

``convnext_cifar`` is a small variant for 32×32 images (not from the paper): a 2×2/2 stem (a
4×4/4 stem would leave 1×1 maps at stage 4), so stages see 16, 8, 4, 2 pixels, atto's depths and
widths 32-64-128-256.

References: S. Woo, S. Debnath, R. Hu, X. Chen, Z. Liu, I. S. Kweon, S. Xie, "ConvNeXt V2:
Co-designing and Scaling ConvNets with Masked Autoencoders", CVPR 2023; Z. Liu et al.,
"A ConvNet for the 2020s", CVPR 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model
from foveal.models.stochastic_depth import DropPath, linear_drop_rates

__all__ = ["GRN", "ConvNeXtBlock", "ConvNeXtV2", "LayerNorm2d", "global_response_norm"]

LN_EPS = 1e-6
GRN_EPS = 1e-6


def global_response_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                         eps: float = GRN_EPS) -> torch.Tensor:
    """GRN (Woo et al. 2023, eq. 1–3) of a channels-last ``x`` of shape ``(N, H, W, C)``.

    ``G = ‖x‖₂`` over ``(H, W)`` per sample and channel, ``N = G / (mean_c G + eps)``,
    returns ``gamma · (x · N) + beta + x`` with ``gamma, beta`` of shape ``(C,)``.
    """
    g = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)  # (N, 1, 1, C)
    n = g / (g.mean(dim=-1, keepdim=True) + eps)
    return gamma * (x * n) + beta + x


class GRN(nn.Module):
    """:func:`global_response_norm` with learnable ``γ, β ∈ R^C`` (zero-initialised)."""

    def __init__(self, channels: int, eps: float = GRN_EPS) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, H, W, C)`` → same shape."""
        return global_response_norm(x, self.gamma, self.beta, self.eps)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first ``(N, C, H, W)`` tensor."""

    def __init__(self, channels: int, eps: float = LN_EPS) -> None:
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """``y = x + DropPath(pw₂(GRN(GELU(pw₁(LN(dw7×7(x)))))))``, ``(N, C, H, W)`` → same.

    Args:
        channels: ``C``; the pointwise expansion is ``4C``.
        drop_path: stochastic-depth probability of skipping the branch.
    """

    def __init__(self, channels: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=LN_EPS)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.grn = GRN(4 * channels)
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (N, H, W, C): LN and the linears act on C
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class ConvNeXtV2(nn.Module):
    """ConvNeXt V2: ``(N, in_channels, H, W) → (N, num_classes)``, ``H, W`` multiples of
    ``8 · patch_size`` (the total downsampling).

    Args:
        depths: blocks per stage (4 stages).
        dims: widths per stage.
        in_channels, num_classes: input channels and output logits.
        patch_size: side and stride of the stem convolution (4 for ImageNet).
        drop_path_rate: stochastic-depth probability of the last block (linear from 0).
        name: used in error messages.
    """

    def __init__(self, depths: Sequence[int], dims: Sequence[int], *, in_channels: int = 3,
                 num_classes: int = 1000, patch_size: int = 4, drop_path_rate: float = 0.0,
                 name: str = "convnextv2") -> None:
        super().__init__()
        if len(depths) != 4 or len(dims) != 4 or min(depths) < 1 or min(dims) < 1:
            raise ConfigError(f"{name} expects 4 positive depths and 4 positive widths, "
                              f"got depths={list(depths)}, dims={list(dims)}")
        if patch_size < 1:
            raise ConfigError(f"{name} expects a positive patch_size, got {patch_size}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ConfigError(f"{name} expects drop_path_rate in [0, 1), got {drop_path_rate}")
        self.name = name
        self.in_channels = in_channels
        self.stride = 8 * patch_size
        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size),
                                  LayerNorm2d(dims[0]))
        self.downsample = nn.ModuleList(
            nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
            for i in range(3))
        rates = iter(linear_drop_rates(drop_path_rate, sum(depths)))
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim, next(rates)) for _ in range(depth)))
            for depth, dim in zip(depths, dims, strict=True))
        self.norm = nn.LayerNorm(dims[-1], eps=LN_EPS)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → logits ``(N, num_classes)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"{self.name} expects images of shape (N, {self.in_channels}, H, W), "
                              f"got {tuple(x.shape)}")
        if x.shape[-2] % self.stride or x.shape[-1] % self.stride:
            raise ConfigError(f"{self.name} expects H and W multiples of {self.stride}, "
                              f"got {x.shape[-2]}×{x.shape[-1]}")
        x = self.stages[0](self.stem(x))
        for down, stage in zip(self.downsample, self.stages[1:], strict=True):
            x = stage(down(x))
        return self.head(self.norm(x.mean((-2, -1))))


def _init_weights(m: nn.Module) -> None:
    # Truncated normal (std 0.02) weights and zero biases for convolutions and linears, as the
    # ConvNeXt reference code.
    if isinstance(m, nn.Conv2d | nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def check_image_size(name: str, image_size: int, stride: int) -> None:
    """Raise ConfigError unless ``image_size`` is a positive multiple of ``stride``."""
    if image_size < stride or image_size % stride:
        raise ConfigError(f"{name} needs an image size that is a multiple of {stride} "
                          f"(its total downsampling), got {image_size}")


def _convnextv2(name: str, depths: Sequence[int], dims: Sequence[int], in_channels: int,
                num_classes: int, image_size: int, drop_path_rate: float,
                patch_size: int = 4) -> ConvNeXtV2:
    check_image_size(name, image_size, 8 * patch_size)
    return ConvNeXtV2(depths, dims, in_channels=in_channels, num_classes=num_classes,
                      patch_size=patch_size, drop_path_rate=drop_path_rate, name=name)


SOURCE = "Woo et al. 2023, Table 1 ({}); exact: facebookresearch/ConvNeXt-V2 layout"


@register_model("convnextv2_atto", family="convnext", image_size=224,
                description="ConvNeXt V2-Atto ([2, 2, 6, 2], widths 40-320)",
                params=3_708_400, source=SOURCE.format("3.7M"))
def convnextv2_atto(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    drop_path_rate: float = 0.0) -> ConvNeXtV2:
    """ConvNeXt V2-Atto."""
    return _convnextv2("convnextv2_atto", (2, 2, 6, 2), (40, 80, 160, 320), in_channels,
                       num_classes, image_size, drop_path_rate)


@register_model("convnextv2_femto", family="convnext", image_size=224,
                description="ConvNeXt V2-Femto ([2, 2, 6, 2], widths 48-384)",
                params=5_233_240, source=SOURCE.format("5.2M"))
def convnextv2_femto(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                     drop_path_rate: float = 0.0) -> ConvNeXtV2:
    """ConvNeXt V2-Femto."""
    return _convnextv2("convnextv2_femto", (2, 2, 6, 2), (48, 96, 192, 384), in_channels,
                       num_classes, image_size, drop_path_rate)


@register_model("convnextv2_pico", family="convnext", image_size=224,
                description="ConvNeXt V2-Pico ([2, 2, 6, 2], widths 64-512)",
                params=9_066_280, source=SOURCE.format("9.1M"))
def convnextv2_pico(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    drop_path_rate: float = 0.0) -> ConvNeXtV2:
    """ConvNeXt V2-Pico."""
    return _convnextv2("convnextv2_pico", (2, 2, 6, 2), (64, 128, 256, 512), in_channels,
                       num_classes, image_size, drop_path_rate)


@register_model("convnextv2_nano", family="convnext", image_size=224,
                description="ConvNeXt V2-Nano ([2, 2, 8, 2], widths 80-640)",
                params=15_623_800, source=SOURCE.format("15.6M"))
def convnextv2_nano(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    drop_path_rate: float = 0.0) -> ConvNeXtV2:
    """ConvNeXt V2-Nano."""
    return _convnextv2("convnextv2_nano", (2, 2, 8, 2), (80, 160, 320, 640), in_channels,
                       num_classes, image_size, drop_path_rate)


@register_model("convnextv2_tiny", family="convnext", image_size=224,
                description="ConvNeXt V2-Tiny ([3, 3, 9, 3], widths 96-768)",
                params=28_635_496, source=SOURCE.format("28.6M"))
def convnextv2_tiny(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    drop_path_rate: float = 0.0) -> ConvNeXtV2:
    """ConvNeXt V2-Tiny."""
    return _convnextv2("convnextv2_tiny", (3, 3, 9, 3), (96, 192, 384, 768), in_channels,
                       num_classes, image_size, drop_path_rate)


@register_model("convnext_cifar", family="convnext", image_size=32,
                description="ConvNeXt V2 for 32×32 images (2×2 stem, [2, 2, 6, 2], widths 32-256)")
def convnext_cifar(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                   drop_path_rate: float = 0.1, patch_size: int = 2) -> ConvNeXtV2:
    """ConvNeXt V2 sized for CIFAR: ``image_size`` a multiple of ``8 · patch_size``."""
    return _convnextv2("convnext_cifar", (2, 2, 6, 2), (32, 64, 128, 256), in_channels,
                       num_classes, image_size, drop_path_rate, patch_size)
