"""Tests for foveal.detection.roi.

Oracles: brute-force Python loops written from the published algorithms — RoIAlign as in
Mask R-CNN §3 with the torchvision/Detectron2 kernel's details (adaptive grid ⌈bin⌉, average
over the grid, −0.5 shift for aligned=True, samples outside [−1, H] are 0, clamping at the
border), RoIPool as in the Fast R-CNN/torchvision kernel (C ``round``, floor/ceil bins, first
maximum) — in float64; closed forms (a linear ramp, FPN eq. 1, the RoIPool kernel's −FLT_MAX
start value); torch.autograd.gradcheck / gradgradcheck for the gradients; and torchvision.ops
where it can be imported.
"""

import math

import numpy as np
import pytest
import torch

from foveal.detection import roi as roi_module
from foveal.detection.roi import MultiScaleRoIAlign, assign_fpn_levels, roi_align, roi_pool
from foveal.errors import DetectionError

# ---------------------------------------------------------------- brute-force references


def _bilinear(f, y, x):
    """One RoIAlign sample of f (C, H, W), as the torchvision/Detectron2 kernel takes it."""
    _, height, width = f.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(f.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * f[:, y_low, x_low] + hy * lx * f[:, y_low, x_high]
            + ly * hx * f[:, y_high, x_low] + ly * lx * f[:, y_high, x_high])


def brute_force_roi_align(feat, rois, out_hw, scale, sampling_ratio, aligned):
    feat = np.asarray(feat, dtype=np.float64)
    oh, ow = out_hw
    out = np.zeros((len(rois), feat.shape[1], oh, ow))
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        offset = 0.5 if aligned else 0.0
        sx, sy = x1 * scale - offset, y1 * scale - offset
        rw, rh = x2 * scale - offset - sx, y2 * scale - offset - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / oh)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / ow)
        for ph in range(oh):
            for pw in range(ow):
                acc = np.zeros(feat.shape[1])
                for iy in range(gh):
                    y = sy + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        x = sx + pw * bw + (ix + 0.5) * bw / gw
                        acc += _bilinear(feat[int(b)], y, x)
                out[k, :, ph, pw] = acc / max(gh * gw, 1)
    return out


def brute_force_roi_pool(feat, rois, out_hw, scale):
    """Values and, for an all-ones upstream gradient, the input gradient (argmax routing)."""
    feat = np.asarray(feat, dtype=np.float64)
    _, c, height, width = feat.shape
    oh, ow = out_hw
    out = np.zeros((len(rois), c, oh, ow))
    grad = np.zeros_like(feat)

    def c_round(v):
        return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)

    for k, (b, *box) in enumerate(rois):
        x1, y1, x2, y2 = (c_round(v * scale) for v in box)
        rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bh, bw = rh / oh, rw / ow
        for ph in range(oh):
            for pw in range(ow):
                h0 = min(max(math.floor(ph * bh) + y1, 0), height)
                h1 = min(max(math.ceil((ph + 1) * bh) + y1, 0), height)
                w0 = min(max(math.floor(pw * bw) + x1, 0), width)
                w1 = min(max(math.ceil((pw + 1) * bw) + x1, 0), width)
                for ch in range(c):
                    best, arg = (0.0, None) if (h1 <= h0 or w1 <= w0) else (-np.inf, None)
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if feat[int(b), ch, h, w] > best:
                                best, arg = feat[int(b), ch, h, w], (h, w)
                    out[k, ch, ph, pw] = best
                    if arg is not None:
                        grad[int(b), ch, arg[0], arg[1]] += 1
    return out, grad


