"""Block-matching stereo against closed forms (shifted textures, a slanted plane, a step),
brute-force per-pixel loops, OpenCV's colour conversion and StereoBM, and the Middlebury
motorcycle ground truth shipped with scikit-image."""

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, map_coordinates
from skimage import data
from skimage.transform import downscale_local_mean

from foveal.errors import GeometryError
from foveal.geometry.image import to_grey
from foveal.geometry.stereo import (
    bad_pixel_rate,
    block_matching,
    cost_volume,
    depth_from_disparity,
)

rng = np.random.default_rng(0)


def shifted_pair(d: float, h: int = 40, w: int = 80, sigma: float = 0.0, seed: int = 0):
    """A random texture as the left image and the right image ``right(x) = left(x + d)``, so
    ``left(x) = right(x − d)``: constant disparity ``d`` (cubic interpolation if fractional)."""
    texture = np.random.default_rng(seed).random((h, w + 40))
    if sigma:
        texture = gaussian_filter(texture, sigma)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    left = map_coordinates(texture, [yy, xx + 20], order=3)
    right = map_coordinates(texture, [yy, xx + 20 + d], order=3)
    return left, right


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("cost", ["sad", "ncc"])
def test_constant_shift_gives_the_exact_disparity_in_the_interior(cost):
    """Closed form: right = left shifted by 7 px, so d = 7 wherever x ≥ 7."""
    texture = rng.random((30, 90))
    left, right = texture[:, :80], texture[:, 7:87]
    d = block_matching(left, right, 15, block_size=5, cost=cost, subpixel=False)
    assert np.all(d[:, 7:] == 7)
    # x < 7: the true match x − 7 is outside the right image; WTA answers, the LR check rejects
    # (nearly) all: a chance match can be consistent both ways
    assert np.isnan(d[:, :7]).mean() > 0.9
    unchecked = block_matching(left, right, 15, block_size=5, cost=cost, subpixel=False,
                               left_right_check=False)
    assert np.isfinite(unchecked).all() and np.all(unchecked[:, 7:] == 7)
    # x < min_disparity: no candidate at all
    shifted = block_matching(left, right, 15, block_size=5, cost=cost, min_disparity=5,
                             left_right_check=False)
    assert np.isnan(shifted[:, :5]).all() and np.isfinite(shifted[:, 5:]).all()


@pytest.mark.parametrize("cost", ["sad", "ncc"])
def test_subpixel_recovers_a_fractional_shift(cost):
    """Closed form: a smooth texture shifted by 5.3 px (cubic interpolation)."""
    left, right = shifted_pair(5.3, sigma=1.0)
    d = block_matching(left, right, 12, block_size=7, cost=cost)
    err = np.abs(d[5:-5, 15:-5] - 5.3)  # measured: mean 0.03 (SAD), 0.04 (NCC)
    assert err.mean() < 0.06 and np.percentile(err, 95) < 0.15 and err.max() < 0.4
    whole = block_matching(left, right, 12, block_size=7, cost=cost, subpixel=False)
    assert np.all(whole[5:-5, 15:-5] == 5)


