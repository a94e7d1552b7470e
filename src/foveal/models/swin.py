"""Swin Transformer: self-attention inside local windows that shift between layers.

For an ``(N, C, S, S)`` image (feature maps are kept channels-last, ``(N, H, W, C)``)::

    patch partition   conv 4×4, stride 4, C → C₁ (= 96 for Swin-T), LayerNorm   → S/4 × S/4 × C₁
    stage i = 1…4     depthᵢ Swin blocks of width Cᵢ = 2^{i−1} C₁ with headsᵢ heads,
                      then (except after the last stage) patch merging → H/2 × W/2 × 2Cᵢ
    head              LayerNorm → global average pool → Linear Cᵢ → classes

A Swin block (eq. 3) alternates regular and shifted windows of ``M × M`` tokens (``M = 7``)::

    ẑ = z + (S)W-MSA(LN(z))          z' = ẑ + MLP(LN(ẑ))

Window attention adds a learned relative position bias ``B`` to each head's logits (eq. 4)::

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + B) V,   B[i, j] = B̂[Δy + M − 1, Δx + M − 1]

with ``B̂`` a ``(2M − 1)² × heads`` table indexed by the offset ``(Δy, Δx) ∈ [−M + 1, M − 1]²``
of token ``i`` from token ``j``. In the shifted layers the map is cyclically rolled by
``(−⌊M/2⌋, −⌊M/2⌋)`` before partitioning, so one window may hold tokens that were far apart
(they wrapped around the border); an attention mask forbids every pair from different regions of
the roll, and the roll is undone after attention (§3.2, Fig. 4). Maps whose side is not a multiple
of ``M`` are zero-padded at the bottom and right, and a map no larger than one window is never
shifted (torchvision's convention).

Patch merging concatenates each 2×2 neighbourhood (``4C`` features), applies LayerNorm, and maps
``4C → 2C`` with a linear layer without bias.

Swin-T: ``C₁ = 96``, depths (2, 2, 6, 2), heads (3, 6, 12, 24), MLP ratio 4, 28,288,354
parameters with 1000 classes — the layout of torchvision's ``swin_t`` (LayerNorm ε = 1e-5 after
the patch embedding, in every block, before each merge and before the head).

Reference: Z. Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted
Windows", ICCV 2021, §3.1–3.2, eqs. 3–4, Table 7 (Swin-T 28M).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from foveal.errors import ConfigError
from foveal.models.registry import register_model
from foveal.models.stochastic_depth import DropPath, linear_drop_rates
from foveal.models.vit import (
    FeedForward,
    MultiHeadSelfAttention,
    check_image_input,
    init_transformer_weights,
)

__all__ = ["PatchMerging", "ShiftedWindowAttention", "SwinBlock", "SwinTransformer",
           "relative_position_index", "shifted_window_mask", "swin_t", "window_partition",
           "window_reverse"]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(N, H, W, C)`` → ``(N, H/M · W/M, M², C)``: non-overlapping ``M × M`` windows in raster
    order, tokens in raster order inside each. ``H`` and ``W`` must be multiples of ``M``."""
    n, h, w, c = x.shape
    x = x.reshape(n, h // window, window, w // window, window, c).transpose(2, 3)
    return x.reshape(n, (h // window) * (w // window), window * window, c)


def window_reverse(windows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(N, H/M · W/M, M², C)`` → ``(N, H, W, C)``."""
    n, _, mm, c = windows.shape
    m = round(mm ** 0.5)
    x = windows.reshape(n, height // m, width // m, m, m, c).transpose(2, 3)
    return x.reshape(n, height, width, c)


def relative_position_index(window: int) -> torch.Tensor:
    """``(M², M²)`` long: the row of the ``(2M − 1)²`` bias table for each pair of tokens,
    ``(yᵢ − yⱼ + M − 1)(2M − 1) + (xᵢ − xⱼ + M − 1)`` with tokens in raster order."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + window - 1
    dx = xs[:, None] - xs[None, :] + window - 1
    return dy * (2 * window - 1) + dx


def _shift_regions(length: int, window: int, shift: int,
                   device: torch.device | None = None) -> torch.Tensor:
    """Region label along one axis of a rolled map: 0 on ``[0, L − M)``, 1 on ``[L − M, L − s)``
    (the last window's tokens that did not wrap) and 2 on ``[L − s, L)`` (those that did)."""
    labels = torch.zeros(length, dtype=torch.long, device=device)
    labels[length - window:] = 1
    labels[length - shift:] = 2  # empty when s = 0
    return labels


def shifted_window_mask(height: int, width: int, window: int, shift: tuple[int, int],
                        device: torch.device | None = None) -> torch.Tensor:
    """Which pairs of tokens may attend in the windows of a map rolled by ``(−s_y, −s_x)``.

    Returns a bool ``(H/M · W/M, M², M²)`` tensor, True where tokens ``i`` and ``j`` of a window
    come from the same region of the roll, i.e. were neighbours (less than ``M`` apart along
    each axis) before it. ``H`` and ``W`` are multiples of ``M``.
    """
    rows = _shift_regions(height, window, shift[0], device)
    cols = _shift_regions(width, window, shift[1], device)
    region = (3 * rows[:, None] + cols[None, :]).view(1, height, width, 1)
    region = window_partition(region, window)[0, :, :, 0]  # (nW, M²)
    return region[:, :, None] == region[:, None, :]


class ShiftedWindowAttention(nn.Module):
    """(S)W-MSA: multi-head self-attention inside ``M × M`` windows with a relative position
    bias, after a cyclic shift of ``shift`` tokens when ``shift > 0``.

    Args:
        dim: channels ``C``.
        num_heads: heads (divides ``C``).
        window_size: ``M``.
        shift: ``s`` (``⌊M/2⌋`` in the shifted layers, 0 in the others).
        attention_dropout, dropout: as in :class:`~foveal.models.vit.MultiHeadSelfAttention`.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int,
                 attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0 <= shift < window_size:
            raise ConfigError(f"expected a window shift in [0, {window_size}), got {shift}")
        self.window_size = window_size
        self.shift = shift
        self.attn = MultiHeadSelfAttention(dim, num_heads, attention_dropout, dropout)
        m = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * m - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(m),
                             persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        """``B``: ``(heads, M², M²)``."""
        mm = self.window_size ** 2
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        return bias.view(mm, mm, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, H, W, C)`` → ``(N, H, W, C)``."""
        h, w = x.shape[1], x.shape[2]
        m = self.window_size
        x = F.pad(x, (0, 0, 0, (m - w % m) % m, 0, (m - h % m) % m))
        hp, wp = x.shape[1], x.shape[2]
        shift = (self.shift if hp > m else 0, self.shift if wp > m else 0)
        if any(shift):
            x = torch.roll(x, (-shift[0], -shift[1]), dims=(1, 2))
        bias = self.relative_position_bias()  # (h, M², M²)
        if any(shift):
            allowed = shifted_window_mask(hp, wp, m, shift, x.device)
            mask = torch.zeros(allowed.shape, dtype=bias.dtype, device=x.device)
            bias = bias + mask.masked_fill(~allowed, float("-inf"))[:, None]  # (nW, h, M², M²)
        y = window_reverse(self.attn(window_partition(x, m), bias), hp, wp)
        if any(shift):
            y = torch.roll(y, shift, dims=(1, 2))
        return y[:, :h, :w]


class SwinBlock(nn.Module):
    """``ẑ = z + (S)W-MSA(LN(z))``, ``z' = ẑ + MLP(LN(ẑ))`` on ``(N, H, W, C)`` maps (eq. 3),
    each branch under stochastic depth with probability ``drop_path``."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, *,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, attention_dropout: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shift,
                                           attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, H, W, C)`` → ``(N, H, W, C)``."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """``(N, H, W, C)`` → ``(N, ⌈H/2⌉, ⌈W/2⌉, 2C)``: concatenate each 2×2 neighbourhood in the
    order (0,0), (1,0), (0,1), (1,1) (row, column), LayerNorm(4C), Linear 4C → 2C without bias.
    Odd sides are zero-padded at the bottom/right."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)  # declared after the reduction, as in torchvision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    """Swin Transformer classifier (see the module docstring).

    Accepts any input whose sides are multiples of ``patch_size``; ``image_size`` is the size it
    is built for and is checked at build time.

    Args:
        image_size: side of the square input the model is built for; a multiple of
            ``patch_size`` and at least ``patch_size · 2^(stages − 1)``.
        in_channels, num_classes: input channels and output logits.
        patch_size: side of the patches of the patch partition (4).
        embed_dim: ``C₁``.
        depths: blocks per stage.
        num_heads: heads per stage.
        window_size: ``M``.
        mlp_ratio: MLP hidden width over block width.
        dropout, attention_dropout: as in ViT.
        drop_path: stochastic-depth probability of the last block, linear from 0 over all blocks.
    """

    def __init__(self, *, image_size: int, in_channels: int, num_classes: int,
                 patch_size: int = 4, embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 7, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 attention_dropout: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        if len(depths) != len(num_heads) or not depths:
            raise ConfigError(f"swin expects as many head counts as stages, got depths "
                              f"{tuple(depths)} and heads {tuple(num_heads)}")
        smallest = patch_size * 2 ** (len(depths) - 1)
        if image_size % patch_size != 0 or image_size < smallest:
            raise ConfigError(f"swin expects an image size that is a multiple of the patch size "
                              f"{patch_size} and at least {smallest}, got {image_size}")
        if window_size < 1:
            raise ConfigError(f"swin expects a window size of at least 1, got {window_size}")
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.patch_norm = nn.LayerNorm(embed_dim)
        rates = iter(linear_drop_rates(drop_path, sum(depths)))
        stages: list[nn.Module] = []
        for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            dim = embed_dim * 2 ** i
            stages.append(nn.Sequential(*(
                SwinBlock(dim, heads, window_size, 0 if j % 2 == 0 else window_size // 2,
                          mlp_ratio=mlp_ratio, dropout=dropout,
                          attention_dropout=attention_dropout, drop_path=next(rates))
                for j in range(depth))))
            if i < len(depths) - 1:
                stages.append(PatchMerging(dim))
        self.stages = nn.Sequential(*stages)
        num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(num_features)
        self.head = nn.Linear(num_features, num_classes)
        self.apply(init_transformer_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``H`` and ``W`` multiples of the patch size → logits
        ``(N, num_classes)``."""
        check_image_input("swin", x, self.in_channels, None, self.patch_size)
        z = self.patch_norm(self.patch_embed(x).permute(0, 2, 3, 1))  # (N, H/4, W/4, C₁)
        z = self.norm(self.stages(z))
        return self.head(z.mean(dim=(1, 2)))


@register_model("swin_t", family="swin", image_size=224,
                description="Swin-T (C 96, depths 2-2-6-2, heads 3-6-12-24, window 7)",
                params=28_288_354, source="Liu et al. 2021, Table 7; torchvision swin_t")
def swin_t(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
           window_size: int = 7, dropout: float = 0.0, attention_dropout: float = 0.0,
           drop_path: float = 0.2) -> SwinTransformer:
    """Swin-T; ``drop_path`` 0.2 is the paper's ImageNet-1K setting for Swin-T."""
    return SwinTransformer(image_size=image_size, in_channels=in_channels,
                           num_classes=num_classes, patch_size=4, embed_dim=96,
                           depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=window_size,
                           dropout=dropout, attention_dropout=attention_dropout,
                           drop_path=drop_path)
