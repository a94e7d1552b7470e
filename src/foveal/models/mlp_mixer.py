"""MLP-Mixer: an all-MLP network that mixes across patches, then across channels.

For an ``(N, C, S, S)`` image, patch side ``P`` (``S`` divisible by ``P``), ``T = (S/P)²`` patch
tokens of width ``D``::

    X  = patches · W_stem                                   conv P×P, stride P: (T, D)
    U  = X + W₂ σ(W₁ LN(X)ᵀ)ᵀ                              token mixing, MLP over T (width D_S)
    Y  = U + W₄ σ(W₃ LN(U))                                 channel mixing, MLP over D (width D_C)
    y  = head(mean_tokens(LN(Y_last)))                      global average pool, linear head

with ``σ`` the GELU and biases on every linear layer (eq. 1). The token-mixing MLP is shared by
all channels and the channel-mixing MLP by all tokens; there is no position embedding, since the
token-mixing weights are position-specific.

Configurations (Tolstikhin et al. 2021, Table 1)::

    name        D    blocks  D_S   D_C    params (1000 classes, 224², P = 16)
    mixer_s16   512  8       256   2048   18,528,264
    mixer_b16   768  12      384   3072   59,880,472

The layout (LayerNorm ε = 1e-6, no stem norm) is timm's ``mixer_s16_224`` / ``mixer_b16_224``,
whose parameter counts the table gives.

Reference: I. Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021,
§2, eq. 1, Table 1.
"""

from __future__ import annotations

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model
from foveal.models.stochastic_depth import DropPath, linear_drop_rates
from foveal.models.vit import FeedForward, check_image_input, init_transformer_weights

__all__ = ["MLPMixer", "MixerBlock", "mixer_b16", "mixer_cifar", "mixer_s16"]


class MixerBlock(nn.Module):
    """``U = X + MLP_tokens(LN(X)ᵀ)ᵀ``, ``Y = U + MLP_channels(LN(U))`` on ``(N, T, D)``,
    each branch under stochastic depth with probability ``drop_path``."""

    def __init__(self, num_tokens: int, dim: int, tokens_hidden: int, channels_hidden: int, *,
                 dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.token_mlp = FeedForward(num_tokens, tokens_hidden, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.channel_mlp = FeedForward(dim, channels_hidden, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, T, D)`` → ``(N, T, D)``."""
        x = x + self.drop_path(self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.channel_mlp(self.norm2(x)))


class MLPMixer(nn.Module):
    """MLP-Mixer classifier (see the module docstring).

    Args:
        image_size: side ``S`` of the square input; the token MLPs are sized for it.
        patch_size: ``P``; must divide ``S``.
        in_channels, num_classes: input channels and output logits.
        embed_dim: ``D``.
        depth: number of Mixer blocks.
        tokens_hidden: ``D_S``, hidden width of the token-mixing MLPs.
        channels_hidden: ``D_C``, hidden width of the channel-mixing MLPs.
        dropout: dropout inside the MLPs.
        drop_path: stochastic-depth probability of the last block, linear from 0 at the first.
    """

    def __init__(self, *, image_size: int, patch_size: int, in_channels: int, num_classes: int,
                 embed_dim: int, depth: int, tokens_hidden: int, channels_hidden: int,
                 dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if patch_size < 1 or image_size < patch_size or image_size % patch_size != 0:
            raise ConfigError(f"mlp_mixer expects an image size divisible by the patch size "
                              f"{patch_size}, got {image_size}")
        self.image_size = image_size
        self.in_channels = in_channels
        num_tokens = (image_size // patch_size) ** 2
        self.stem = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.blocks = nn.Sequential(*(
            MixerBlock(num_tokens, embed_dim, tokens_hidden, channels_hidden, dropout=dropout,
                       drop_path=p)
            for p in linear_drop_rates(drop_path, depth)))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_transformer_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, S, S)`` → logits ``(N, num_classes)``."""
        check_image_input("mlp_mixer", x, self.in_channels, self.image_size)
        z = self.stem(x).flatten(2).transpose(1, 2)  # (N, T, D)
        return self.head(self.norm(self.blocks(z)).mean(dim=1))


_SOURCE = "Tolstikhin et al. 2021, Table 1"


@register_model("mixer_s16", family="mlp_mixer", image_size=224,
                description="Mixer-S/16 (D 512, 8 blocks, D_S 256, D_C 2048)", params=18_528_264,
                source=f"{_SOURCE}; timm mixer_s16_224")
def mixer_s16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              dropout: float = 0.0, drop_path: float = 0.0) -> MLPMixer:
    """Mixer-S/16."""
    return MLPMixer(image_size=image_size, patch_size=16, in_channels=in_channels,
                    num_classes=num_classes, embed_dim=512, depth=8, tokens_hidden=256,
                    channels_hidden=2048, dropout=dropout, drop_path=drop_path)


@register_model("mixer_b16", family="mlp_mixer", image_size=224,
                description="Mixer-B/16 (D 768, 12 blocks, D_S 384, D_C 3072)", params=59_880_472,
                source=f"{_SOURCE}; timm mixer_b16_224")
def mixer_b16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              dropout: float = 0.0, drop_path: float = 0.0) -> MLPMixer:
    """Mixer-B/16."""
    return MLPMixer(image_size=image_size, patch_size=16, in_channels=in_channels,
                    num_classes=num_classes, embed_dim=768, depth=12, tokens_hidden=384,
                    channels_hidden=3072, dropout=dropout, drop_path=drop_path)


@register_model("mixer_cifar", family="mlp_mixer", image_size=32,
                description="small Mixer for 32×32 images (4×4 patches, D 128, 8 blocks)")
def mixer_cifar(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                patch_size: int = 4, embed_dim: int = 128, depth: int = 8,
                tokens_hidden: int = 64, channels_hidden: int = 512, dropout: float = 0.0,
                drop_path: float = 0.1) -> MLPMixer:
    """A Mixer sized for CIFAR: 64 patch tokens of 4×4 pixels at 32×32 (MLP ratios ½ and 4)."""
    return MLPMixer(image_size=image_size, patch_size=patch_size, in_channels=in_channels,
                    num_classes=num_classes, embed_dim=embed_dim, depth=depth,
                    tokens_hidden=tokens_hidden, channels_hidden=channels_hidden,
                    dropout=dropout, drop_path=drop_path)
