"""Augmentations applied to a whole batch at once, on whatever device the batch lives on.

All functions take ``x`` of shape ``(N, C, H, W)`` (float, already normalised) and a
:class:`torch.Generator` that makes the draw reproducible. Each image gets its own random
parameters; nothing loops over images in Python.

- :func:`random_crop`: pad by ``p`` on every side, then take an ``H×W`` window at a uniformly
  random offset ``(dy, dx) ∈ {0..2p}²``. Translates each image by up to ``p`` pixels.
- :func:`random_flip`: mirror left-right with probability 1/2.
- :func:`cutout`: zero an ``s×s`` square centred at a uniformly random pixel (clipped at the
  border). With normalised inputs, zero is the dataset mean. DeVries & Taylor, 2017.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Augment:
    """Which batch augmentations a loader applies, in this order: crop, flip, cutout.

    Attributes:
        crop_padding: ``p`` for :func:`random_crop`; 0 disables it.
        flip: apply :func:`random_flip`. Wrong for digits and text: a mirrored 2 is no 2.
        cutout: side ``s`` for :func:`cutout`; 0 disables it.
        padding_mode: ``"reflect"`` or ``"constant"`` (zeros) for the crop padding.
    """

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    padding_mode: str = "reflect"

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
