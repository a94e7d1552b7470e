"""Batch augmentations against naive per-image reference loops and closed forms.

Oracles: per-image Python loops replaying the same generator draws; the closed forms of
torchvision's ColorJitter blends; colorsys for the hue rotation; torch.rot90 and integer shifts
for the affine ops; a brute-force loop of airbench94's alternating-flip rule; the moments of
Beta(α, α) for mixup's λ; counted pixels for CutMix's label weight; torchvision itself where it
can be imported.
"""

import colorsys
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from foveal.data import augment as A
from foveal.data.augment import (
    Augment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    alternating_flip,
    autocontrast,
    color_jitter,
    cutmix,
    cutmix_boxes,
    cutout,
    first_epoch_flip_mask,
    mixup,
    posterize,
    rand_augment,
    random_crop,
    random_flip,
    rotate,
    solarize,
)
from foveal.errors import ConfigError, DataError


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


# --- alternating flip -------------------------------------------------------------------------


def test_alternating_flip_matches_airbench_rule_over_epochs():
    x = torch.randn(50, 2, 3, 4)
    mask = first_epoch_flip_mask(50, gen(6))
    # airbench94: pre-flip once at epoch 0 with the drawn mask, then flip everything on odd epochs.
    pre_flipped = torch.stack([x[i].flip(-1) if mask[i] else x[i] for i in range(50)])
    for epoch in range(6):
        expected = pre_flipped.flip(-1) if epoch % 2 == 1 else pre_flipped
        torch.testing.assert_close(alternating_flip(x, epoch, mask), expected)


def test_alternating_flip_shows_every_image_both_ways_in_two_epochs():
    x = torch.randn(40, 1, 2, 5)
    mask = first_epoch_flip_mask(40, gen(7))
    for epoch in range(4):
        a, b = alternating_flip(x, epoch, mask), alternating_flip(x, epoch + 1, mask)
        torch.testing.assert_close(a.flip(-1), b)
    assert 0 < int(mask.sum()) < 40


def test_alternating_flip_batch_slice_equals_dataset_slice():
    x = torch.randn(30, 1, 2, 3)
    mask = first_epoch_flip_mask(30, gen(8))
    idx = torch.randperm(30, generator=gen(9))[:10]
    batch = alternating_flip(x[idx], 3, mask[idx])
    torch.testing.assert_close(batch, alternating_flip(x, 3, mask)[idx])


def test_alternating_flip_rejects_a_mask_of_the_wrong_length():
    with pytest.raises(DataError, match="flip_mask"):
        alternating_flip(torch.zeros(4, 1, 2, 2), 0, torch.zeros(3, dtype=torch.bool))


# --- colour ----------------------------------------------------------------------------------


def luma(img):
    return 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]


def factors(g, n, strength):
    low = max(0.0, 1 - strength)
    return low + (1 + strength - low) * torch.rand(n, generator=g, dtype=torch.float64)


def test_color_jitter_matches_colorjitter_closed_forms_per_image():
    x = torch.rand(6, 3, 4, 5, dtype=torch.float64)
    out = color_jitter(x, gen(10), brightness=0.4, contrast=0.5, saturation=0.6)
    g = gen(10)
    fb, fc, fs = factors(g, 6, 0.4), factors(g, 6, 0.5), factors(g, 6, 0.6)
    for i in range(6):
        img = (fb[i] * x[i]).clamp(0, 1)
        img = (fc[i] * img + (1 - fc[i]) * luma(img).mean()).clamp(0, 1)
        img = (fs[i] * img + (1 - fs[i]) * luma(img)).clamp(0, 1)
        torch.testing.assert_close(out[i], img)


def test_adjust_hue_matches_colorsys_rotation():
    x = torch.rand(3, 3, 2, 3, dtype=torch.float64)
    shift = torch.tensor([0.1, -0.3, 0.5], dtype=torch.float64)
    out = adjust_hue(x, shift)
    for i in range(3):
        for r in range(2):
            for c in range(3):
                h, s, v = colorsys.rgb_to_hsv(*x[i, :, r, c].tolist())
                expected = colorsys.hsv_to_rgb((h + float(shift[i])) % 1.0, s, v)
                np.testing.assert_allclose(out[i, :, r, c].numpy(), expected, atol=1e-12)


