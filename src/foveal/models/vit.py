"""Vision Transformer (ViT): an image as a sequence of patches through a standard Transformer.

For an ``(N, C, S, S)`` image and patch side ``P`` (``S`` divisible by ``P``, ``L = (S/P)²``)::

    z₀ = [x_class; x¹E; …; xᴸE] + E_pos          E: conv P×P, stride P (C → D); E_pos ∈ R^{(L+1)×D}
    z'ₗ = zₗ₋₁ + MSA(LN(zₗ₋₁))                   l = 1 … depth   (pre-norm, eq. 2)
    zₗ  = z'ₗ + MLP(LN(z'ₗ))                     MLP: Linear D → D_mlp, GELU, Linear D_mlp → D
    y   = head(LN(z⁰_depth))                      the class token of the last layer (eq. 4)

Multi-head self-attention with ``h`` heads of width ``d = D / h`` computes, per head,
``softmax(Q Kᵀ / √d) V`` — the scale is the *head* width, not the model width ``D`` — then
concatenates the heads and projects back with ``W_O`` (Vaswani et al. 2017, §3.2.2).

Configurations (Dosovitskiy et al. 2021, Table 1; Ti and S from Touvron et al. 2021, DeiT)::

    name        D    depth  heads  D_mlp   params (1000 classes, 224², P = 16)
    vit_ti_16   192  12     3      768      5,717,416
    vit_s_16    384  12     6      1536    22,050,664
    vit_b_16    768  12     12     3072    86,567,656

The layout (biases on Q/K/V and every linear layer, LayerNorm ε = 1e-6) is torchvision's
``vit_b_16`` and timm's ``vit_{tiny,small,base}_patch16_224``, whose parameter counts the table
gives. :class:`MultiHeadSelfAttention` and :class:`FeedForward` are shared with Swin and MLP-Mixer.

References: A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", ICLR 2021, §3.1, eqs. 1–4, Table 1; A. Vaswani et al., "Attention Is All
You Need", NeurIPS 2017, §3.2; H. Touvron et al., "Training data-efficient image transformers &
distillation through attention", ICML 2021, Table 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from foveal.errors import ConfigError
from foveal.models.registry import register_model
from foveal.models.stochastic_depth import DropPath, linear_drop_rates

__all__ = ["EncoderBlock", "FeedForward", "MultiHeadSelfAttention", "VisionTransformer",
           "check_image_input", "init_transformer_weights", "vit_b_16", "vit_cifar", "vit_s_16",
           "vit_ti_16"]


def check_image_input(model: str, x: torch.Tensor, channels: int, size: int | None,
                      multiple: int = 1) -> None:
    """Raise :class:`ConfigError` unless ``x`` is ``(N, channels, H, W)`` with ``H = W = size``
    (any ``H, W`` divisible by ``multiple`` when ``size`` is None)."""
    if size is None:
        want = f"(N, {channels}, H, W) with H, W divisible by {multiple}"
        ok = x.ndim == 4 and x.shape[1] == channels and all(s % multiple == 0
                                                             for s in x.shape[2:])
    else:
        want = f"(N, {channels}, {size}, {size})"
        ok = x.ndim == 4 and tuple(x.shape[1:]) == (channels, size, size)
    if not ok:
        raise ConfigError(f"{model} expects images of shape {want}, got {tuple(x.shape)}")


def init_transformer_weights(module: nn.Module) -> None:
    """Truncated-normal (σ = 0.02) weights and zero biases for linear and patch-embedding layers,
    the usual ViT/Swin/Mixer initialisation; LayerNorms keep (1, 0). Apply with ``model.apply``."""
    if isinstance(module, nn.Linear | nn.Conv2d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MultiHeadSelfAttention(nn.Module):
    """``MSA(x) = concat(head₁, …, head_h) W_O`` with
    ``headᵢ = softmax(Qᵢ Kᵢᵀ / √d + B) Vᵢ``, ``[Q, K, V] = x W_QKV``, ``d = dim / num_heads``.

    Computed by :func:`torch.nn.functional.scaled_dot_product_attention`, whose default scale is
    ``1/√d`` with ``d`` the last dimension of ``Q`` — the per-head width.

    Args:
        dim: model width ``D``.
        num_heads: ``h``; must divide ``dim``.
        attention_dropout: probability of dropping an attention weight (training only).
        dropout: probability of dropping an output unit after ``W_O`` (training only).
    """

    def __init__(self, dim: int, num_heads: int, attention_dropout: float = 0.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads != 0:
            raise ConfigError(f"expected a head count that divides the width {dim}, "
                              f"got {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(..., L, D)`` → ``(..., L, D)``. ``bias``: additive attention logits
        broadcastable to ``(..., h, L, L)`` (relative positions, ``-inf`` to forbid a pair)."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # (..., L, 3, h, d)
        q, k, v = qkv.movedim(-3, 0).transpose(-2, -3).unbind(0)  # each (..., h, L, d)
        p = self.attention_dropout if self.training else 0.0
        if bias is not None and bias.is_floating_point():
            bias = bias.to(q.dtype)  # under autocast q may be half precision
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return self.drop(self.proj(out.transpose(-2, -3).flatten(-2)))


class FeedForward(nn.Sequential):
    """``Linear(dim → hidden) → GELU → Dropout → Linear(hidden → dim) → Dropout``, the
    Transformer MLP applied to each token (ViT eq. 3; Swin; Mixer's token and channel MLPs)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer layer: ``z' = z + MSA(LN(z))``, ``z'' = z' + MLP(LN(z'))``, each
    branch under stochastic depth with probability ``drop_path``."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, dropout: float = 0.0,
                 attention_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadSelfAttention(dim, num_heads, attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = FeedForward(dim, mlp_dim, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, L, D)`` → ``(N, L, D)``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT classifier on the class token (see the module docstring for the equations).

    Args:
        image_size: side ``S`` of the square input; the position embedding is fixed to it.
        patch_size: ``P``; must divide ``S``.
        in_channels: ``C``.
        num_classes: output logits.
        embed_dim: ``D``.
        depth: number of encoder blocks.
        num_heads: ``h`` (divides ``D``).
        mlp_dim: hidden width of the MLPs.
        dropout: dropout after the embedding, in the MLPs and after ``W_O``.
        attention_dropout: dropout on the attention weights.
        drop_path: stochastic-depth probability of the last block, linear from 0 at the first.
    """

    def __init__(self, *, image_size: int, patch_size: int, in_channels: int, num_classes: int,
                 embed_dim: int, depth: int, num_heads: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if patch_size < 1 or image_size < patch_size or image_size % patch_size != 0:
            raise ConfigError(f"vit expects an image size divisible by the patch size "
                              f"{patch_size}, got {image_size}")
        self.image_size = image_size
        self.in_channels = in_channels
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*(
            EncoderBlock(embed_dim, num_heads, mlp_dim, dropout=dropout,
                         attention_dropout=attention_dropout, drop_path=p)
            for p in linear_drop_rates(drop_path, depth)))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, S, S)`` → logits ``(N, num_classes)``."""
        check_image_input("vit", x, self.in_channels, self.image_size)
        z = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, L, D), patches in raster order
        z = torch.cat([self.class_token.expand(z.shape[0], -1, -1), z], dim=1)
        z = self.blocks(self.pos_drop(z + self.pos_embed))
        return self.head(self.norm(z[:, 0]))