def test_slanted_plane_disparity_follows_the_plane():
    """Closed form: a plane slanted in x has d(x) = a + s·x; right(u) = left(x) at u = x − d(x)."""
    h, w, a, s = 40, 120, 4.0, 0.06
    texture = gaussian_filter(rng.random((h, 2 * w)), 1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    left = map_coordinates(texture, [yy, xx], order=3)
    right = map_coordinates(texture, [yy, (xx + a) / (1 - s)], order=3)  # x = (u + a) / (1 − s)
    truth = a + s * xx
    est = block_matching(left, right, 16, block_size=7, cost="ncc")
    whole = block_matching(left, right, 16, block_size=7, cost="ncc", subpixel=False)
    inner = (slice(5, -5), slice(10, -5))
    err, err_whole = (est - truth)[inner], (whole - truth)[inner]
    assert np.isfinite(err).mean() > 0.98
    rms = np.sqrt(np.nanmean(err**2))
    assert rms < 0.15
    assert rms < 0.5 * np.sqrt(np.nanmean(err_whole**2))


def step_scene(seed: int = 1):
    """Background at d = 4, a foreground square (rows 15–44, columns 40–69) at d = 12, with
    independent textures. The background strip of width 12 − 4 = 8 left of the square is hidden
    behind it in the right image: occluded."""
    g = np.random.default_rng(seed)
    h, w = 60, 110
    back, front = g.random((h, w + 20)), g.random((h, w + 20))
    in_square = np.zeros((h, w), bool)
    in_square[15:45, 40:70] = True
    left = np.where(in_square, front[:, :w], back[:, :w])
    right = back[:, 4:4 + w].copy()  # right(u) = back(u + 4)
    u = np.arange(w)
    cover = (u + 12 >= 40) & (u + 12 < 70)  # right pixels that see the square: u + 12 in it
    right[15:45][:, cover] = front[15:45, u[cover] + 12]
    occluded = np.zeros((h, w), bool)
    occluded[15:45, 32:40] = True
    truth = np.where(in_square, 12.0, 4.0)
    return left, right, truth, occluded


@pytest.mark.parametrize("cost", ["sad", "ncc"])
def test_fronto_parallel_step_is_exact_away_from_its_edges(cost):
    """Closed form: the two planes' disparities, 4 and 12, wherever the window sees one plane."""
    left, right, truth, occluded = step_scene()
    d = block_matching(left, right, 16, block_size=5, cost=cost, subpixel=False)
    far = np.ones_like(occluded)  # farther than the window radius from every edge and occlusion
    far[13:47, 30:72] = False
    far[:, :6] = False
    assert np.array_equal(d[far], truth[far])
    assert np.all(d[19:41, 44:66] == 12)  # inside the square


def test_left_right_check_invalidates_occluded_pixels():
    """Closed form: the occluded strip has no match; the check must reject it, and keep the
    unoccluded pixels away from edges."""
    left, right, truth, occluded = step_scene()
    checked = block_matching(left, right, 16, block_size=5, subpixel=False)
    unchecked = block_matching(left, right, 16, block_size=5, subpixel=False,
                               left_right_check=False)
    assert np.isfinite(unchecked[occluded]).all()  # WTA always answers, rightly or not
    assert np.isnan(checked[occluded]).mean() > 0.8
    wrong = np.abs(unchecked - truth) > 1
    assert np.isnan(checked[wrong]).mean() > 0.9  # most WTA errors are caught
    far = np.ones_like(occluded)
    far[13:47, 30:72] = False
    far[:, :6] = False
    assert np.isfinite(checked[far]).all()


# ---------------------------------------------------------------- brute force


def brute_cost_volume(left, right, d_min, d_max, b, cost):
    """Per-pixel loops: the mean over the window clipped to the rows of the image and the columns
    where both images exist (left u ∈ [d, W)), as cost_volume documents."""
    H, W = left.shape
    r = b // 2
    out = np.full((d_max - d_min + 1, H, W), np.inf)
    for k, d in enumerate(range(d_min, d_max + 1)):
        for y in range(H):
            for x in range(d, W):
                ys = slice(max(y - r, 0), min(y + r, H - 1) + 1)
                us = np.arange(max(x - r, d), min(x + r, W - 1) + 1)
                a, c = left[ys][:, us], right[ys][:, us - d]
                if cost == "sad":
                    out[k, y, x] = np.abs(a - c).mean()
                else:
                    a, c = a - a.mean(), c - c.mean()
                    out[k, y, x] = 1 - (a * c).sum() / np.sqrt((a * a).sum() * (c * c).sum())
    return out


@pytest.mark.parametrize("cost", ["sad", "ncc"])
@pytest.mark.parametrize("shape", [(9, 14), (4, 7)])  # (4, 7): overlaps narrower than a window
def test_cost_volume_equals_brute_force_loops_including_borders(cost, shape):
    left = rng.random(shape)
    right = rng.random(shape)
    ours = cost_volume(left, right, 5, block_size=5, cost=cost, min_disparity=1)
    ref = brute_cost_volume(left, right, 1, 5, 5, cost)
    assert ours.dtype == np.float32 and ours.shape == (5, *shape)
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    np.testing.assert_allclose(ours[np.isfinite(ours)], ref[np.isfinite(ref)], rtol=2e-6,
                               atol=2e-6)
    # winner-take-all of the brute-force volume, nothing else (no check, no refinement)
    best = np.argmin(ref, axis=0) + 1.0
    best[np.isinf(ref.min(axis=0))] = np.nan
    d = block_matching(left, right, 5, block_size=5, cost=cost, min_disparity=1,
                       left_right_check=False, subpixel=False)
    np.testing.assert_array_equal(d, best)


def test_sad_on_integers_matches_brute_force_exactly():
    """uint8 images: every window mean of |difference| is exact in float32 for these sizes."""
    left = rng.integers(0, 256, (8, 12), dtype=np.uint8)
    right = rng.integers(0, 256, (8, 12), dtype=np.uint8)
    ours = cost_volume(left, right, 3, block_size=3)
    ref = brute_cost_volume(left.astype(float), right.astype(float), 0, 3, 3, "sad")
    np.testing.assert_allclose(ours, ref.astype(np.float32), rtol=1e-6)


def test_left_right_check_matches_brute_force_right_to_left_matching():
    """The right image's disparities read off the left volume's diagonal equal a direct
    right-to-left search: for right pixel u, argmin_d cost(left u + d, right u)."""
    left, right = rng.random((10, 30)), rng.random((10, 30))
    vol = brute_cost_volume(left, right, 0, 6, 3, "sad")
    H, W = left.shape
    d_left = np.argmin(vol, axis=0)
    d_right = np.full((H, W), -1)
    for y in range(H):
        for u in range(W):
            costs = [vol[d, y, u + d] if u + d < W else np.inf for d in range(7)]
            d_right[y, u] = int(np.argmin(costs))
    expected = np.where(np.abs(d_left - d_right[np.arange(H)[:, None], np.arange(W) - d_left])
                        <= 1, d_left.astype(float), np.nan)
    d = block_matching(left, right, 6, block_size=3, subpixel=False)
    np.testing.assert_array_equal(d, expected.astype(np.float32))


# ---------------------------------------------------------------- cost behaviour and pitfalls


def test_ncc_is_invariant_to_gain_and_offset_sad_is_not():
    """Pitfall: a right camera with another gain and offset (0.6 I + 0.5 σ) breaks SAD on a
    smooth texture, not zero-mean NCC. Closed form: constant disparity 6."""
    left, right = shifted_pair(6.0, sigma=1.0, w=90)
    other = 0.6 * right + 0.5 * left.std()
    ncc = block_matching(left, right, 12, block_size=7, cost="ncc")
    np.testing.assert_allclose(block_matching(left, other, 12, block_size=7, cost="ncc"), ncc,
                               atol=1e-4)
    assert np.all(np.round(ncc[:, 12:]) == 6)
    assert np.all(block_matching(left, right, 12, block_size=7, subpixel=False)[:, 12:] == 6)
    sad = block_matching(left, other, 12, block_size=7, subpixel=False)
    assert np.mean(sad[:, 12:] == 6) < 0.1  # measured: 0


def test_parabola_on_sad_pixel_locks_the_equiangular_fit_does_not():
    """Pitfall: SAD grows like |δd| near its minimum; a parabola through it biases sub-pixel
    estimates towards whole pixels (Shimizu & Okutomi 2005). Fractional shifts, closed form."""
    errors = {"parabola": [], "equiangular": []}
    for frac in (0.2, 0.3, 0.7, 0.8):
        left, right = shifted_pair(6 + frac, sigma=1.0)
        for fit in errors:
            d = block_matching(left, right, 12, block_size=7, subpixel=fit)
            errors[fit].append(np.abs(d[5:-5, 15:-5] - 6 - frac).mean())
    assert np.mean(errors["equiangular"]) < 0.5 * np.mean(errors["parabola"])
    assert max(errors["parabola"]) > 0.06  # the locking is real, not noise


def test_ncc_prefers_the_parabola():
    """ZNCC is smooth (quadratic) at its peak: the parabola beats the equiangular fit there."""
    left, right = shifted_pair(6.3, sigma=1.0)
    err = {fit: np.abs(block_matching(left, right, 12, block_size=7, cost="ncc",
                                      subpixel=fit)[5:-5, 15:-5] - 6.3).mean()
           for fit in ("parabola", "equiangular")}
    assert err["parabola"] < err["equiangular"]


def test_ncc_flat_left_window_has_no_disparity():
    """0/0 correlation on a textureless patch: NaN, not a made-up winner."""
    texture = rng.random((30, 70))
    left, right = texture[:, :60].copy(), texture[:, 5:65].copy()
    left[10:20, 30:45] = 0.5
    right[10:20, 25:40] = 0.5
    d = block_matching(left, right, 10, block_size=5, cost="ncc", left_right_check=False)
    assert np.all(np.isnan(d[13:17, 33:42]))
    assert np.all(np.isfinite(d[:, 12:][~np.isnan(d[:, 12:])]))
    vol = cost_volume(left, right, 10, block_size=5, cost="ncc")
    assert np.isfinite(vol).sum() > 0.8 * vol.size
    assert not np.isnan(vol).any()


def test_rgb_input_is_bt601_luma_like_opencv():
    """Oracle: cv2.cvtColor(RGB2GRAY), which rounds to uint8."""
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ours = to_grey(rgb)
    theirs = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.abs(ours - theirs).max() <= 0.51  # cv2 rounds fixed-point weights
    right = np.roll(rgb, -3, axis=1)
    np.testing.assert_array_equal(block_matching(rgb, right, 6, block_size=3),
                                  block_matching(to_grey(rgb), to_grey(right), 6, block_size=3))


# ---------------------------------------------------------------- depth and the error measure


def test_depth_from_disparity_inverts_the_projection_of_two_rectified_cameras():
    """Closed form: project points with P_L = K_L [I | 0] and P_R = K_R [I | −B e₁]
    (principal points cx_L, cx_R); d = x_L − x_R and doffs = cx_R − cx_L give back Z."""
    f, B, cx_l, cx_r = 800.0, 0.12, 310.0, 341.0
    X = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 20, 50)])
    x_left = f * X[:, 0] / X[:, 2] + cx_l
    x_right = f * (X[:, 0] - B) / X[:, 2] + cx_r
    Z = depth_from_disparity(x_left - x_right, f, B, doffs=cx_r - cx_l)
    np.testing.assert_allclose(Z, X[:, 2], rtol=1e-12)


