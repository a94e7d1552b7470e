"""A multilayer perceptron on flattened images.

``x ∈ R^{C·H·W} → [Linear → ReLU → Dropout(p)] × len(hidden) → Linear → logits``, where ``p`` is
the probability of dropping a unit (PyTorch's convention). With ``drop_connect = q > 0`` the
hidden Linear layers drop *weights* with probability ``q`` instead
(:class:`foveal.training.regularization.DropConnect`, Wan et al. 2013).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from foveal.models.registry import register_model


class MLP(nn.Module):
    """Fully connected classifier.

    Args:
        in_features: ``C·H·W`` of the input images.
        num_classes: output logits.
        hidden: widths of the hidden layers.
        dropout: probability of dropping a hidden unit during training.
        drop_connect: probability of dropping a weight of the hidden layers (0: plain Linear).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int = 10,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.1,
        drop_connect: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            if drop_connect:
                from foveal.training.regularization import DropConnect

                linear: nn.Module = DropConnect(width, h, p=drop_connect)
            else:
                linear = nn.Linear(width, h)
            layers += [linear, nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)`` or flat ``(N, C·H·W)`` → logits ``(N, num_classes)``."""
        return self.net(x)


@register_model("mlp", family="mlp", image_size=32,
                description="multilayer perceptron on flattened pixels")
def mlp(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
        hidden: Sequence[int] = (512, 256), dropout: float = 0.1,
        drop_connect: float = 0.0) -> MLP:
    """:class:`MLP` over ``in_channels · image_size²`` inputs."""
    return MLP(in_channels * image_size * image_size, num_classes, hidden=hidden, dropout=dropout,
               drop_connect=drop_connect)