_SOURCE = "Dosovitskiy et al. 2021, Table 1"


@register_model("vit_ti_16", family="vit", image_size=224,
                description="ViT-Ti/16 (D 192, 12 layers, 3 heads)", params=5_717_416,
                source="Touvron et al. 2021 (DeiT-Ti), Table 1; timm vit_tiny_patch16_224")
def vit_ti_16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              dropout: float = 0.0, attention_dropout: float = 0.0,
              drop_path: float = 0.0) -> VisionTransformer:
    """ViT-Ti/16."""
    return VisionTransformer(image_size=image_size, patch_size=16, in_channels=in_channels,
                             num_classes=num_classes, embed_dim=192, depth=12, num_heads=3,
                             mlp_dim=768, dropout=dropout, attention_dropout=attention_dropout,
                             drop_path=drop_path)


@register_model("vit_s_16", family="vit", image_size=224,
                description="ViT-S/16 (D 384, 12 layers, 6 heads)", params=22_050_664,
                source="Touvron et al. 2021 (DeiT-S), Table 1; timm vit_small_patch16_224")
def vit_s_16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.0, attention_dropout: float = 0.0,
             drop_path: float = 0.0) -> VisionTransformer:
    """ViT-S/16."""
    return VisionTransformer(image_size=image_size, patch_size=16, in_channels=in_channels,
                             num_classes=num_classes, embed_dim=384, depth=12, num_heads=6,
                             mlp_dim=1536, dropout=dropout, attention_dropout=attention_dropout,
                             drop_path=drop_path)


@register_model("vit_b_16", family="vit", image_size=224,
                description="ViT-B/16 (D 768, 12 layers, 12 heads)", params=86_567_656,
                source=f"{_SOURCE}; torchvision vit_b_16")
def vit_b_16(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             dropout: float = 0.0, attention_dropout: float = 0.0,
             drop_path: float = 0.0) -> VisionTransformer:
    """ViT-B/16."""
    return VisionTransformer(image_size=image_size, patch_size=16, in_channels=in_channels,
                             num_classes=num_classes, embed_dim=768, depth=12, num_heads=12,
                             mlp_dim=3072, dropout=dropout, attention_dropout=attention_dropout,
                             drop_path=drop_path)


@register_model("vit_cifar", family="vit", image_size=32,
                description="small ViT for 32×32 images (4×4 patches, D 192, 6 layers, 3 heads)")
def vit_cifar(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
              patch_size: int = 4, embed_dim: int = 192, depth: int = 6, num_heads: int = 3,
              mlp_dim: int = 384, dropout: float = 0.0, attention_dropout: float = 0.0,
              drop_path: float = 0.1) -> VisionTransformer:
    """A ViT sized for CIFAR: 64 patch tokens of 4×4 pixels at 32×32."""
    return VisionTransformer(image_size=image_size, patch_size=patch_size,
                             in_channels=in_channels, num_classes=num_classes,
                             embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                             mlp_dim=mlp_dim, dropout=dropout,
                             attention_dropout=attention_dropout, drop_path=drop_path)
