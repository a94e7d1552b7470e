"""The fundamental matrix against cv2.findFundamentalMat (FM_8POINT, FM_7POINT, FM_RANSAC) and the
ground-truth F = K₂⁻ᵀ [t]× R K₁⁻¹ of synthetic scenes (0.5 px noise, 30–40 % outliers)."""

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.epipolar import _signed_sampson, sampson_distance
from foveal.geometry.fundamental import (
    _sampson_jacobian,
    find_fundamental,
    fundamental_7point,
    fundamental_8point,
)
from foveal.geometry.rotation import exp_so3, hat

K1 = np.array([[800.0, 0.0, 320.0], [0.0, 780.0, 240.0], [0.0, 0.0, 1.0]])
K2 = np.array([[700.0, 0.0, 330.0], [0.0, 700.0, 230.0], [0.0, 0.0, 1.0]])
R = exp_so3([0.05, -0.2, 0.03])
t = np.array([-1.0, 0.1, 0.2])
F_TRUE = np.linalg.inv(K2).T @ hat(t) @ R @ np.linalg.inv(K1)


def same_up_to_scale(A, B):
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    return min(np.abs(A - B).max(), np.abs(A + B).max())


def project(X):
    x1 = X @ K1.T
    x2 = (X @ R.T + t) @ K2.T
    return x1[:, :2] / x1[:, 2:], x2[:, :2] / x2[:, 2:]


def scene(n=200, seed=0, noise=0.5, outliers=0.0, X=None):
    """Points in front of both cameras, their clean and noisy pixels, and an outlier mask
    (outliers: the second pixel replaced by a uniform one in the 640 × 480 image)."""
    rng = np.random.default_rng(seed)
    if X is None:
        X = rng.uniform([-2, -2, 4], [2, 2, 8], (n, 3))
    c1, c2 = project(X)
    x1 = c1 + rng.normal(0, noise, c1.shape)
    x2 = c2 + rng.normal(0, noise, c2.shape)
    bad = rng.random(len(X)) < outliers
    x2[bad] = rng.uniform([0, 0], [640, 480], (int(bad.sum()), 2))
    return x1, x2, c1, c2, bad


def test_eight_point_is_exact_on_noise_free_points_closed_form():
    x1, x2, *_ = scene(noise=0.0)
    assert same_up_to_scale(fundamental_8point(x1, x2), F_TRUE) < 1e-12


def test_eight_point_equals_cv2_fm_8point_and_numpy_svd_of_the_normalised_system():
    """Oracles: cv2.findFundamentalMat(FM_8POINT), the same algorithm (Hartley normalisation,
    rank 2 before de-normalising), and the textbook steps spelled out with numpy's SVD of the
    N × 9 normalised design matrix (HZ Algorithm 11.1) — the latter to round-off (the 9 × 9
    normal matrix costs nothing here); OpenCV agrees to ~1e-9."""
    x1, x2, *_ = scene(noise=0.5)
    ref, _ = cv2.findFundamentalMat(x1, x2, cv2.FM_8POINT)
    ours = fundamental_8point(x1, x2)
    assert same_up_to_scale(ours, ref) < 1e-7
    T = []
    for x in (x1, x2):
        c = x.mean(0)
        s = np.sqrt(2) / np.linalg.norm(x - c, axis=1).mean()
        T.append(np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]]))
    y1 = np.column_stack([x1, np.ones(len(x1))]) @ T[0].T
    y2 = np.column_stack([x2, np.ones(len(x2))]) @ T[1].T
    A = np.column_stack([y2[:, :1] * y1, y2[:, 1:2] * y1, y1])
    U, s, Vt = np.linalg.svd(np.linalg.svd(A)[2][-1].reshape(3, 3))
    textbook = T[1].T @ U @ np.diag([s[0], s[1], 0.0]) @ Vt @ T[0]
    assert same_up_to_scale(ours, textbook) < 1e-12
    assert np.isclose(np.linalg.norm(ours), 1.0) and ours.flat[np.abs(ours).argmax()] > 0


def test_fundamental_is_rank_two():
    """Pitfall: the least-squares solution of A f = 0 with noise is full rank (no epipole);
    zeroing the smallest singular value makes σ₃ vanish to round-off. Oracle: numpy's SVD."""
    x1, x2, *_ = scene(noise=1.0)
    s = np.linalg.svd(fundamental_8point(x1, x2), compute_uv=False)
    assert s[2] < 1e-12 * s[1]
    for F in fundamental_7point(x1[:7], x2[:7]):
        s = np.linalg.svd(F, compute_uv=False)
        assert s[2] < 1e-12 * s[0]