def test_depth_is_nan_at_and_beyond_infinity_and_where_disparity_is_missing():
    Z = depth_from_disparity(np.array([[10.0, 0.0, -1.0], [np.nan, np.inf, 2.0]]), 100, 2.0,
                             doffs=0.0)
    np.testing.assert_allclose(Z, [[20.0, np.nan, np.nan], [np.nan, np.nan, 100.0]])
    assert np.isnan(depth_from_disparity(3.0, 100, 2.0, doffs=-3.0))
    assert Z.dtype == np.float64


def test_bad_pixel_rate_counts_missing_estimates_as_bad():
    """Hand count: 9 valid GT pixels (inf, NaN and 0 are unknown), 2 missing, 2 bad of 7."""
    gt = np.array([[10, 10, 10, 10, np.inf, 0], [20, 20, 20, 20, np.nan, 5]], dtype=float)
    d = np.array([[10, 11.9, 12.5, np.nan, 3, 9], [20, 18, np.inf, 21, 0, 0]], dtype=float)
    e = bad_pixel_rate(d, gt, threshold=2.0)
    assert e.valid == 9
    assert e.density == pytest.approx(7 / 9)  # d[0, 3] NaN and d[1, 2] inf are missing
    # bad: 12.5 vs 10 and 0 vs 5; 18 vs 20 is exactly 2 and not bad
    assert e.rate_estimated == pytest.approx(2 / 7)
    assert e.rate == pytest.approx(4 / 9)
    assert e.rate == pytest.approx(1 - e.density * (1 - e.rate_estimated))
    masked = bad_pixel_rate(d, gt, mask=np.broadcast_to(np.arange(6) < 3, gt.shape))
    assert masked.valid == 6 and masked.rate == pytest.approx(2 / 6)  # 12.5 and the inf


