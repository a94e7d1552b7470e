"""Squeeze-and-excitation: channel attention from globally pooled features.

For a feature map ``x`` of shape ``(N, C, H, W)``:

    s = σ(W₂ δ(W₁ GAP(x)))        y = s ⊙ x

with ``GAP`` global average pooling, ``W₁ : C → C_s`` and ``W₂ : C_s → C`` (1×1 convolutions
with bias), ``δ`` the inner activation (ReLU in SENet, SiLU in EfficientNet) and ``σ`` the gate
(sigmoid). SENet uses ``C_s = C / 16``; EfficientNet's MBConv uses a quarter of the block's input
channels.

Reference: J. Hu, L. Shen, G. Sun, "Squeeze-and-Excitation Networks", CVPR 2018, §3 and Fig. 3.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(nn.Module):
    """``y = σ(W₂ δ(W₁ GAP(x))) ⊙ x`` for ``x`` of shape ``(N, C, H, W)``.

    Args:
        channels: ``C``.
        squeeze_channels: ``C_s``, the bottleneck width.
        activation: the inner activation class ``δ`` (default ReLU).
        gate: the gate class ``σ`` (default Sigmoid).
    """

    def __init__(self, channels: int, squeeze_channels: int,
                 activation: type[nn.Module] = nn.ReLU,
                 gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.activation = activation()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.activation(self.fc1(s))))