def random_rois(k, seed, n=2, extent=(30.0, 30.0), dtype=torch.float64):
    """RoIs partly outside a ~(extent) image, some tiny, some with x2 < x1."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=dtype) * torch.tensor(extent, dtype=dtype) - 6
    wh = torch.rand(k, 2, generator=g, dtype=dtype) * 25 - 3
    wh[: k // 6] = torch.rand(k // 6, 2, generator=g, dtype=dtype) * 0.6  # sub-pixel RoIs
    batch = torch.randint(0, n, (k, 1), generator=g).to(dtype)
    return torch.cat([batch, xy, xy + wh], dim=1)


def features(n=2, c=3, h=9, w=11, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


# ---------------------------------------------------------------- roi_align


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_align_matches_brute_force_kernel_loop(aligned, sampling_ratio, scale):
    x, rois = features(), random_rois(24, seed=sampling_ratio + 7)
    out = roi_align(x, rois, (3, 4), scale, sampling_ratio, aligned)
    ref = brute_force_roi_align(x.numpy(), rois.tolist(), (3, 4), scale, sampling_ratio, aligned)
    assert out.shape == (24, 3, 3, 4) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


def test_roi_align_float32_matches_float64_reference():
    x, rois = features(dtype=torch.float32), random_rois(20, seed=3, dtype=torch.float32)
    out = roi_align(x, rois, 2, 0.5, -1, True)
    ref = brute_force_roi_align(x.double().numpy(), rois.double().tolist(), (2, 2), 0.5, -1, True)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_roi_align_list_of_boxes_equals_batch_index_rows():
    x = features()
    b0, b1 = random_rois(5, seed=1)[:, 1:], random_rois(4, seed=2)[:, 1:]
    rows = torch.cat([torch.cat([torch.zeros(5, 1, dtype=torch.float64), b0], 1),
                      torch.cat([torch.ones(4, 1, dtype=torch.float64), b1], 1)])
    out = roi_align(x, [b0, b1], 2, 1.0, 2, False)
    torch.testing.assert_close(out, roi_align(x, rows, 2, 1.0, 2, False), rtol=0, atol=0)


def test_roi_align_aligned_true_shifts_half_pixel():
    # On the ramp f(y, x) = x, interior samples are exact: a bin averages to its centre's x,
    # minus 0.5 when aligned (pixel centres at j + 0.5).
    w = 20
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, 12, w).clone()
    box = torch.tensor([[0, 4.0, 3.0, 12.0, 7.0]], dtype=torch.float64)
    centres = 4.0 + (torch.arange(4, dtype=torch.float64) + 0.5) * 2.0  # 4 bins of width 2
    for aligned, shift in ((False, 0.0), (True, 0.5)):
        out = roi_align(ramp, box, (2, 4), 1.0, 2, aligned)
        torch.testing.assert_close(out[0, 0], (centres - shift).expand(2, 4))


def test_roi_align_samples_outside_feature_map_are_zero():
    x = torch.full((1, 1, 6, 6), 5.0, dtype=torch.float64)
    # Entirely beyond x > W: every sample is dropped, and they still count in the average.
    far = torch.tensor([[0, 8.0, 1.0, 12.0, 5.0]], dtype=torch.float64)
    assert roi_align(x, far, 2, 1.0, 2, False).abs().max() == 0
    # x in [−1, 0] reads column 0 (no zero padding): a constant map stays constant there.
    edge = torch.tensor([[0, -1.0, 1.0, 0.0, 5.0]], dtype=torch.float64)
    torch.testing.assert_close(roi_align(x, edge, 1, 1.0, 2, False),
                               torch.full((1, 1, 1, 1), 5.0, dtype=torch.float64))
    # All samples at x < −1 (x = −2.5, −1.5): zero, not the border value.
    left = torch.tensor([[0, -3.0, 1.0, -1.0, 5.0]], dtype=torch.float64)
    assert roi_align(x, left, (1, 1), 1.0, 2, False).item() == 0.0
    # One sample of two outside: the bin keeps half the value (zeros are averaged in).
    straddle = torch.tensor([[0, -2.0, 1.0, 0.0, 5.0]], dtype=torch.float64)  # x = −1.5, −0.5
    assert roi_align(x, straddle, (1, 1), 1.0, 2, False).item() == pytest.approx(2.5)


def test_roi_align_unaligned_stretches_tiny_rois_to_one_pixel():
    x = features(n=1, c=2, h=8, w=8, seed=4)
    tiny = torch.tensor([[0, 3.0, 2.0, 3.0, 2.0]], dtype=torch.float64)  # zero-size box
    one = torch.tensor([[0, 3.0, 2.0, 4.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(roi_align(x, tiny, 2, 1.0, -1, False),
                               roi_align(x, one, 2, 1.0, -1, False))


def test_roi_align_aligned_zero_size_roi_is_point_sample_or_zero_with_adaptive_grid():
    x = features(n=1, c=2, h=8, w=8, seed=5)
    point = torch.tensor([[0, 3.7, 2.2, 3.7, 2.2]], dtype=torch.float64)
    out = roi_align(x, point, 2, 1.0, 2, True)  # every sample at (2.2 − 0.5, 3.7 − 0.5)
    expect = torch.from_numpy(_bilinear(x[0].numpy(), 1.7, 3.2))
    torch.testing.assert_close(out[0], expect[:, None, None].expand(2, 2, 2))
    # adaptive: ⌈0 / 2⌉ = 0 samples per bin, so the output is 0 (the kernel's empty grid)
    assert roi_align(x, point, 2, 1.0, -1, True).abs().max() == 0


def test_roi_align_adaptive_grid_is_ceil_of_bin_size():
    x = features(seed=6)
    rois = random_rois(12, seed=8)
    out = roi_align(x, rois, 3, 1.0, -1, False)
    for i, (_, x1, y1, x2, y2) in enumerate(rois.tolist()):
        gh, gw = math.ceil(max(y2 - y1, 1) / 3), math.ceil(max(x2 - x1, 1) / 3)
        if gh == gw:
            torch.testing.assert_close(out[i:i + 1], roi_align(x, rois[i:i + 1], 3, 1.0, gh))


def test_roi_align_chunked_and_dense_paths_equal_brute_force(monkeypatch):
    monkeypatch.setattr(roi_module, "_CHUNK_ENTRIES", 300)
    x = features(h=5, w=6, seed=9)
    rois = random_rois(18, seed=10)
    rois[:4, 3:] += 40  # huge RoIs: 2·⌈bin⌉ exceeds the map, the dense per-pixel taps are used
    out = roi_align(x, rois, 2, 1.0, -1, False)
    ref = brute_force_roi_align(x.numpy(), rois.tolist(), (2, 2), 1.0, -1, False)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("aligned, sampling_ratio", [(False, -1), (True, 2), (True, -1)])
def test_roi_align_gradcheck(aligned, sampling_ratio):
    x = features(n=2, c=2, h=5, w=6, seed=11).requires_grad_()
    rois = random_rois(6, seed=12, extent=(8.0, 8.0))
    assert torch.autograd.gradcheck(
        lambda f: roi_align(f, rois, 2, 0.7, sampling_ratio, aligned), (x,))


def test_roi_align_no_gradient_to_boxes():
    x = features().requires_grad_()
    rois = random_rois(3, seed=0).requires_grad_()
    roi_align(x, rois, 2).sum().backward()
    assert rois.grad is None and x.grad is not None


def test_roi_align_no_boxes_gives_empty_output_on_the_graph():
    x = features().requires_grad_()
    out = roi_align(x, torch.zeros(0, 5, dtype=torch.float64), (2, 3))
    assert out.shape == (0, 3, 2, 3)
    out.sum().backward()
    assert x.grad.abs().max() == 0


@pytest.mark.parametrize("boxes, match", [
    (torch.zeros(3, 4), r"\(K, 5\)"),
    ([torch.zeros(3, 5)], r"boxes\[0\] to be a \(K_i, 4\)"),
    (torch.tensor([[2.0, 0, 0, 1, 1]]), r"batch indices in \[0, 1\]"),
    (torch.tensor([[0.0, 0, math.nan, 1, 1]]), "finite"),
    ("boxes", "got str"),
])
def test_roi_align_bad_boxes_raise_one_line_detection_error(boxes, match):
    with pytest.raises(DetectionError, match=match) as info:
        roi_align(torch.zeros(2, 1, 4, 4), boxes, 2)
    assert "\n" not in str(info.value)


def test_roi_align_bad_input_and_output_size_raise():
    with pytest.raises(DetectionError, match=r"\(N, C, H, W\)"):
        roi_align(torch.zeros(1, 4, 4), torch.zeros(0, 5), 2)
    with pytest.raises(DetectionError, match="output_size"):
        roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(0, 5), (2, 0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_roi_align_and_roi_pool_cuda_match_cpu():
    x, rois = features(c=8, seed=13, dtype=torch.float32), random_rois(40, 14, dtype=torch.float32)
    for fn, args in ((roi_align, (3, 0.5, -1, True)), (roi_pool, (3, 0.5))):
        xc = x.cuda().requires_grad_()
        out = fn(xc, rois.cuda(), *args)
        out.sum().backward()
        xr = x.clone().requires_grad_()
        ref = fn(xr, rois, *args)
        ref.sum().backward()
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(xc.grad.cpu(), xr.grad, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- roi_pool


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.3])
def test_roi_pool_matches_brute_force_loop_values_and_gradient(scale):
    x = features(seed=15).requires_grad_()
    rois = random_rois(20, seed=16)
    out = roi_pool(x, rois, (3, 2), scale)
    ref, ref_grad = brute_force_roi_pool(x.detach().numpy(), rois.tolist(), (3, 2), scale)
    np.testing.assert_array_equal(out.detach().numpy(), ref)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), ref_grad)


def test_roi_pool_rounds_half_away_from_zero():
    # 2.5 rounds to 3 in C (torch.round would give 2), −0.5 to −1.
    x = torch.arange(1, 37, dtype=torch.float64).view(1, 1, 6, 6)
    box = torch.tensor([[0, 2.5, 0.0, 2.5, 0.0]], dtype=torch.float64)
    assert roi_pool(x, box, 1).item() == x[0, 0, 0, 3]
    ref, _ = brute_force_roi_pool(x.numpy(), box.tolist(), (1, 1), 1.0)
    assert ref.item() == x[0, 0, 0, 3]
    # −0.5 → −1: the RoI spans pixels −1 … 0, its first row and column of bins are empty
    # (with −0.5 → 0 every bin would read pixel (0, 0) = 1)
    neg = torch.tensor([[0, -0.5, -0.5, 0.4, 0.4]], dtype=torch.float64)
    assert roi_pool(x, neg, 2)[0, 0].tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_roi_pool_gradient_goes_to_first_maximum_on_ties():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    out = roi_pool(x, torch.tensor([[0, 0.0, 0.0, 3.0, 3.0]], dtype=torch.float64), 1)
    out.sum().backward()
    expect = torch.zeros(4, 4, dtype=torch.float64)
    expect[0, 0] = 1
    assert torch.equal(x.grad[0, 0], expect)


def test_roi_pool_empty_bins_are_zero():
    x = torch.full((1, 1, 4, 4), -3.0, dtype=torch.float64)
    outside = torch.tensor([[0, 10.0, 10.0, 14.0, 14.0]], dtype=torch.float64)
    assert roi_pool(x, outside, 2).abs().max() == 0


def test_roi_pool_chunked_equals_brute_force(monkeypatch):
    monkeypatch.setattr(roi_module, "_CHUNK_VALUES", 200)
    x, rois = features(seed=17), random_rois(15, seed=18)
    ref, _ = brute_force_roi_pool(x.numpy(), rois.tolist(), (2, 2), 1.0)
    np.testing.assert_array_equal(roi_pool(x, rois, 2).numpy(), ref)


def test_roi_pool_gradcheck():
    x = features(n=1, c=2, h=5, w=5, seed=19).requires_grad_()
    rois = random_rois(5, seed=20, n=1, extent=(6.0, 6.0))
    assert torch.autograd.gradcheck(lambda f: roi_pool(f, rois, 2, 1.0), (x,))


def quantised_features(n=2, c=4, h=23, w=29, seed=0, levels=3, dtype=torch.float64):
    """Features with only a few distinct values, so most bins hold tied maxima."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (n, c, h, w), generator=g).to(dtype) - 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("ties", [False, True])
