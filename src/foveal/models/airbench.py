"""airbench94: the fast CIFAR-10 network of K. Jordan, with a data-derived patch-whitening stem.

Layout for ``(N, C, S, S)`` images and widths ``(w₁, w₂, w₃)`` (``(64, 256, 256)`` in the
paper; 1.97M parameters)::

    whiten   conv 2×2, no padding, C → 2·4C (= 24 for RGB), bias; GELU        32 → 31
    block i  conv 3×3 → wᵢ, max-pool 2, BN, GELU, conv 3×3 wᵢ → wᵢ, BN, GELU    31 → 15 → 7 → 3
    head     global max-pool → linear w₃ → classes (no bias) → × 1/9

Patch whitening. Let ``p ∈ R^{4C}`` be a 2×2 patch of the normalised training images
(laid out ``(C, 2, 2)`` as a conv kernel) and ``Σ = E[p pᵀ] = V Λ Vᵀ`` (the images are
normalised per channel, so ``E[p] ≈ 0`` and ``Σ`` is the patch covariance). The first ``4C``
filters are the rows of ``Λ_ε^{−1/2} Vᵀ`` with ``Λ_ε = Λ + ε I`` (ε = 5·10⁻⁴), so their outputs
``z = Λ_ε^{−1/2} Vᵀ p`` have ``E[z zᵀ] = Λ (Λ + ε I)⁻¹ ≈ I``; the other ``4C`` filters are
their negatives, so GELU keeps both signs of every whitened direction. :meth:`Airbench.data_init`
sets them from training images; the paper then freezes the filters (``requires_grad = False``)
and trains only the bias (for the first 3 epochs; here: throughout, see ``freeze_whitening``).

Other choices of the reference implementation, kept here:

- Identity ("dirac") initialisation of every 3×3 conv: the first ``min(C_in, C_out)`` filters
  pass their input channel through unchanged, the rest keep torch's default initialisation
  ("partial identity initialisation"), an implicit residual connection at the start.
- BatchNorm with ``γ`` fixed at 1 (not trained), ``β`` trained, ε = 10⁻¹², running statistics
  with momentum 0.4 (torch convention: ``r ← 0.6 r + 0.4 x̄``).
- The logits are scaled by 1/9, which keeps the initial outputs small (as ResNet-9's 1/8).

Spatial sizes: ``S − 1`` after the whitening conv, then three 2× max-pools (floor), so
``S ≥ 9``. The global max-pool equals the reference's ``MaxPool2d(3)`` on its 3×3 maps at 32×32.

Reference: K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv:2404.00498, 2024
(network, frozen patch-whitening and partial identity initialisation); code:
KellerJordan/cifar10-airbench, ``airbench94.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["Airbench", "AirbenchBlock", "airbench", "image_patches", "patch_whitening_weights"]

WHITEN_KERNEL = 2
WHITEN_EPS = 5e-4
# whitening conv (−1), then three 2× poolings that must each leave at least one pixel
MIN_SIZE = WHITEN_KERNEL - 1 + 8


def image_patches(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Every ``k×k`` patch (stride 1, no padding) of ``x``: ``(N, C, H, W) → (M, C·k·k)``.

    ``M = N (H − k + 1)(W − k + 1)``; each row is laid out ``(C, k, k)``, the order of a conv
    kernel's ``weight[o]``, so ``patches @ weight.view(O, −1).T`` is the convolution's output.
    """
    c, k = x.shape[1], kernel_size
    # (N, C, H', W', k, k) → (N, H', W', C, k, k)
    patches = x.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5)
    return patches.reshape(-1, c * k * k)


def patch_whitening_weights(x: torch.Tensor, kernel_size: int = WHITEN_KERNEL,
                            eps: float = WHITEN_EPS) -> torch.Tensor:
    """Conv filters that whiten the ``k×k`` patches of ``x``, and their negatives.

    Args:
        x: normalised images ``(N, C, H, W)`` with ``H, W ≥ k``.
        kernel_size: patch side ``k``.
        eps: ``ε`` added to the eigenvalues before the inverse square root.

    Returns ``(2·C·k², C, k, k)`` float32 weights: rows ``[Λ_ε^{−1/2} Vᵀ; −Λ_ε^{−1/2} Vᵀ]`` with
    ``Σ = E[p pᵀ] = V Λ Vᵀ`` over the patches ``p`` (eigenvalues in decreasing order).
    """
    if x.ndim != 4 or min(x.shape[-2:]) < kernel_size:
        raise ConfigError(f"patch whitening expects images (N, C, H, W) with H, W >= "
                          f"{kernel_size}, got {tuple(x.shape)}")
    c = x.shape[1]
    patches = image_patches(x.detach().double(), kernel_size)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]
    filters = filters.reshape(-1, c, kernel_size, kernel_size)
    return torch.cat([filters, -filters]).float()


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BN with ``γ`` fixed at 1 (not trained), ε = 1e-12, running-stat momentum 0.4."""
    bn = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn


def conv3x3(in_channels: int, out_channels: int, identity_init: bool) -> nn.Conv2d:
    """3×3 conv, padding 1, no bias; with ``identity_init`` the first ``min(C_in, C_out)``
    filters are Dirac deltas (filter ``i`` copies input channel ``i``)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
    if identity_init:
        with torch.no_grad():
            nn.init.dirac_(conv.weight[:min(in_channels, out_channels)])
    return conv


