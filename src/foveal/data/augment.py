"""Augmentations applied to a whole batch at once, on whatever device the batch lives on.

All functions take ``x`` of shape ``(N, C, H, W)`` (float, already normalised) and a
:class:`torch.Generator` that makes the draw reproducible. Each image gets its own random
parameters; nothing loops over images in Python.

- :func:`random_crop`: pad by ``p`` on every side, then take an ``H×W`` window at a uniformly
  random offset ``(dy, dx) ∈ {0..2p}²``. Translates each image by up to ``p`` pixels.
- :func:`random_flip`: mirror left-right with probability 1/2.
- :func:`cutout`: zero an ``s×s`` square centred at a uniformly random pixel (clipped at the
  border). With normalised inputs, zero is the dataset mean. DeVries & Taylor, 2017.
- :func:`alternating_flip`: airbench's flip schedule. Each image's flip is drawn once
  (:func:`first_epoch_flip_mask`); on odd epochs every image is mirrored relative to that, so each
  image is seen both ways in every two consecutive epochs (Jordan, 2024, "94% on CIFAR-10 in 3.29
  seconds on a single GPU", section 3.6).
- :func:`color_jitter`: torchvision's ``ColorJitter`` formulas, batched, on ``[0, 1]`` RGB images
  (or normalised ones, given ``mean`` and ``std``).
- :func:`mixup` and :func:`cutmix`: mixed images and soft targets. Train on them with
  ``F.cross_entropy(logits, soft_targets)``, which accepts class probabilities as targets.
- :func:`rand_augment`: RandAugment (Cubuk et al., 2020) on ``[0, 1]`` RGB images.

The functions below :class:`Augment` that change colours (:func:`color_jitter`,
:func:`rand_augment`) work in ``[0, 1]`` pixel units, where clamping and the grey of a
greyscale image mean something; everything else is indifferent to the value range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from foveal.errors import ConfigError, DataError


@dataclass(frozen=True)
class Augment:
    """Which batch augmentations a loader applies.

    On ``[0, 1]`` pixels, before normalisation (:meth:`photometric`): colour jitter, then
    RandAugment. On the normalised batch (:meth:`__call__`): crop, flip, cutout. The loader
    applies the alternating flip itself (it needs each image's dataset index and the epoch).

    Attributes:
        crop_padding: ``p`` for :func:`random_crop`; 0 disables it.
        flip: apply :func:`random_flip`. Wrong for digits and text: a mirrored 2 is no 2.
        cutout: side ``s`` for :func:`cutout`; 0 disables it.
        padding_mode: ``"reflect"`` or ``"constant"`` (zeros) for the crop padding.
        alternating_flip: :func:`alternating_flip` (airbench) instead of random flips.
        color_jitter: ``(brightness, contrast, saturation, hue)`` of :func:`color_jitter`.
        rand_augment_ops, rand_augment_magnitude: ``N`` and ``M`` of :func:`rand_augment`
            (``N = 0`` disables it).
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    padding_mode: str = "reflect"
    alternating_flip: bool = False
    color_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    rand_augment_ops: int = 0
    rand_augment_magnitude: int = 9

    @property
    def has_photometric(self) -> bool:
        """True when :meth:`photometric` changes images (it needs RGB)."""
        return any(self.color_jitter) or self.rand_augment_ops > 0

    def photometric(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Colour jitter, then RandAugment, on RGB ``[0, 1]`` images ``(N, 3, H, W)``."""
        if any(self.color_jitter):
            x = color_jitter(x, generator, *self.color_jitter)
        if self.rand_augment_ops:
            x = rand_augment(x, generator, self.rand_augment_ops, self.rand_augment_magnitude)
        return x

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator, self.padding_mode)
        if self.flip:
            x = random_flip(x, generator)
        if self.cutout:
            x = cutout(x, self.cutout, generator)
        return x


def _draw(n: int, high: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Draw on the generator's (CPU) device, then move: keeps draws identical across devices.
    return torch.randint(0, high, (n,), generator=generator).to(device)


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator, padding_mode: str = "reflect"
) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` by ``padding`` and crop each image at its own random offset."""
    n, c, h, w = x.shape
    p = padding
    if padding_mode == "reflect" and (p >= h or p >= w):
        padding_mode = "replicate"  # reflect needs p < side; replicate has no such limit
    padded = F.pad(x, (p, p, p, p), mode=padding_mode)
    dy = _draw(n, 2 * p + 1, generator, x.device)
    dx = _draw(n, 2 * p + 1, generator, x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # N,1,H,1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # N,1,1,W
    # Gather rows then columns: two cheap gathers instead of one 4-D fancy index.
    out = padded.gather(2, rows.expand(n, c, h, w + 2 * p))
    return out.gather(3, cols.expand(n, c, h, w))


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of ``(N, C, H, W)`` left-right with probability 1/2."""
    mask = _draw(x.shape[0], 2, generator, x.device).bool()[:, None, None, None]
    return torch.where(mask, x.flip(-1), x)


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size×size`` square around a random centre in each image of ``(N, C, H, W)``."""
    n, _, h, w = x.shape
    cy = _draw(n, h, generator, x.device)[:, None]
    cx = _draw(n, w, generator, x.device)[:, None]
    top, left = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_rows = (ys >= top) & (ys < top + size)  # N,H
    in_cols = (xs >= left) & (xs < left + size)  # N,W
    hole = in_rows[:, None, :, None] & in_cols[:, None, None, :]
    return x.masked_fill(hole, 0.0)


def first_epoch_flip_mask(n: int, generator: torch.Generator) -> torch.Tensor:
    """The ``(n,)`` bool mask of images mirrored at epoch 0 of :func:`alternating_flip`.

    Draw it once for the whole dataset (each entry is ``True`` with probability 1/2) and keep it:
    index it with a batch's dataset indices to get the batch's mask.
    """
    return torch.rand(n, generator=generator) < 0.5


def alternating_flip(x: torch.Tensor, epoch: int, flip_mask: torch.Tensor) -> torch.Tensor:
    """airbench's alternating flip of ``(N, C, H, W)`` images at ``epoch`` (0-based).

    Image ``i`` is mirrored left-right iff ``flip_mask[i] XOR (epoch is odd)``: a random half at
    epoch 0, the other half at epoch 1, and so on, so that over any two consecutive epochs each
    image is seen once as is and once mirrored. ``flip_mask`` is the ``(N,)`` bool mask of the
    images in ``x``, sliced from one :func:`first_epoch_flip_mask` drawn for the whole dataset;
    a fresh mask per epoch would give plain :func:`random_flip`.
    """
    if flip_mask.shape != (x.shape[0],):
        raise DataError(
            f"expected flip_mask of shape ({x.shape[0]},), got {tuple(flip_mask.shape)}"
        )
    mask = (flip_mask.to(x.device).bool() ^ bool(epoch % 2))[:, None, None, None]
    return torch.where(mask, x.flip(-1), x)


# ITU-R 601-2 luma, the weights of torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _check_rgb(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"{what}: expected RGB images of shape (N, 3, H, W), got {tuple(x.shape)}")


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` of ``(N, 3, H, W)`` as ``(N, 1, H, W)``."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    return (x * w[:, None, None]).sum(1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(f·x + (1 − f)·other, 0, 1)`` with one factor ``f`` per image, ``factor`` (N,)."""
    f = factor.to(x)[:, None, None, None]
    return (f * x + (1 - f) * other).clamp(0, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend ``[0, 1]`` images with black: ``clamp(f·x, 0, 1)``; ``factor`` is ``(N,)``."""
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend RGB ``[0, 1]`` images with their mean grey: ``clamp(f·x + (1 − f)·μ, 0, 1)``.

    ``μ`` is the mean over the image of its luma (:data:`_LUMA`), one scalar per image.
    """
    return _blend(x, _grey(x).mean((-3, -2, -1), keepdim=True), factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend RGB ``[0, 1]`` images with their greyscale: ``clamp(f·x + (1 − f)·grey(x), 0, 1)``."""
    return _blend(x, _grey(x), factor)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB ``[0, 1]`` images by ``shift`` (N,) turns, ``|shift| <= 0.5``.

    RGB → HSV, ``h ← (h + shift) mod 1``, HSV → RGB, as torchvision's ``adjust_hue``.
    """
    r, g, b = x.unbind(1)
    v, _ = x.max(1)
    c = v - x.min(1).values  # chroma
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    rc, gc, bc = (v - r) / safe_c, (v - g) / safe_c, (v - b) / safe_c
    h = torch.where(v == r, bc - gc, torch.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(c > 0, h / 6.0, torch.zeros_like(h))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = (h + shift.to(x)[:, None, None]) % 1.0
    # HSV → RGB: channel k takes v − v·s·clamp(min(n, 4 − n), 0, 1), n = (k + 6h) mod 6.
    k = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device)[None, :, None, None]
    n = (k + 6.0 * h[:, None]) % 6.0
    ramp = torch.minimum(n, 4.0 - n).clamp(0, 1)
    return v[:, None] - v[:, None] * s[:, None] * ramp


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def color_jitter(
    x: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """torchvision's ``ColorJitter`` on a batch of RGB images ``(N, 3, H, W)``, one draw per image.

    Each image draws factors ``b, c, s ~ U[max(0, 1 − β), 1 + β]`` for the strengths
    ``β = brightness, contrast, saturation`` and a hue shift ``U[−hue, hue]`` (turns), then, in
    this fixed order (torchvision shuffles the order per call):

    - brightness ``clamp(b·x, 0, 1)`` (blend with black),
    - contrast ``clamp(c·x + (1 − c)·μ, 0, 1)`` (blend with the mean luma ``μ`` of the image),
    - saturation ``clamp(s·x + (1 − s)·grey(x), 0, 1)`` (blend with its greyscale),
    - hue: rotate the HSV hue by the shift.

    A zero strength skips its step and its draw. ``x`` is in ``[0, 1]``; pass the loader's ``mean``
    and ``std`` (per channel, ``[0, 1]`` units) for normalised ``x``: it is mapped to ``[0, 1]``,
    jittered and normalised again.
    """
    for name, value in (("brightness", brightness), ("contrast", contrast),
                        ("saturation", saturation)):
        if value < 0:
            raise ConfigError(f"color_jitter: expected {name} >= 0, got {value}")
    if not 0 <= hue <= 0.5:
        raise ConfigError(f"color_jitter: expected 0 <= hue <= 0.5, got {hue}")
    _check_rgb(x, "color_jitter")
    n = x.shape[0]
    if (mean is None) != (std is None):
        raise ConfigError("color_jitter: expected both mean and std or neither, got one")
    if mean is not None:
        m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
        s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
        x = x * s + m
    if brightness:
        x = adjust_brightness(x, _uniform(n, max(0.0, 1 - brightness), 1 + brightness, generator))
    if contrast:
        x = adjust_contrast(x, _uniform(n, max(0.0, 1 - contrast), 1 + contrast, generator))
    if saturation:
        x = adjust_saturation(x, _uniform(n, max(0.0, 1 - saturation), 1 + saturation, generator))
    if hue:
        x = adjust_hue(x, _uniform(n, -hue, hue, generator))
    if mean is not None:
        x = (x - m) / s
    return x


def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator; seed NumPy's from ours to stay reproducible.
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def _check_mix(x: torch.Tensor, y: torch.Tensor, alpha: float, num_classes: int, what: str) -> None:
    if alpha <= 0:
        raise ConfigError(f"{what}: expected alpha > 0, got {alpha}")
    if x.ndim != 4 or y.shape != (x.shape[0],):
        raise DataError(
            f"{what}: expected x (N, C, H, W) and labels (N,), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(f"{what}: expected labels in [0, {num_classes}), got {y.min()}..{y.max()}")


def _soft_targets(y: torch.Tensor, weight: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(1 − w)·onehot(y) + w·onehot(partner's y)``, ``weight`` (N,) the partner's share."""
    one_hot = F.one_hot(y, num_classes).float()
    w = weight.to(one_hot)[:, None]
    return (1 - w) * one_hot + w * one_hot.roll(1, 0)


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """mixup (Zhang et al., 2018): ``x̃ = λ·x_i + (1 − λ)·x_j``, ``ỹ = λ·y_i + (1 − λ)·y_j``.

    One ``λ ~ Beta(α, α)`` per batch; image ``i``'s partner is ``j = i − 1 (mod N)``
    (``x.roll(1, 0)``): the loader has shuffled the batch already, so a fixed pairing is a random
    one, and for ``N >= 2`` no image is mixed with itself. Returns the mixed ``(N, C, H, W)``
    images and ``(N, num_classes)`` soft targets whose rows sum to 1; train with
    ``F.cross_entropy(logits, targets)``, which equals ``λ·CE(y_i) + (1 − λ)·CE(y_j)``.
    """
    _check_mix(x, y, alpha, num_classes, "mixup")
    lam = _beta(alpha, generator)
    mixed = lam * x + (1 - lam) * x.roll(1, 0)
    return mixed, _soft_targets(y, torch.full((x.shape[0],), 1 - lam), num_classes)


def cutmix_boxes(
    n: int, h: int, w: int, lam: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image cut boxes of CutMix as ``(top, bottom, left, right)``, each ``(n,)`` int64.

    The box is ``⌊H·√(1 − λ)⌋ × ⌊W·√(1 − λ)⌋``, centred at a uniform random pixel per image and
    clipped at the border, so its area can be smaller than ``(1 − λ)·H·W``; rows ``top:bottom``,
    columns ``left:right``.
    """
    r = math.sqrt(1 - lam)
    bh, bw = int(h * r), int(w * r)
    cy = torch.randint(0, h, (n,), generator=generator)
    cx = torch.randint(0, w, (n,), generator=generator)
    top, bottom = (cy - bh // 2).clamp(0, h), (cy + bh - bh // 2).clamp(0, h)
    left, right = (cx - bw // 2).clamp(0, w), (cx + bw - bw // 2).clamp(0, w)
    return top, bottom, left, right


def cutmix(
    x: torch.Tensor, y: torch.Tensor, alpha: float, generator: torch.Generator, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al., 2019): paste a box of the partner image ``j = i − 1 (mod N)`` into ``i``.

    ``λ ~ Beta(α, α)`` once per batch sets the box size (:func:`cutmix_boxes`); each image gets
    its own box position. The label weight is the pasted share of the *clipped* box,
    ``w_i = area_i / (H·W)``: ``ỹ_i = (1 − w_i)·y_i + w_i·y_j``. Returns the mixed images and
    ``(N, num_classes)`` soft targets; train with ``F.cross_entropy(logits, targets)``.
    """
    _check_mix(x, y, alpha, num_classes, "cutmix")
    n, _, h, w = x.shape
    top, bottom, left, right = cutmix_boxes(n, h, w, _beta(alpha, generator), generator)
    ys, xs = torch.arange(h)[None, :], torch.arange(w)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < bottom[:, None])  # N,H
    in_cols = (xs >= left[:, None]) & (xs < right[:, None])  # N,W
    box = (in_rows[:, None, :, None] & in_cols[:, None, None, :]).to(x.device)
    mixed = torch.where(box, x.roll(1, 0), x)
    area = ((bottom - top) * (right - left)).double() / (h * w)
    return mixed, _soft_targets(y, area, num_classes)


def affine_warp(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample ``(N, C, H, W)`` at ``matrix @ (u, v, 1)`` for every output pixel ``(u, v)``.

    ``matrix`` is ``(N, 2, 3)`` and maps output pixel coordinates (``u`` = column, ``v`` = row,
    pixel centres at integers, origin at the top-left pixel) to input coordinates; nearest
    neighbour, zeros outside the image (torchvision's defaults for RandAugment).
    """
    n, _, h, w = x.shape
    v, u = torch.meshgrid(
        torch.arange(h, dtype=x.dtype, device=x.device),
        torch.arange(w, dtype=x.dtype, device=x.device),
        indexing="ij",
    )
    pts = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)  # HW,3
    src = pts @ matrix.to(x).transpose(1, 2)  # N,HW,2
    # Pixel coordinates → grid_sample's [-1, 1] with align_corners=False.
    grid = (2 * src + 1) / torch.tensor([w, h], dtype=x.dtype, device=x.device) - 1
    return F.grid_sample(
        x, grid.view(n, h, w, 2), mode="nearest", padding_mode="zeros", align_corners=False
    )


def _shear_x(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 1] = 1.0, -s, 1.0
    return affine_warp(x, m)


def _shear_y(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 1, 0], m[:, 1, 1] = 1.0, -s, 1.0
    return affine_warp(x, m)


def _translate(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2] = 1.0, 1.0, -tx, -ty
    return affine_warp(x, m)


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate ``(N, C, H, W)`` counter-clockwise (as displayed) about the image centre.

    ``degrees`` is ``(N,)``; 90° on a square image equals ``torch.rot90(x, 1, (-2, -1))``.
    Source of output pixel ``p``: ``c + [[cos θ, −sin θ], [sin θ, cos θ]] (p − c)`` in
    ``(column, row)`` coordinates, ``c = ((W − 1)/2, (H − 1)/2)``.
    """
    _, _, h, w = x.shape
    t = torch.deg2rad(degrees.double())
    cos, sin = torch.cos(t), torch.sin(t)
    cu, cv = (w - 1) / 2, (h - 1) / 2
    m = torch.stack([
        torch.stack([cos, -sin, cu - cos * cu + sin * cv], -1),
        torch.stack([sin, cos, cv - sin * cu - cos * cv], -1),
    ], 1)
    return affine_warp(x, m)


def adjust_sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend ``[0, 1]`` images with a smoothed copy: ``clamp(f·x + (1 − f)·blur(x), 0, 1)``.

    ``blur`` is the 3×3 kernel ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` on interior pixels and
    the identity on the one-pixel border (PIL's ``ImageEnhance.Sharpness``, as torchvision).
    """
    c = x.shape[1]
    k = torch.ones(3, 3, dtype=x.dtype, device=x.device)
    k[1, 1] = 5.0
    k = (k / 13).expand(c, 1, 3, 3)
    blurred = x.clone()
    blurred[..., 1:-1, 1:-1] = F.conv2d(x, k, groups=c)
    return _blend(x, blurred, factor)


def posterize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the top ``bits`` bits of each ``[0, 1]`` value's 8-bit level ``round(255·x)``."""
    level = (x * 255).round().clamp(0, 255).to(torch.uint8)
    return (level & (0xFF << (8 - bits)) & 0xFF).to(x.dtype) / 255


def solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert ``[0, 1]`` values at or above ``threshold``: ``x ≥ t ? 1 − x : x``."""
    return torch.where(x >= threshold, 1 - x, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each image linearly so its min maps to 0 and its max to 1.

    Constant channels are left as they are.
    """
    lo = x.amin((-2, -1), keepdim=True)
    hi = x.amax((-2, -1), keepdim=True)
    flat = hi <= lo
    lo = torch.where(flat, torch.zeros_like(lo), lo)
    span = torch.where(flat, torch.ones_like(hi), hi - lo)
    return ((x - lo) / span).clamp(0, 1)


#: RandAugment's operations as implemented here, in the order their index is drawn. Equalize
#: (histogram equalisation) is omitted: it needs a per-image, per-channel histogram and lookup.
RAND_AUGMENT_OPS = (
    "identity", "autocontrast", "rotate", "solarize", "color", "posterize", "contrast",
    "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y",
)


def _rand_augment_op(
    x: torch.Tensor, op: str, magnitude: int, sign: torch.Tensor
) -> torch.Tensor:
    """Apply ``op`` at ``magnitude`` (0..30) to ``x``; ``sign`` (N,) ±1 for signed ops."""
    m = magnitude / 30  # torchvision: linspace(0, max, 31)[magnitude]
    _, _, h, w = x.shape
    if op == "identity":
        return x
    if op == "autocontrast":
        return autocontrast(x)
    if op == "rotate":
        return rotate(x, sign * 30.0 * m)
    if op == "solarize":
        return solarize(x, 1.0 - m)  # threshold linspace(255, 0, 31) in 8-bit levels
    if op == "posterize":
        return posterize(x, 8 - round(magnitude / 7.5))  # torchvision: 8 − round(i / ((31−1)/4))
    if op in ("color", "contrast", "brightness", "sharpness"):
        adjust = {"color": adjust_saturation, "contrast": adjust_contrast,
                  "brightness": adjust_brightness, "sharpness": adjust_sharpness}[op]
        return adjust(x, 1.0 + sign * 0.9 * m)
    if op == "shear_x":
        return _shear_x(x, sign * 0.3 * m)
    if op == "shear_y":
        return _shear_y(x, sign * 0.3 * m)
    zero = torch.zeros_like(sign)
    if op == "translate_x":
        return _translate(x, sign * (150 / 331) * w * m, zero)
    return _translate(x, zero, sign * (150 / 331) * h * m)  # translate_y


def rand_augment(
    x: torch.Tensor, generator: torch.Generator, num_ops: int = 2, magnitude: int = 9
) -> torch.Tensor:
    """RandAugment (Cubuk et al., 2020) on RGB ``[0, 1]`` images ``(N, 3, H, W)``.

    ``num_ops`` times, each image draws one of :data:`RAND_AUGMENT_OPS` uniformly and a sign
    (±, for the signed ops), and every op runs once on the images that drew it. The strengths
    follow torchvision's ``RandAugment`` at ``magnitude`` ``M`` of 30 (``m = M/30``): rotate
    ``±30°·m``; shear ``±0.3·m`` (about the top-left pixel, as torchvision); translate
    ``±(150/331)·side·m`` pixels; colour, contrast, brightness and sharpness factors
    ``1 ± 0.9·m``; solarize threshold ``1 − m``; posterize to ``8 − round(M/7.5)`` bits.
    Geometric ops sample nearest and fill with 0. For normalised batches map to ``[0, 1]`` first
    (``x·std + mean``).
    """
    if num_ops < 0:
        raise ConfigError(f"rand_augment: expected num_ops >= 0, got {num_ops}")
    if not 0 <= magnitude <= 30:
        raise ConfigError(f"rand_augment: expected magnitude in [0, 30], got {magnitude}")
    _check_rgb(x, "rand_augment")
    n = x.shape[0]
    for _ in range(num_ops):
        choice = torch.randint(0, len(RAND_AUGMENT_OPS), (n,), generator=generator)
        sign = torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1
        out = x.clone()
        for k, op in enumerate(RAND_AUGMENT_OPS):
            pick = (choice == k).nonzero().flatten()
            if len(pick):
                on_device = pick.to(x.device)
                out[on_device] = _rand_augment_op(x[on_device], op, magnitude, sign[pick])
        x = out
    return x