def test_roi_pool_large_random_case_matches_brute_force_loop(monkeypatch, dtype, ties):
    # Bins from 0 to ~15 px (windows past the exact sizes, padded), many RoIs across several
    # window shapes and chunks; values, first-maximum gradient and the no-grad path.
    monkeypatch.setattr(roi_module, "_CHUNK_VALUES", 3000)
    x = (quantised_features(seed=26, dtype=dtype) if ties
         else features(c=4, h=23, w=29, seed=26, dtype=dtype))
    rois = random_rois(50, seed=27, extent=(40.0, 32.0), dtype=dtype)
    rois[-10:, 3:] = rois[-10:, 1:3] + torch.tensor([30.0, 25.0], dtype=dtype)  # large RoIs
    for out_hw, scale in (((2, 3), 1.0), ((5, 4), 0.7), ((1, 1), 1.0)):
        xg = x.clone().requires_grad_()
        out = roi_pool(xg, rois, out_hw, scale)
        ref, ref_grad = brute_force_roi_pool(x.double().numpy(), rois.double().tolist(), out_hw,
                                             scale)
        assert out.dtype == dtype and out.is_contiguous()
        np.testing.assert_array_equal(out.detach().double().numpy(), ref)
        out.sum().backward()
        np.testing.assert_array_equal(xg.grad.double().numpy(), ref_grad)
        with torch.no_grad():
            assert torch.equal(roi_pool(x, rois, out_hw, scale), out.detach())