def test_eight_point_without_normalisation_is_worse():
    """Pitfall: the 8-point algorithm on raw pixels (HZ §11.2 warns, Hartley 1997 shows) mixes
    columns of size ~10⁵ and 1: the design matrix's condition number (σ₁/σ₈, numpy's SVD) is
    ~10³ times larger, and the epipolar (Sampson) error of the clean points under the estimate
    is about twice as large as with Hartley normalisation."""
    x1, x2, c1, c2, _ = scene(n=100, seed=4, noise=1.0)
    h1 = np.column_stack([x1, np.ones(100)])
    A = np.column_stack([x2[:, :1] * h1, x2[:, 1:] * h1, h1])  # rows x̃₂ ⊗ x̃₁ in pixels
    U, s, Vt = np.linalg.svd(np.linalg.svd(A)[2][-1].reshape(3, 3))
    raw = U @ np.diag([s[0], s[1], 0.0]) @ Vt
    err_raw = sampson_distance(raw, c1, c2).mean()
    err_norm = sampson_distance(fundamental_8point(x1, x2), c1, c2).mean()
    assert err_raw > 1.5 * err_norm, (err_raw, err_norm)
    sa = np.linalg.svd(A, compute_uv=False)
    y = [(x - x.mean(0)) / np.linalg.norm(x - x.mean(0), axis=1).mean() for x in (x1, x2)]
    g1 = np.column_stack([y[0], np.ones(100)])
    sn = np.linalg.svd(np.column_stack([y[1][:, :1] * g1, y[1][:, 1:] * g1, g1]),
                       compute_uv=False)
    assert sa[0] / sa[7] > 1e3 * sn[0] / sn[7]


def test_seven_point_solutions_equal_cv2_fm_7point():
    """Oracle: cv2.findFundamentalMat(FM_7POINT), which stacks its k real solutions 3k × 3;
    noise-free, one of them is the true F (closed form)."""
    for seed in range(5):
        x1, x2, *_ = scene(n=7, seed=seed, noise=0.0)
        ours = fundamental_7point(x1, x2)
        ref = cv2.findFundamentalMat(x1, x2, cv2.FM_7POINT)[0].reshape(-1, 3, 3)
        assert len(ours) == len(ref)
        for F in ref:
            assert min(same_up_to_scale(F, G) for G in ours) < 1e-6
        assert min(same_up_to_scale(F_TRUE, G) for G in ours) < 1e-9


@pytest.mark.parametrize(("outliers", "solver"), [(0.3, "7point"), (0.4, "7point"),
                                                  (0.3, "8point")])
def test_find_fundamental_ransac_matches_or_beats_cv2_fm_ransac(outliers, solver):
    """Oracle: cv2.findFundamentalMat(FM_RANSAC, 1 px, 0.999) on the same matches and the
    ground truth. Compared by the Sampson error of the clean (noise-free) inlier pixels under
    each F: ours within 10 % of OpenCV's or better, and within 0.5 px; inliers found with
    ≥ 90 % recall and ≥ 95 % precision."""
    x1, x2, c1, c2, bad = scene(n=300, seed=1, noise=0.5, outliers=outliers)
    F, inliers = find_fundamental(x1, x2, threshold=1.0, solver=solver)
    ref, _ = cv2.findFundamentalMat(x1, x2, cv2.FM_RANSAC, 1.0, 0.999)
    ours_err = sampson_distance(F, c1[~bad], c2[~bad]).mean()
    ref_err = sampson_distance(ref, c1[~bad], c2[~bad]).mean()
    assert ours_err < max(1.1 * ref_err, 0.05) and ours_err < 0.5, (ours_err, ref_err)
    assert (inliers & ~bad).sum() >= 0.9 * (~bad).sum()
    assert (inliers & ~bad).sum() >= 0.95 * inliers.sum()
    np.testing.assert_allclose(np.linalg.svd(F, compute_uv=False)[2], 0.0, atol=1e-14)


def test_find_fundamental_refinement_lowers_the_sampson_error_of_the_inliers():
    """Oracle: the cost being minimised — the Sampson error over the inliers — and the truth."""
    x1, x2, c1, c2, bad = scene(n=200, seed=2, noise=0.5, outliers=0.3)
    F0, in0 = find_fundamental(x1, x2, refine=False)
    F1, in1 = find_fundamental(x1, x2, refine=True)
    both = in0 & in1
    assert (sampson_distance(F1, x1[both], x2[both]) ** 2).sum() \
        <= (sampson_distance(F0, x1[both], x2[both]) ** 2).sum()
    assert sampson_distance(F1, c1[~bad], c2[~bad]).mean() < 0.3


def test_sampson_jacobian_of_the_refinement_equals_a_numeric_gradient():
    """Oracle: central differences of the signed Sampson residuals in each entry of F (a
    generic F and points of unit scale, so that one step size suits every entry)."""
    rng = np.random.default_rng(8)
    F, x1, x2 = rng.normal(size=(3, 3)), rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    h1 = np.column_stack([x1, np.ones(20)])
    h2 = np.column_stack([x2, np.ones(20)])
    r, grad = _sampson_jacobian(F, h1, h2)
    np.testing.assert_allclose(r, _signed_sampson(F, x1, x2), rtol=1e-12)
    for i in range(3):
        for j in range(3):
            dF = np.zeros((3, 3))
            dF[i, j] = 1e-6
            numeric = (_signed_sampson(F + dF, x1, x2) - _signed_sampson(F - dF, x1, x2)) / 2e-6
            np.testing.assert_allclose(grad[:, i, j], numeric, rtol=1e-6, atol=1e-8)


