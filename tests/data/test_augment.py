"""Batch augmentations against naive per-image reference loops."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from foveal.data.augment import Augment, cutout, random_crop, random_flip


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_random_crop_equals_pad_then_slice_per_image(mode):
    x = torch.randn(16, 3, 9, 7)
    p = 3
    out = random_crop(x, p, gen(1), mode)
    # Replay the same draws: dy for all images, then dx.
    g = gen(1)
    dy = torch.randint(0, 2 * p + 1, (16,), generator=g)
    dx = torch.randint(0, 2 * p + 1, (16,), generator=g)
    padded = F.pad(x, (p, p, p, p), mode=mode)
    for i in range(16):
        expected = padded[i, :, dy[i] : dy[i] + 9, dx[i] : dx[i] + 7]
        torch.testing.assert_close(out[i], expected)


def test_random_crop_covers_every_offset():
    x = torch.arange(25.0).view(1, 1, 5, 5).repeat(2000, 1, 1, 1)
    out = random_crop(x, 1, gen(2), "constant")
    assert len({tuple(o.flatten().tolist()) for o in out}) == 9  # (2p+1)² distinct windows


def test_random_flip_mirrors_about_half_and_exactly():
    x = torch.randn(4000, 1, 2, 3)
    out = random_flip(x, gen(3))
    flipped = (out != x).flatten(1).any(1)
    torch.testing.assert_close(out[flipped], x[flipped].flip(-1))
    assert 0.45 < flipped.float().mean() < 0.55


def test_cutout_zeroes_a_clipped_square_around_the_drawn_centre():
    x = torch.ones(64, 2, 8, 8)
    out = cutout(x, 4, gen(4))
    g = gen(4)
    cy = torch.randint(0, 8, (64,), generator=g)
    cx = torch.randint(0, 8, (64,), generator=g)
    for i in range(64):
        expected = np.ones((8, 8), np.float32)
        y0, x0 = int(cy[i]) - 2, int(cx[i]) - 2
        expected[max(y0, 0) : max(y0 + 4, 0), max(x0, 0) : max(x0 + 4, 0)] = 0
        for c in range(2):
            np.testing.assert_array_equal(out[i, c].numpy(), expected)


def test_augment_is_reproducible_and_default_is_identity():
    x = torch.randn(8, 3, 6, 6)
    aug = Augment(crop_padding=2, flip=True, cutout=3)
    torch.testing.assert_close(aug(x, gen(5)), aug(x, gen(5)))
    torch.testing.assert_close(Augment()(x, gen(5)), x)