def test_roi_pool_window_padding_stays_within_a_quarter():
    # Bins are gathered in windows padded to a few shapes; padding must cover the bin and stay
    # small (exact up to 4 px, then at most 1.25×).
    length = torch.arange(1, 2000)
    window = roi_module._window_length(length)
    assert torch.equal(window[:4], length[:4])
    assert (window >= length).all() and (window[4:] <= 1.25 * length[4:]).all()
    assert window.unique().numel() < 60


def test_roi_pool_values_at_or_below_minus_flt_max_give_minus_flt_max_and_no_gradient():
    # The kernel starts each bin at −FLT_MAX and keeps a value only if it is strictly larger:
    # a bin of −inf / −FLT_MAX / (float64) −1e300 gives −FLT_MAX and routes no gradient.
    flt_max = float(torch.finfo(torch.float32).max)
    x = torch.tensor([-math.inf, -flt_max, -1e300, 2.0], dtype=torch.float64).view(1, 1, 1, 4)
    x = x.repeat(1, 1, 2, 1).requires_grad_()
    out = roi_pool(x, torch.tensor([[0, 0.0, 0.0, 3.0, 1.0]], dtype=torch.float64), (1, 4))
    assert out[0, 0, 0].tolist() == [-flt_max, -flt_max, -flt_max, 2.0]
    out.sum().backward()
    expect = torch.zeros(2, 4, dtype=torch.float64)
    expect[0, 3] = 1
    assert torch.equal(x.grad[0, 0], expect)
    x32 = x.detach().float().requires_grad_()
    out32 = roi_pool(x32, torch.tensor([[0, 0.0, 0.0, 3.0, 1.0]]), (1, 4))
    assert out32[0, 0, 0].tolist() == [-flt_max, -flt_max, -flt_max, 2.0]


