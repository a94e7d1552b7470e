"""Dense disparity of a rectified stereo pair by block matching, and depth from disparity.

In a rectified pair both cameras share ``K`` and orientation and sit ``B`` apart along ``x``, so
a scene point seen at ``(x_L, y)`` in the left image lies on the same row in the right image, at
``x_R = x_L − d``. The disparity ``d ≥ 0`` and the depth ``Z`` are related by similar triangles
(Szeliski 2022 §12.1; HZ §11.12 for rectification),

    Z = f · B / (d + doffs),

with ``f`` the focal length in pixels and ``doffs = c_x,R − c_x,L`` the difference of the
principal points (0 when both images were rectified onto the same principal point).

Block matching compares a ``b × b`` window around each left pixel with the window around
``(x − d, y)`` in the right image for every ``d ∈ [d_min, d_max]``: the cost volume
``C[d, y, x]``. Two costs, each a mean over the window ``W(x, y)``:

    SAD:  C = 1/|W| Σ_W |I_L(u, v) − I_R(u − d, v)|
    NCC:  C = 1 − Σ_W (I_L − μ_L)(I_R − μ_R) / sqrt(Σ_W (I_L − μ_L)² · Σ_W (I_R − μ_R)²)

with ``μ`` the window means (zero-mean NCC, invariant to a gain and an offset of either image,
which SAD is not). Window sums are box filters (running sums, ``O(1)`` per pixel whatever ``b``),
one pass per disparity. Near the image border the window is clipped to the pixels that exist in
both images (rows inside the image, columns ``u`` with ``0 ≤ u − d`` and ``u < W``) and the mean
is over those, so every left pixel whose match ``x − d`` lies inside the right image gets a cost;
the others get ``+inf``.

Winner-take-all picks ``d̂ = argmin_d C[d, y, x]``. The left-right consistency check matches the
other way too, ``d_R(x_R) = argmin_d C[d, y, x_R + d]`` (the same volume read along the diagonal),
and rejects ``x`` where ``|d̂(x) − d_R(x − d̂(x))| > tolerance``: occluded pixels and most
mismatches fail it. Sub-pixel refinement fits a curve through ``C`` at ``d̂ − 1, d̂, d̂ + 1``.

References: D. Scharstein and R. Szeliski, "A taxonomy and evaluation of dense two-frame stereo
correspondence algorithms", IJCV 47, 2002; M. Shimizu and M. Okutomi, "Sub-pixel estimation
error cancellation on area-based matching", IJCV 63(3), 2005 (which interpolant suits which
cost); R. Szeliski, *Computer Vision: Algorithms and Applications*, 2nd ed., 2022, §12.1
(disparity and depth); HZ §11.12 (rectification).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import uniform_filter1d

from foveal.errors import GeometryError
from foveal.geometry.image import to_grey
from foveal.geometry.validate import positive

Cost = Literal["sad", "ncc"]
SubpixelFit = Literal["parabola", "equiangular"]

# a window whose variance (images scaled to unit global variance) is below this is flat: NCC is 0/0
_FLAT_VARIANCE = 1e-9


def _integer(value: object, op: str, name: str, minimum: int) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise GeometryError(f"{op}: expected {name} as an integer, got {value!r}") from None
    if v < minimum:
        raise GeometryError(f"{op}: expected {name} ≥ {minimum}, got {v}")
    return v


def _pair(left: ArrayLike, right: ArrayLike, op: str) -> tuple[np.ndarray, np.ndarray]:
    L, R = to_grey(left, op=op, name="left"), to_grey(right, op=op, name="right")
    if L.shape != R.shape:
        raise GeometryError(f"{op}: expected left and right images of equal shape, got "
                            f"{L.shape} and {R.shape}")
    return L, R


def _counts(n: int, r: int) -> np.ndarray:
    """Pixels in each window ``[i − r, i + r]`` clipped to ``[0, n)``."""
    i = np.arange(n)
    return np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1


def _window_mean(a: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over ``[i − r, i + r]`` along ``axis`` of a 2-D array, clipped to the array: a running
    sum, not a convolution, so its cost does not grow with ``r``."""
    n = a.shape[axis]
    s = uniform_filter1d(a, 2 * r + 1, axis=axis, mode="constant")
    # uniform_filter1d zero-pads and divides by 2r + 1: rescale the clipped windows, only the
    # r at either end
    edge = np.unique(np.r_[0:min(r, n), max(n - r, 0):n])
    scale = (2 * r + 1) / _counts(n, r)[edge]
    if axis == 0:
        s[edge] *= scale[:, None]
    else:
        s[:, edge] *= scale
    return s


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the ``(2r + 1)²`` window clipped to the array (two running sums)."""
    return _window_mean(_window_mean(a, r, 0), r, 1)


def _zncc_window_stats(v: np.ndarray, v2: np.ndarray, whole: tuple[np.ndarray, np.ndarray],
                       lo: int, hi: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Window mean ``μ`` and ``1/σ`` (0 where flat) of an image over columns ``lo ≤ u < hi``.

    ``v``, ``v2``: the image and its square already averaged over rows; ``whole``: the answer
    for ``lo, hi = 0, W``. Cutting the image at ``lo`` or ``hi`` changes only the ``r`` columns
    next to the cut, so only those are recomputed, on a strip ``2r`` wide.
    """
    n = hi - lo
    mean, inv_std = whole[0][:, lo:hi].copy(), whole[1][:, lo:hi].copy()
    strips = []  # (first column of the strip, its end, the part of it to keep, where it goes)
    if n <= 2 * r:
        strips.append((lo, hi, slice(0, n), slice(0, n)))
    else:
        if lo > 0 and r:
            strips.append((lo, lo + 2 * r, slice(0, r), slice(0, r)))
        if hi < v.shape[1] and r:
            strips.append((hi - 2 * r, hi, slice(r, 2 * r), slice(n - r, n)))
    for a, b, keep, to in strips:
        m, m2 = _window_mean(v[:, a:b], r, 1), _window_mean(v2[:, a:b], r, 1)
        mean[:, to], inv_std[:, to] = m[:, keep], _inverse_std(m, m2)[:, keep]
    return mean, inv_std