def test_adjust_hue_keeps_greys_and_zero_shift_is_identity():
    grey = torch.full((1, 3, 2, 2), 0.4, dtype=torch.float64)
    torch.testing.assert_close(adjust_hue(grey, torch.tensor([0.25])), grey)
    x = torch.rand(2, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(adjust_hue(x, torch.zeros(2)), x)


def test_color_jitter_on_normalised_input_equals_unnormalise_jitter_renormalise():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    raw = torch.rand(5, 3, 4, 4)
    kw = dict(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)
    out = color_jitter((raw - m) / s, gen(11), mean=mean, std=std, **kw)
    torch.testing.assert_close(out, (color_jitter(raw, gen(11), **kw) - m) / s)


def test_color_jitter_is_reproducible_and_identity_at_zero_strength():
    x = torch.rand(4, 3, 5, 5)
    kw = dict(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)
    torch.testing.assert_close(color_jitter(x, gen(12), **kw), color_jitter(x, gen(12), **kw))
    torch.testing.assert_close(color_jitter(x, gen(12)), x)


@pytest.mark.parametrize("kw", [dict(brightness=-0.1), dict(hue=0.6), dict(mean=(0.5,) * 3)])
def test_color_jitter_rejects_bad_settings(kw):
    with pytest.raises(ConfigError):
        color_jitter(torch.rand(1, 3, 2, 2), gen(), **kw)


def test_color_jitter_rejects_non_rgb_input():
    with pytest.raises(DataError, match="RGB"):
        color_jitter(torch.rand(1, 1, 2, 2), gen(), brightness=0.1)


def test_colour_adjustments_match_torchvision():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    x = torch.rand(2, 3, 6, 7)
    for ours, theirs, f in [
        (adjust_brightness, tvf.adjust_brightness, 1.3),
        (adjust_contrast, tvf.adjust_contrast, 0.6),
        (adjust_saturation, tvf.adjust_saturation, 1.7),
        (adjust_sharpness, tvf.adjust_sharpness, 1.8),
        (adjust_hue, tvf.adjust_hue, 0.2),
    ]:
        out = ours(x, torch.full((2,), f))
        torch.testing.assert_close(out, theirs(x, f), atol=1e-5, rtol=0)


# --- mixup and CutMix --------------------------------------------------------------------------


def test_mixup_mixes_images_and_labels_with_the_same_lambda():
    x = torch.randn(5, 2, 3, 3)
    y = torch.tensor([0, 1, 2, 3, 4])
    mixed, t = mixup(x, y, 0.4, gen(13), num_classes=5)
    lam = float(t[0, 0])
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.roll(1, 0))
    expected = lam * F.one_hot(y, 5).double() + (1 - lam) * F.one_hot(y.roll(1), 5).double()
    torch.testing.assert_close(t.double(), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(t.sum(1), torch.ones(5))


def test_mixup_lambda_has_beta_moments():
    alpha = 0.4
    y = torch.tensor([0, 1])
    lams = np.array([float(mixup(torch.zeros(2, 1, 1, 1), y, alpha, gen(s), 2)[1][0, 0])
                     for s in range(3000)])
    # Beta(α, α): mean 1/2, variance 1 / (4(2α + 1)).
    assert abs(lams.mean() - 0.5) < 0.02
    assert abs(lams.var() - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_soft_target_cross_entropy_is_the_lambda_mix_of_hard_losses():
    logits = torch.randn(5, 5)
    y = torch.arange(5)
    _, t = mixup(torch.zeros(5, 1, 1, 1), y, 1.0, gen(14), num_classes=5)
    lam = float(t[0, 0])
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y.roll(1))
    torch.testing.assert_close(F.cross_entropy(logits, t), expected)


def constant_images(n, h, w):
    return torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 1, h, w).clone()


def drawn_lambda(seed, alpha):
    # Replays the Beta draw: a NumPy seed taken from the generator, then Beta(α, α).
    g = gen(seed)
    return float(np.random.default_rng(int(torch.randint(0, 2**62, (), generator=g)))
                 .beta(alpha, alpha)), g


def test_cutmix_label_weight_uses_clipped_box_area():
    n, h, w = 64, 8, 10
    x, y = constant_images(n, h, w), torch.arange(n)
    clipped = 0
    for seed in range(20):
        mixed, t = cutmix(x, y, 1.0, gen(seed), num_classes=n)
        pasted = (mixed != x).flatten(1).double().mean(1)  # share of pixels from the partner
        weight = t[torch.arange(n), y.roll(1)].double()
        torch.testing.assert_close(weight, pasted, atol=1e-6, rtol=0)
        torch.testing.assert_close(t.sum(1), torch.ones(n))
        r = math.sqrt(1 - drawn_lambda(seed, 1.0)[0])
        clipped += int((pasted < int(h * r) * int(w * r) / (h * w) - 1e-9).sum())
    assert clipped > 0  # the pitfall was exercised: some boxes lost area at the border


def test_cutmix_pastes_the_partner_inside_the_drawn_box():
    x, y = torch.randn(6, 2, 7, 7), torch.arange(6)
    mixed, _ = cutmix(x, y, 0.5, gen(15), num_classes=6)
    lam, g = drawn_lambda(15, 0.5)
    top, bottom, left, right = cutmix_boxes(6, 7, 7, lam, g)
    partner = x.roll(1, 0)
    for i in range(6):
        expected = x[i].clone()
        expected[:, top[i] : bottom[i], left[i] : right[i]] = partner[i, :, top[i] : bottom[i],
                                                                      left[i] : right[i]]
        torch.testing.assert_close(mixed[i], expected)