# ---------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def motorcycle_half():
    """Middlebury 2014 motorcycle (skimage, 500 × 741) at half resolution for speed: grey
    images and ground truth (inf = unknown) block-averaged 2 × 2 over the first 740 columns,
    disparities halved (max ≈ 30). An unknown pixel makes its block unknown."""
    left, right, gt = data.stereo_motorcycle()
    half = [downscale_local_mean(to_grey(im)[:, :740], (2, 2)) for im in (left, right)]
    return half[0], half[1], downscale_local_mean(gt[:, :740], (2, 2)) / 2


def test_motorcycle_ground_truth_is_x_right_equals_x_left_minus_d():
    """Pins the convention (skimage's docstring writes the sign the other way): sampling the
    right image at x − d reproduces the left image, at x + d it does not."""
    left, right, gt = data.stereo_motorcycle()
    L, R = to_grey(left), to_grey(right)
    yy, xx = np.mgrid[0:L.shape[0], 0:L.shape[1]]
    ok = np.isfinite(gt)
    errs = {}
    for sign in (-1, 1):
        u = xx + sign * np.where(ok, gt, 0)
        inside = ok & (u >= 0) & (u <= L.shape[1] - 1)
        warped = map_coordinates(R, [yy[inside], u[inside]], order=1)
        errs[sign] = np.abs(warped - L[inside]).mean()
    assert errs[-1] < 10 and errs[-1] < 0.5 * errs[1]