def _inverse_std(mean: np.ndarray, mean_sq: np.ndarray) -> np.ndarray:
    """``1/σ`` from ``σ² = E[I²] − E[I]²``; 0 for a flat window, whose correlation is 0/0."""
    var = mean_sq - mean * mean
    return np.where(var > _FLAT_VARIANCE, 1.0 / np.sqrt(np.maximum(var, _FLAT_VARIANCE)), 0.0)


def cost_volume(left: ArrayLike, right: ArrayLike, max_disparity: int, *, block_size: int = 9,
                cost: Cost = "sad", min_disparity: int = 0) -> np.ndarray:
    """Matching cost ``C[k, y, x]`` of left pixel ``(x, y)`` at disparity ``d = min_disparity + k``.

    ``left`` and ``right``: a rectified pair, (H, W) grey or (H, W, 3) RGB, of equal shape.
    Disparities run over ``min_disparity ≤ d ≤ max_disparity`` (both included, ``d ≥ 0``: the match
    of ``x`` is ``x − d``). ``block_size`` is the odd window side ``b``. ``cost``: ``"sad"`` (mean
    absolute difference over the window, in image units) or ``"ncc"`` (``1 − ZNCC``, in [0, 2]).
    See the module docstring for the formulas and the border rule.

    Returns a (D, H, W) float32 array (``4·D·H·W`` bytes: 95 MB for 64 disparities at
    500 × 741), ``D = max_disparity − min_disparity + 1``; ``+inf`` where
    ``x − d < 0`` (no match inside the right image) and, for NCC, where the left window is flat
    (zero variance: correlation undefined). A flat right window against a textured left one
    scores NCC 0 (cost 1), uncorrelated.
    """
    op = "cost_volume"
    L, R = _pair(left, right, op)
    H, W = L.shape
    b = _integer(block_size, op, "block_size", 1)
    if b % 2 == 0:
        raise GeometryError(f"{op}: expected an odd block_size, got {b}")
    d0 = _integer(min_disparity, op, "min_disparity", 0)
    d1 = _integer(max_disparity, op, "max_disparity", d0)
    if d1 >= W:
        raise GeometryError(f"{op}: expected max_disparity < image width {W}, got {d1}")
    if cost not in ("sad", "ncc"):
        raise GeometryError(f"{op}: expected cost 'sad' or 'ncc', got {cost!r}")
    if cost == "ncc" and b == 1:
        raise GeometryError(f"{op}: expected block_size ≥ 3 for NCC (a 1-pixel window has no "
                            "variance), got 1")
    r = b // 2
    volume = np.full((d1 - d0 + 1, H, W), np.inf, dtype=np.float32)

    if cost == "sad":
        for k, d in enumerate(range(d0, d1 + 1)):
            # the overlap: left columns d..W−1 against right columns 0..W−1−d
            volume[k, :, d:] = _box_mean(np.abs(L[:, d:] - R[:, : W - d]), r)
        return volume

    # ZNCC is invariant to a gain and offset per image, so standardising each image changes no
    # correlation; it keeps E[I²] − E[I]² away from catastrophic cancellation
    L = (L - L.mean()) / (L.std() or 1.0)
    R = (R - R.mean()) / (R.std() or 1.0)
    # rows are never shifted: average over rows once; per d only the columns change
    vL, vLL, vR, vRR = (_window_mean(a, r, 0) for a in (L, L * L, R, R * R))
    mL, mR = _window_mean(vL, r, 1), _window_mean(vR, r, 1)
    whole_L = mL, _inverse_std(mL, _window_mean(vLL, r, 1))
    whole_R = mR, _inverse_std(mR, _window_mean(vRR, r, 1))
    for k, d in enumerate(range(d0, d1 + 1)):
        mL, sL = _zncc_window_stats(vL, vLL, whole_L, d, W, r)  # left columns d..W−1
        mR, sR = _zncc_window_stats(vR, vRR, whole_R, 0, W - d, r)  # right columns 0..W−1−d
        mLR = _box_mean(L[:, d:] * R[:, : W - d], r)
        # ZNCC = (E[LR] − E[L] E[R]) / (σ_L σ_R); 0 against a flat right window
        ncc = (mLR - mL * mR) * sL * sR
        volume[k, :, d:] = np.where(sL > 0, 1.0 - np.clip(ncc, -1.0, 1.0), np.inf)
    return volume


