"""GoogLeNet (Inception v1): inception modules with 1×1 reductions and two auxiliary classifiers.

An inception module runs four branches on the same input and concatenates them along channels::

    #1×1                         conv 1×1
    #3×3 reduce → #3×3           conv 1×1 → conv 3×3
    #5×5 reduce → #5×5           conv 1×1 → conv k×k   (k = 3 here by default, see below)
    pool proj                    max-pool 3×3/1 → conv 1×1

so its output has ``#1×1 + #3×3 + #5×5 + pool proj`` channels. Every convolution is
conv (no bias) → BN (ε = 10⁻³) → ReLU, as in torchvision's port of the TensorFlow weights (the
paper predates batch normalisation). The network (paper Table 1, sizes for a 224 px input)::

    conv 7×7/2 → 64 (112²)  max-pool 3/2   conv 1×1 → 64   conv 3×3 → 192 (56²)  max-pool 3/2
    3a 3b (28²)  max-pool 3/2   4a 4b 4c 4d 4e (14²)  max-pool 2/2   5a 5b (7²)
    global average pool → dropout 0.2 → FC 1024 → classes

with max-pools in ceil mode. Auxiliary classifiers read the outputs of 4a (512 channels) and 4d
(528): average pool to 4×4 → conv 1×1 → 128 → FC 2048 → 1024, ReLU → dropout 0.7 → FC → classes.
During training the paper adds their losses with weight 0.3:
``L = L_main + 0.3 (L_aux1 + L_aux2)`` (:func:`googlenet_loss`); at inference they are dropped.

The "5×5" branch: the paper uses 5×5 convolutions; torchvision uses 3×3 (pytorch/vision#906, kept
for its ported weights), and its published 6,624,904 parameters (1000 classes, no auxiliary
heads) are for that layout. ``kernel_5x5=3`` (the default) follows torchvision exactly;
``kernel_5x5=5`` gives the paper's layout (7,005,832 parameters).

Interface: ``forward(x)`` always returns the main logits ``(N, classes)``, so the model trains and
evaluates like every other classifier. With ``aux_logits=True`` the two auxiliary heads are built
and :meth:`GoogLeNet.forward_with_aux` returns :class:`GoogLeNetOutputs` ``(logits, aux1, aux2)``
for a training loop that uses them. ``aux_logits`` defaults to False, so ``create("googlenet")``
is the published 6,624,904-parameter network (the heads add 6,379,984 for 1000 classes).

Reference: C. Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, §5, Fig. 2(b), Fig. 3
and Table 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model

__all__ = ["INCEPTION_CONFIGS", "MIN_IMAGE_SIZE", "GoogLeNet", "GoogLeNetOutputs", "Inception",
           "InceptionAux", "conv_bn_relu", "googlenet", "googlenet_loss"]

# The smallest input side the five stride-2 stages (ceil-mode pools) accept (torchvision: 15).
MIN_IMAGE_SIZE = 15

# Table 1: in, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
INCEPTION_CONFIGS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> nn.Sequential:
    """Convolution (no bias: BN supplies it) → batch norm (ε = 10⁻³) → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3),
        nn.ReLU(inplace=True),
    )