def test_motorcycle_bad_pixel_rate_is_below_stated_bounds(motorcycle_half):
    """Middlebury ground truth at half resolution: 1 px here is 2 px at full resolution.
    Bounds sit a little above what was measured (NCC: 0.19 all / 0.09 estimated at density 0.90;
    SAD: 0.29 / 0.17 at 0.85)."""
    L, R, gt = motorcycle_half
    ncc = bad_pixel_rate(block_matching(L, R, 31, block_size=7, cost="ncc"), gt, threshold=1.0)
    assert ncc.rate < 0.22 and ncc.rate_estimated < 0.12 and ncc.density > 0.85
    sad = bad_pixel_rate(block_matching(L, R, 31, block_size=9), gt, threshold=1.0)
    assert sad.rate < 0.32 and sad.rate_estimated < 0.20 and sad.density > 0.80


def test_motorcycle_ncc_is_no_worse_than_opencv_stereobm(motorcycle_half):
    """Loose sanity bound against cv2.StereoBM (same grey input, rounded to uint8, 32
    disparities, 7 × 7 window), not an oracle: WTA with an LR check should be in its league."""
    L, R, gt = motorcycle_half
    Lu, Ru = (np.round(im).astype(np.uint8) for im in (L, R))
    bm = cv2.StereoBM_create(numDisparities=32, blockSize=7).compute(Lu, Ru) / 16.0
    bm[bm < 0] = np.nan  # StereoBM marks failures (min_disparity − 1) · 16
    theirs = bad_pixel_rate(bm, gt, threshold=1.0)
    ours = bad_pixel_rate(block_matching(Lu, Ru, 31, block_size=7, cost="ncc"), gt,
                          threshold=1.0)
    assert ours.rate < theirs.rate + 0.02
    assert ours.rate_estimated < theirs.rate_estimated + 0.03


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    ({"block_size": 4}, "odd block_size"),
    ({"block_size": 0}, "block_size ≥ 1"),
    ({"block_size": 2.5}, "block_size as an integer"),
    ({"min_disparity": -1}, "min_disparity ≥ 0"),
    ({"min_disparity": 9}, "max_disparity ≥ 9"),
    ({"cost": "ssd"}, "cost 'sad' or 'ncc'"),
    ({"cost": "ncc", "block_size": 1}, "block_size ≥ 3 for NCC"),
    ({"subpixel": "cubic"}, "subpixel True, False"),
    ({"lr_tolerance": -1}, "lr_tolerance ≥ 0"),
])
def test_block_matching_rejects_bad_parameters(kwargs, match):
    im = rng.random((10, 20))
    with pytest.raises(GeometryError, match=match):
        block_matching(im, im, 8, **kwargs)


def test_block_matching_rejects_bad_images():
    im = rng.random((10, 20))
    with pytest.raises(GeometryError, match="equal shape, got \\(10, 20\\) and \\(10, 19\\)"):
        block_matching(im, im[:, :19], 4)
    with pytest.raises(GeometryError, match="max_disparity < image width 20"):
        block_matching(im, im, 20)
    bad = im.copy()
    bad[2, 3] = np.nan
    with pytest.raises(GeometryError, match="finite right, got 1 NaN"):
        block_matching(im, bad, 4)
    with pytest.raises(GeometryError, match="shape \\(H, W\\) or \\(H, W, 3\\)"):
        block_matching(rng.random((4, 5, 2)), rng.random((4, 5, 2)), 2)
    with pytest.raises(GeometryError, match="numeric image"):
        block_matching(im > 0.5, im > 0.5, 2)


def test_depth_and_bad_pixel_rate_reject_bad_input():
    with pytest.raises(GeometryError, match="focal_px > 0"):
        depth_from_disparity([1.0], 0.0, 1.0)
    with pytest.raises(GeometryError, match="finite doffs"):
        depth_from_disparity([1.0], 1.0, 1.0, doffs=np.nan)
    with pytest.raises(GeometryError, match="one \\(H, W\\) shape"):
        bad_pixel_rate(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(GeometryError, match="some valid ground-truth pixels"):
        bad_pixel_rate(np.zeros((3, 4)), np.full((3, 4), np.inf))