def test_find_fundamental_is_reproducible_for_a_seed():
    x1, x2, *_ = scene(n=150, seed=3, outliers=0.3)
    Fa, ia = find_fundamental(x1, x2, seed=7)
    Fb, ib = find_fundamental(x1, x2, seed=7)
    np.testing.assert_array_equal(Fa, Fb)
    np.testing.assert_array_equal(ia, ib)


def test_find_fundamental_methods_8point_and_7point_are_the_linear_algorithms():
    """Oracle: fundamental_8point / fundamental_7point (and so cv2's FM_8POINT / FM_7POINT)."""
    x1, x2, *_ = scene(n=50, seed=5)
    F, inliers = find_fundamental(x1, x2, method="8point", threshold=1.5)
    np.testing.assert_array_equal(F, fundamental_8point(x1, x2))
    np.testing.assert_array_equal(inliers, sampson_distance(F, x1, x2) < 1.5)
    F7, mask = find_fundamental(x1[:7], x2[:7], method="7point")
    assert F7.ndim == 3 and F7.shape[1:] == (3, 3) and mask.all()


def plane_points(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -2, 0], [2, 2, 0], (n, 3))
    X[:, 2] = 5.0 + 0.3 * X[:, 0] - 0.2 * X[:, 1]
    return X


def test_planar_scene_is_degenerate_for_the_fundamental_matrix():
    """HZ §11.9: points on one plane are related by a homography H and every F = [e₂]× H fits
    them. Exact data: the 8-point system has a 3-D null space (raised); noisy data with
    outliers: RANSAC would return an arbitrary member of the family — raised instead."""
    x1, x2, *_ = scene(X=plane_points(100, 0), noise=0.0)
    with pytest.raises(GeometryError, match="degenerate"):
        fundamental_8point(x1, x2)
    x1, x2, *_ = scene(X=plane_points(200, 1), noise=0.5, outliers=0.3)
    with pytest.raises(GeometryError, match="degenerate: a homography explains"):
        find_fundamental(x1, x2)
    x1, x2, *_ = scene(X=plane_points(100, 2), noise=0.5)
    with pytest.raises(GeometryError, match="degenerate: a homography explains"):
        find_fundamental(x1, x2, method="8point")


def test_dominant_plane_with_some_parallax_still_gives_the_true_fundamental_matrix():
    """Pitfall (Chum et al., CVPR 2005): 90 % of the points on one plane make most 7-point
    samples planar, and plain RANSAC settles for a plane-induced F that ignores the few
    off-plane points. Plane and parallax (HZ §13.3) recovers it. Oracle: the ground truth."""
    X = plane_points(200, 3)
    X[:20, 2] += np.random.default_rng(9).uniform(-1.5, 1.5, 20)
    x1, x2, c1, c2, bad = scene(X=X, seed=2, noise=0.5, outliers=0.3)
    for seed in range(3):
        F, inliers = find_fundamental(x1, x2, seed=seed)
        assert sampson_distance(F, c1[~bad], c2[~bad]).mean() < 0.5
        assert (inliers[:20] & ~bad[:20]).sum() >= 0.8 * (~bad[:20]).sum()


def test_pure_rotation_is_degenerate_for_the_fundamental_matrix():
    """No baseline: x̃₂ ∼ K₂ R K₁⁻¹ x̃₁ for every point (a homography), F undetermined."""
    rng = np.random.default_rng(6)
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (200, 3))
    x1 = X @ K1.T
    x2 = (X @ R.T) @ K2.T
    x1 = x1[:, :2] / x1[:, 2:] + rng.normal(0, 0.5, (200, 2))
    x2 = x2[:, :2] / x2[:, 2:] + rng.normal(0, 0.5, (200, 2))
    with pytest.raises(GeometryError, match="degenerate"):
        find_fundamental(x1, x2)


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: fundamental_8point(np.zeros((7, 2)), np.zeros((7, 2))),
      "at least 8 correspondences, got 7"),
     (lambda: fundamental_7point(np.ones((8, 2)), np.ones((8, 2))), "exactly 7"),
     (lambda: fundamental_8point(np.zeros((9, 2)), np.zeros((8, 2))), r"x2 of shape \(9, 2\)"),
     (lambda: find_fundamental(np.full((9, 2), np.nan), np.zeros((9, 2))), "finite x1"),
     (lambda: find_fundamental(np.zeros((9, 3)), np.zeros((9, 3))), r"x1 of shape \(N, 2\)"),
     (lambda: find_fundamental(np.zeros((9, 2)), np.zeros((9, 2)), method="lmeds"),
      "method 'ransac', '8point' or '7point'"),
     (lambda: find_fundamental(np.zeros((9, 2)), np.zeros((9, 2)), threshold=0.0),
      "threshold > 0"),
     (lambda: find_fundamental(*scene(n=20)[:2], solver="5point"), "solver '7point'")],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