def test_roi_pool_gradcheck_large_bins_chunked(monkeypatch):
    # float64 numerical Jacobian through padded windows of several shapes and many chunks,
    # with bins sharing pixels (floor/ceil overlap) and RoIs sharing pixels.
    monkeypatch.setattr(roi_module, "_CHUNK_VALUES", 40)
    x = features(n=2, c=1, h=7, w=8, seed=28).requires_grad_()
    rois = random_rois(6, seed=29, extent=(10.0, 9.0))
    rois[:2, 3:] = rois[:2, 1:3] + 8.0
    assert torch.autograd.gradcheck(lambda f: roi_pool(f, rois, (2, 3), 1.0), (x,))
    assert torch.autograd.gradgradcheck(lambda f: roi_pool(f, rois, (2, 3), 1.0), (x,))


# ---------------------------------------------------------------- FPN levels


def test_assign_fpn_levels_matches_eq1_closed_form():
    g = torch.Generator().manual_seed(21)
    xy = torch.rand(200, 2, generator=g, dtype=torch.float64) * 500
    wh = torch.exp(torch.rand(200, 2, generator=g, dtype=torch.float64) * 7)  # 1 … 1100 px
    boxes = torch.cat([xy, xy + wh], 1)
    levels = assign_fpn_levels(boxes, 2, 5)
    for (w, h), lvl in zip(wh.tolist(), levels.tolist(), strict=True):
        k = math.floor(4 + math.log2(math.sqrt(w * h) / 224) + 1e-6)
        assert lvl == min(max(k, 2), 5) - 2
    assert levels.dtype == torch.int64


def test_assign_fpn_levels_exact_powers_of_two_stay_on_their_level():
    sides = torch.tensor([56.0, 112.0, 224.0, 448.0, 111.9, 223.9])
    boxes = torch.stack([torch.zeros(6), torch.zeros(6), sides, sides], 1)
    assert assign_fpn_levels(boxes, 2, 5).tolist() == [0, 1, 2, 3, 0, 1]
    degenerate = torch.tensor([[5.0, 5.0, 5.0, 9.0], [5.0, 5.0, 1.0, 9.0]])
    assert assign_fpn_levels(degenerate, 2, 5).tolist() == [0, 0]