class Inception(nn.Module):
    """One inception module: ``(N, in, H, W) → (N, #1×1 + #3×3 + #5×5 + pool proj, H, W)``.

    Args:
        in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj: a Table 1 row.
        kernel_5x5: kernel of the "5×5" branch (3 as torchvision, 5 as the paper).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, kernel_5x5: int = 3) -> None:
        super().__init__()
        self.branch1 = conv_bn_relu(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv_bn_relu(in_channels, ch3x3red, 1),
                                     conv_bn_relu(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(conv_bn_relu(in_channels, ch5x5red, 1),
                                     conv_bn_relu(ch5x5red, ch5x5, kernel_5x5,
                                                  padding=kernel_5x5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv_bn_relu(in_channels, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: ``(N, C, H, W)`` → 4×4 average pool → 1×1 conv → 128 → FC 1024 →
    dropout 0.7 → FC → logits ``(N, num_classes)``."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The paper's 5×5/3 average pool maps 14×14 to 4×4; the adaptive pool does so at any size.
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


class GoogLeNetOutputs(NamedTuple):
    """Main and auxiliary logits, each ``(N, num_classes)``; aux1 reads 4a, aux2 reads 4d."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), Table 1 of the paper.

    Args:
        in_channels: input channels (3 for RGB, 1 for grey).
        num_classes: output logits.
        aux_logits: build the two auxiliary classifiers (used by :meth:`forward_with_aux`).
        dropout: probability of dropping a pooled feature before the final FC layer.
        aux_dropout: the same inside the auxiliary classifiers.
        kernel_5x5: kernel of the "5×5" branch: 3 (torchvision) or 5 (the paper).

    ``forward`` maps ``(N, in_channels, H, W)`` with ``H, W ≥ 15`` to ``(N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, aux_logits: bool = False,
                 dropout: float = 0.2, aux_dropout: float = 0.7, kernel_5x5: int = 3) -> None:
        super().__init__()
        if kernel_5x5 not in (3, 5):
            raise ConfigError(f"expected kernel_5x5 of 3 (torchvision) or 5 (the paper), "
                              f"got {kernel_5x5}")

        def inception(name: str) -> Inception:
            return Inception(*INCEPTION_CONFIGS[name], kernel_5x5=kernel_5x5)

        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, 64, 7, stride=2, padding=3),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            conv_bn_relu(64, 64, 1),
            conv_bn_relu(64, 192, 3, padding=1),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.stage3 = nn.Sequential(inception("3a"), inception("3b"),
                                    nn.MaxPool2d(3, stride=2, ceil_mode=True))
        self.inception4a = inception("4a")
        self.stage4bcd = nn.Sequential(inception("4b"), inception("4c"), inception("4d"))
        self.stage4e5 = nn.Sequential(inception("4e"), nn.MaxPool2d(2, stride=2, ceil_mode=True),
                                      inception("5a"), inception("5b"))
        self.aux1 = InceptionAux(512, num_classes, aux_dropout) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, aux_dropout) if aux_logits else None
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's scheme: truncated normal (σ = 0.01, cut at ±2σ) for conv and FC weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-0.02, b=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` → main logits ``(N, num_classes)`` (no auxiliary heads)."""
        x = self.stage4bcd(self.inception4a(self.stage3(self.stem(x))))
        return self._head(self.stage4e5(x))

    def forward_with_aux(self, x: torch.Tensor) -> GoogLeNetOutputs:
        """``x``: ``(N, C, H, W)`` → main and auxiliary logits, each ``(N, num_classes)``."""
        if self.aux1 is None or self.aux2 is None:
            raise ConfigError("forward_with_aux needs a GoogLeNet built with aux_logits=True, "
                              "got one built with aux_logits=False")
        a = self.inception4a(self.stage3(self.stem(x)))
        d = self.stage4bcd(a)
        return GoogLeNetOutputs(self._head(self.stage4e5(d)), self.aux1(a), self.aux2(d))


def googlenet_loss(outputs: GoogLeNetOutputs, targets: torch.Tensor,
                   aux_weight: float = 0.3) -> torch.Tensor:
    """The paper's training loss ``CE(logits) + aux_weight · (CE(aux1) + CE(aux2))``.

    Args:
        outputs: :meth:`GoogLeNet.forward_with_aux` of a batch.
        targets: class indices ``(N,)``.
        aux_weight: the discount of the auxiliary losses (0.3 in §5).
    """
    main = F.cross_entropy(outputs.logits, targets)
    aux = F.cross_entropy(outputs.aux1, targets) + F.cross_entropy(outputs.aux2, targets)
    return main + aux_weight * aux


@register_model("googlenet", family="inception", image_size=224, params=6_624_904,
                description="GoogLeNet / Inception v1 (torchvision layout: 3×3 in the '5×5' "
                            "branch, BN, no aux heads by default)",
                source="torchvision GoogLeNet_Weights.IMAGENET1K_V1 num_params (aux_logits=False)")
def googlenet(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              aux_logits: bool = False, dropout: float = 0.2, aux_dropout: float = 0.7,
              kernel_5x5: int = 3) -> GoogLeNet:
    """:class:`GoogLeNet` for ``image_size ≥ 15``; ``forward`` returns the main logits only."""
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"googlenet needs images of at least {MIN_IMAGE_SIZE}×{MIN_IMAGE_SIZE} "
                          f"(five stride-2 stages), got {image_size}×{image_size}")
    return GoogLeNet(in_channels, num_classes, aux_logits=aux_logits, dropout=dropout,
                     aux_dropout=aux_dropout, kernel_5x5=kernel_5x5)