def _winner(volume: np.ndarray) -> np.ndarray:
    """Index of the lowest cost along axis 0 (the first on ties); −1 where every cost is inf."""
    k = np.argmin(volume, axis=0)
    best = np.take_along_axis(volume, k[None], axis=0)[0]
    return np.where(np.isfinite(best), k, -1)


def _right_winner(volume: np.ndarray, d0: int) -> np.ndarray:
    """Winner-take-all for the right image, ``argmin_k C[k, y, x_R + d]`` with ``d = d0 + k``:
    right pixel ``x_R`` at disparity ``d`` is left pixel ``x_R + d``, so the right image's costs
    are the left volume read along a diagonal, no second volume needed."""
    D, H, W = volume.shape
    best = np.full((H, W), np.inf, dtype=volume.dtype)
    winner = np.full((H, W), -1)
    for k in range(D):
        d = d0 + k
        c = volume[k, :, d:]
        better = c < best[:, : W - d]
        np.copyto(best[:, : W - d], c, where=better)
        np.copyto(winner[:, : W - d], k, where=better)
    return winner


def _subpixel_offset(c_minus: np.ndarray, c0: np.ndarray, c_plus: np.ndarray,
                     fit: SubpixelFit) -> np.ndarray:
    """Offset ``δ ∈ [−½, ½]`` of the minimum of the curve through ``(−1, c₋), (0, c₀), (1, c₊)``.

    parabola:     δ = (c₋ − c₊) / (2 (c₋ − 2 c₀ + c₊))
    equiangular:  δ = (c₋ − c₊) / (2 (max(c₋, c₊) − c₀))   (two lines of opposite slope)

    A cost that grows like ``|δd|`` near its minimum (SAD) is matched by the equiangular fit; a
    parabola on it pulls estimates towards whole pixels ("pixel locking", Shimizu & Okutomi 2005).
    ``δ = 0`` where the fit is undefined (a neighbour is inf, or the three costs are equal).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        if fit == "parabola":
            den = 2 * (c_minus - 2 * c0 + c_plus)
        else:
            den = 2 * (np.maximum(c_minus, c_plus) - c0)
        delta = (c_minus - c_plus) / den
    ok = np.isfinite(delta) & (den > 0)
    return np.where(ok, np.clip(delta, -0.5, 0.5), 0.0)


def block_matching(left: ArrayLike, right: ArrayLike, max_disparity: int, *,
                   block_size: int = 9, cost: Cost = "sad", min_disparity: int = 0,
                   left_right_check: bool = True, lr_tolerance: int = 1,
                   subpixel: bool | SubpixelFit = True) -> np.ndarray:
    """Disparity of every left pixel of a rectified pair by block matching and winner-take-all.

    ``left``, ``right``: (H, W) grey or (H, W, 3) RGB, uint8 or float, equal shapes; rectified so
    that left ``(x, y)`` matches right ``(x − d, y)``. Searches ``min_disparity ≤ d ≤
    max_disparity`` (integers, both included) with a ``block_size × block_size`` window and
    ``cost`` ``"sad"`` or ``"ncc"`` (see :func:`cost_volume`).

    ``left_right_check``: also match right to left and reject pixels where
    ``|d_L(x) − d_R(x − d_L(x))| > lr_tolerance`` (whole-pixel disparities). ``subpixel``: refine
    by the minimum of a curve through the costs at ``d − 1, d, d + 1``; ``True`` takes the curve
    matched to the cost (``"equiangular"`` for SAD, ``"parabola"`` for NCC), or name one.
    Winners at either end of the range are not refined.

    Returns (H, W) float32 disparities, NaN where no reliable disparity exists: no candidate
    inside the right image, a flat left window under NCC, or a failed left-right check.
    """
    op = "block_matching"
    tol = _integer(lr_tolerance, op, "lr_tolerance", 0)
    if subpixel is True:
        fit: SubpixelFit | None = "equiangular" if cost == "sad" else "parabola"
    elif subpixel is False:
        fit = None
    elif subpixel in ("parabola", "equiangular"):
        fit = subpixel
    else:
        raise GeometryError(f"{op}: expected subpixel True, False, 'parabola' or 'equiangular', "
                            f"got {subpixel!r}")
    volume = cost_volume(left, right, max_disparity, block_size=block_size, cost=cost,
                         min_disparity=min_disparity)
    d0 = int(min_disparity)

    k = _winner(volume)
    valid = k >= 0
    if left_right_check:
        k_right = _right_winner(volume, d0)
        H, W = k.shape
        x_right = np.arange(W) - (d0 + k)  # ≥ 0 wherever k is valid: inf costs never win
        rows = np.arange(H)[:, None]
        back = k_right[rows, np.where(valid, x_right, 0)]
        valid &= (back >= 0) & (np.abs(k - back) <= tol)

    disparity = (d0 + k).astype(np.float64)
    if fit is not None:
        D = volume.shape[0]
        inner = valid & (k > 0) & (k < D - 1)
        ks = np.clip(k, 1, max(D - 2, 1))[None]
        c_minus, c0, c_plus = (
            np.take_along_axis(volume, np.clip(ks + s, 0, D - 1), 0)[0].astype(np.float64)
            for s in (-1, 0, 1))
        delta = _subpixel_offset(c_minus, c0, c_plus, fit)
        disparity += np.where(inner, delta, 0.0)
    return np.where(valid, disparity, np.nan).astype(np.float32)


def depth_from_disparity(disparity: ArrayLike, focal_px: float, baseline: float,
                         doffs: float = 0.0) -> np.ndarray:
    """Depth ``Z = f · B / (d + doffs)`` of each disparity (Szeliski 2022 §12.1, Middlebury's form).

    ``disparity`` any shape, in pixels, NaN/inf where missing; ``focal_px`` the focal length in
    pixels; ``baseline`` the camera distance in the unit wanted for ``Z``; ``doffs`` the
    difference of the principal points' x, ``c_x,right − c_x,left`` in pixels. Returns float64
    depths, NaN where the disparity is missing or ``d + doffs ≤ 0`` (at or beyond infinity).
    """
    op = "depth_from_disparity"
    f = positive(focal_px, op, "focal_px")
    B = positive(baseline, op, "baseline")
    try:
        offset = float(doffs)
    except (TypeError, ValueError):
        raise GeometryError(f"{op}: expected doffs as a number, got {doffs!r}") from None
    if not np.isfinite(offset):
        raise GeometryError(f"{op}: expected a finite doffs, got {offset}")
    try:
        d = np.asarray(disparity, dtype=np.float64)
    except (TypeError, ValueError):
        raise GeometryError(f"{op}: expected disparity as a numeric array, got "
                            f"{type(disparity).__name__}") from None
    den = d + offset
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(den) & (den > 0), f * B / den, np.nan)


@dataclass(frozen=True)
class BadPixelRate:
    """Error statistics of a disparity map against ground truth over ``valid`` GT pixels.

    ``rate``: fraction of valid pixels that are bad, a missing estimate counting as bad (the
    Middlebury v3 "all" convention, so a sparse map cannot look better by saying less).
    ``rate_estimated``: fraction bad among the valid pixels that have an estimate.
    ``density``: fraction of valid pixels that have an estimate. ``rate = 1 − density ·
    (1 − rate_estimated)``.
    """

    rate: float
    rate_estimated: float
    density: float
    valid: int


def bad_pixel_rate(disparity: ArrayLike, ground_truth: ArrayLike, threshold: float = 2.0,
                   mask: ArrayLike | None = None) -> BadPixelRate:
    """Share of pixels whose disparity error ``|d − d_gt|`` exceeds ``threshold`` pixels.

    ``disparity`` and ``ground_truth``: (H, W); a non-finite estimate is missing. Ground truth is
    valid where finite and > 0 (Middlebury marks unknown pixels inf, KITTI 0, others NaN; a true
    zero disparity is a point at infinity and has no depth anyway). ``mask`` (H, W) bool
    restricts the evaluation further (e.g. to non-occluded pixels). See :class:`BadPixelRate`
    for the two rates and the density.
    """
    op = "bad_pixel_rate"
    t = positive(threshold, op, "threshold")
    d = np.asarray(disparity, dtype=np.float64)
    gt = np.asarray(ground_truth, dtype=np.float64)
    if d.ndim != 2 or d.shape != gt.shape:
        raise GeometryError(f"{op}: expected disparity and ground_truth of one (H, W) shape, "
                            f"got {d.shape} and {gt.shape}")
    valid = np.isfinite(gt) & (gt > 0)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != gt.shape:
            raise GeometryError(f"{op}: expected mask of shape {gt.shape}, got {m.shape}")
        valid &= m.astype(bool)
    n = int(valid.sum())
    if n == 0:
        raise GeometryError(f"{op}: expected some valid ground-truth pixels (finite, > 0), got 0")
    estimated = valid & np.isfinite(d)
    bad = estimated & (np.abs(np.where(estimated, d, 0.0) - gt) > t)
    m_est = int(estimated.sum())
    n_bad = int(bad.sum())
    return BadPixelRate(rate=(n_bad + n - m_est) / n,
                        rate_estimated=n_bad / m_est if m_est else float("nan"),
                        density=m_est / n, valid=n)