class AirbenchBlock(nn.Module):
    """``GELU(BN(conv(GELU(BN(maxpool₂(conv(x)))))))``:
    ``(N, C_in, H, W) → (N, C, ⌊H/2⌋, ⌊W/2⌋)``."""

    def __init__(self, in_channels: int, channels: int, identity_init: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, identity_init)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = batch_norm(channels)
        self.conv2 = conv3x3(channels, channels, identity_init)
        self.norm2 = batch_norm(channels)
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.norm1(self.pool(self.conv1(x))))
        return self.activation(self.norm2(self.conv2(x)))


class Airbench(nn.Module):
    """The airbench94 network: ``(N, C, H, W) → (N, num_classes)``, ``H, W ≥ 9``.

    Args:
        in_channels: ``C``; the whitening conv has ``2·4C`` filters.
        num_classes: output logits.
        widths: ``(w₁, w₂, w₃)`` of the three blocks.
        scale: the factor on the logits.
        identity_init: Dirac-initialise the 3×3 convolutions.
        freeze_whitening: keep the whitening filters fixed after :meth:`data_init` (the paper);
            False trains them like any other weight.
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10,
                 widths: Sequence[int] = (64, 256, 256), scale: float = 1 / 9,
                 identity_init: bool = True, freeze_whitening: bool = True) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) != 3 or min(widths) < 1:
            raise ConfigError(f"airbench expects 3 positive block widths, got {list(widths)}")
        self.in_channels = in_channels
        self.scale = scale
        whiten_width = 2 * in_channels * WHITEN_KERNEL**2
        self.whiten = nn.Conv2d(in_channels, whiten_width, WHITEN_KERNEL, bias=True)
        nn.init.zeros_(self.whiten.bias)
        self.whiten.weight.requires_grad_(not freeze_whitening)
        self.activation = nn.GELU()
        c_in = whiten_width
        blocks = []
        for width in widths:
            blocks.append(AirbenchBlock(c_in, width, identity_init))
            c_in = width
        self.block1, self.block2, self.block3 = blocks
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(c_in, num_classes, bias=False)

    @torch.no_grad()
    def data_init(self, x: torch.Tensor, eps: float = WHITEN_EPS) -> None:
        """Set the whitening filters from normalised training images ``x`` ``(N, C, H, W)``
        (airbench uses the first 5,000); see :func:`patch_whitening_weights`."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"airbench data_init expects images of shape "
                              f"(N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        weight = patch_whitening_weights(x.float(), WHITEN_KERNEL, eps)
        self.whiten.weight.copy_(weight.to(self.whiten.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``H, W ≥ 9`` → logits ``(N, num_classes)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"airbench expects images of shape (N, {self.in_channels}, H, W), "
                              f"got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ConfigError(f"airbench needs images of at least {MIN_SIZE}×{MIN_SIZE}, "
                              f"got {x.shape[-2]}×{x.shape[-1]}")
        x = self.activation(self.whiten(x))
        x = self.block3(self.block2(self.block1(x)))
        return self.head(torch.flatten(self.pool(x), 1)) * self.scale


@register_model("airbench", family="airbench", image_size=32,
                description="airbench94 (2×2 patch whitening, 3 conv blocks 64-256-256)",
                params=1_972_792, source="Jordan 2024, arXiv:2404.00498 (1.97M); exact for 10 "
                                         "classes, KellerJordan/cifar10-airbench airbench94.py")
def airbench(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
             widths: Sequence[int] = (64, 256, 256), identity_init: bool = True,
             freeze_whitening: bool = True) -> Airbench:
    """airbench94's network; ``widths`` narrows it for short CPU runs (e.g. ``[16, 64, 64]``).

    The whitening filters need :meth:`Airbench.data_init` (the trainer calls it on fresh runs).
    """
    if image_size < MIN_SIZE:
        raise ConfigError(f"airbench needs images of at least {MIN_SIZE}×{MIN_SIZE}, "
                          f"got image_size={image_size}")
    return Airbench(in_channels=in_channels, num_classes=num_classes, widths=widths,
                    identity_init=identity_init, freeze_whitening=freeze_whitening)