def test_mixup_and_cutmix_are_reproducible():
    x, y = torch.randn(8, 3, 5, 5), torch.randint(0, 3, (8,), generator=gen(16))
    for fn in (mixup, cutmix):
        a, b = fn(x, y, 0.3, gen(17), 3), fn(x, y, 0.3, gen(17), 3)
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("fn", [mixup, cutmix])
def test_mix_rejects_bad_alpha_and_labels(fn):
    x = torch.zeros(2, 1, 2, 2)
    with pytest.raises(ConfigError, match="alpha"):
        fn(x, torch.tensor([0, 1]), 0.0, gen(), 2)
    with pytest.raises(DataError, match="labels"):
        fn(x, torch.tensor([0, 2]), 1.0, gen(), 2)


# --- RandAugment ops -------------------------------------------------------------------------


def test_rotate_90_degrees_equals_rot90():
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(rotate(x, torch.full((2,), 90.0)), torch.rot90(x, 1, (-2, -1)))
    torch.testing.assert_close(rotate(x, torch.zeros(2)), x)


def test_translate_by_whole_pixels_shifts_and_fills_zero():
    x = torch.randn(1, 1, 4, 5)
    out = A._translate(x, torch.tensor([2.0]), torch.tensor([-1.0]))
    expected = torch.zeros_like(x)
    expected[..., 0:3, 2:5] = x[..., 1:4, 0:3]
    torch.testing.assert_close(out, expected)


def test_shear_x_moves_row_v_by_s_times_v():
    x = torch.randn(1, 1, 3, 6)
    out = A._shear_x(x, torch.tensor([1.0]))
    expected = torch.zeros_like(x)
    for v in range(3):
        for u in range(6):
            if 0 <= u - v < 6:
                expected[0, 0, v, u] = x[0, 0, v, u - v]
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(A._shear_y(x.transpose(-1, -2), torch.tensor([1.0])),
                               expected.transpose(-1, -2))


def test_solarize_posterize_autocontrast_closed_forms():
    x = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0]).view(1, 1, 1, 5)
    expected = torch.tensor([0.0, 0.2, 0.5, 0.3, 0.0]).view(1, 1, 1, 5)
    torch.testing.assert_close(solarize(x, 0.5), expected)
    levels = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(posterize(x, 3), (levels & 0b11100000).float() / 255)
    y = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3).expand(1, 3, 1, 3).clone()
    y[:, 1] = 0.3  # a constant channel stays as it is
    out = autocontrast(y)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(out[0, 1], y[0, 1])


def test_adjust_sharpness_blends_with_the_pil_smoothing_kernel():
    x = torch.rand(1, 3, 5, 6, dtype=torch.float64)
    out = adjust_sharpness(x, torch.tensor([0.3]))
    k = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    xn = x[0].numpy()
    blurred = xn.copy()
    for c in range(3):
        for r in range(1, 4):
            for q in range(1, 5):
                blurred[c, r, q] = (xn[c, r - 1 : r + 2, q - 1 : q + 2] * k).sum()
    np.testing.assert_allclose(out[0].numpy(), np.clip(0.3 * xn + 0.7 * blurred, 0, 1))


def test_rand_augment_equals_the_drawn_op_applied_image_by_image():
    x = torch.rand(24, 3, 6, 6)
    out = rand_augment(x, gen(18), num_ops=1, magnitude=9)
    g = gen(18)
    choice = torch.randint(0, len(A.RAND_AUGMENT_OPS), (24,), generator=g)
    sign = torch.randint(0, 2, (24,), generator=g).double() * 2 - 1
    for i in range(24):
        op = A.RAND_AUGMENT_OPS[int(choice[i])]
        expected = A._rand_augment_op(x[i : i + 1], op, 9, sign[i : i + 1])
        torch.testing.assert_close(out[i : i + 1], expected)
    assert len(set(choice.tolist())) > 5


def test_rand_augment_is_reproducible_stays_in_range_and_zero_ops_is_identity():
    x = torch.rand(16, 3, 8, 8)
    a, b = rand_augment(x, gen(19)), rand_augment(x, gen(19))
    torch.testing.assert_close(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(rand_augment(x, gen(19), num_ops=0), x)


@pytest.mark.parametrize("kw", [dict(num_ops=-1), dict(magnitude=31)])
def test_rand_augment_rejects_bad_settings(kw):
    with pytest.raises(ConfigError):
        rand_augment(torch.rand(1, 3, 2, 2), gen(), **kw)