# ---------------------------------------------------------------- MultiScaleRoIAlign


def pyramid(n=2, c=3, image=(64, 96), strides=(4, 8, 16, 32), seed=22):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, image[0] // s, image[1] // s, generator=g, dtype=torch.float64)
            for s in strides]


def pyramid_boxes(seed=23):
    """Two images' boxes with sides from 20 to 700 px, so every level P2–P5 gets some."""
    g = torch.Generator().manual_seed(seed)
    sides = torch.tensor([20.0, 60, 120, 150, 250, 300, 500, 700, 30, 90, 260, 480],
                         dtype=torch.float64)[:, None]
    xy = torch.rand(12, 2, generator=g, dtype=torch.float64) * 50
    boxes = torch.cat([xy, xy + sides * torch.tensor([1.0, 0.8], dtype=torch.float64)], 1)
    return [boxes[:7], boxes[7:]]


@pytest.mark.parametrize("aligned", [False, True])
def test_multiscale_roi_align_equals_per_level_roi_align(aligned):
    feats, boxes = pyramid(), pyramid_boxes()
    pooler = MultiScaleRoIAlign(output_size=(3, 2), sampling_ratio=2, aligned=aligned)
    out = pooler(feats, boxes, (64, 96))
    cat = torch.cat(boxes)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i), dtype=torch.float64), b], 1)
                      for i, b in enumerate(boxes)])
    levels = assign_fpn_levels(cat, 2, 5)
    assert set(levels.tolist()) == {0, 1, 2, 3}
    for i in range(len(cat)):
        lvl = int(levels[i])
        ref = roi_align(feats[lvl], rois[i:i + 1], (3, 2), 1 / 2 ** (lvl + 2), 2, aligned)
        torch.testing.assert_close(out[i:i + 1], ref, rtol=0, atol=0)


def test_multiscale_roi_align_single_level_and_gradient():
    feats, boxes = pyramid(strides=(8,)), pyramid_boxes()
    feats[0].requires_grad_()
    out = MultiScaleRoIAlign(2)(feats, boxes, (64, 96))
    torch.testing.assert_close(out, roi_align(feats[0], boxes, 2, 1 / 8, 2))
    out.sum().backward()
    assert feats[0].grad.abs().sum() > 0


def test_multiscale_roi_align_bad_input_raises():
    feats, boxes = pyramid(), pyramid_boxes()
    with pytest.raises(DetectionError, match="list of 2 box tensors"):
        MultiScaleRoIAlign()(feats, boxes[:1], (64, 96))
    with pytest.raises(DetectionError, match="image_size"):
        MultiScaleRoIAlign()(feats, boxes, (64,))


# ---------------------------------------------------------------- torchvision


def test_roi_align_and_roi_pool_equal_torchvision():
    ops = pytest.importorskip("torchvision.ops")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = features(c=4, h=13, w=17, seed=24, dtype=torch.float32).to(device)
    rois = random_rois(60, seed=25, extent=(40.0, 30.0), dtype=torch.float32).to(device)
    for aligned in (False, True):
        for sampling_ratio in (-1, 2):
            for scale in (1.0, 0.5):
                xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
                ours = roi_align(xa, rois, (5, 3), scale, sampling_ratio, aligned)
                ref = ops.roi_align(xb, rois, (5, 3), scale, sampling_ratio, aligned)
                torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
                ours.square().sum().backward()
                ref.square().sum().backward()
                torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    for scale in (1.0, 0.5, 0.3):
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ours, ref = roi_pool(xa, rois, (3, 4), scale), ops.roi_pool(xb, rois, (3, 4), scale)
        torch.testing.assert_close(ours, ref, rtol=0, atol=0)
        ours.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=0)


def test_multiscale_roi_align_equals_torchvision():
    ops = pytest.importorskip("torchvision.ops")
    feats = [f.float() for f in pyramid(c=4)]
    boxes = [b.float() for b in pyramid_boxes()]
    names = [f"p{i}" for i in range(len(feats))]
    ref = ops.MultiScaleRoIAlign(names, output_size=(3, 2), sampling_ratio=2)(
        dict(zip(names, feats, strict=True)), boxes, [(64, 96), (64, 96)])
    ours = MultiScaleRoIAlign(output_size=(3, 2), sampling_ratio=2)(feats, boxes, (64, 96))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
