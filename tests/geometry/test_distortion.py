"""Radial-tangential distortion against cv2.projectPoints, cv2.undistortPoints, a numeric
gradient and round trips."""

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.camera import intrinsics
from foveal.geometry.distortion import (
    distort,
    distortion_coefficients,
    distortion_jacobian,
    undistort,
    undistort_points,
)

rng = np.random.default_rng(3)
K = intrinsics(800.0, 780.0, 320.0, 240.0)  # OpenCV ignores skew: keep it 0 to compare
MILD = np.array([-0.28, 0.07, 1e-3, -5e-4, -0.01])        # a typical wide-ish lens
STRONG = np.array([-0.45, 0.25, 2e-3, 1e-3, -0.08])
RATIONAL = np.array([0.1, -0.05, 1e-3, 2e-3, 0.01, 0.3, -0.02, 0.005])


def cv2_distort(xy, dist):
    """Oracle: cv2.projectPoints of (x, y, 1) with R = 0, t = 0 and K = I is distort(x, y)."""
    obj = np.column_stack([xy, np.ones(len(xy))])
    out, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), np.eye(3), dist)
    return out.reshape(-1, 2)


@pytest.mark.parametrize("dist", [MILD[:4], MILD, STRONG, RATIONAL])
def test_distort_equals_cv2_project_points(dist):
    xy = rng.uniform(-0.5, 0.5, (200, 2))
    np.testing.assert_allclose(distort(xy, dist), cv2_distort(xy, dist), atol=1e-14)


def test_distortion_jacobian_equals_numeric_gradient():
    """Oracle: central differences of distort."""
    xy = rng.uniform(-0.5, 0.5, (20, 2))
    h = 1e-7
    for dist in (MILD, RATIONAL):
        numeric = np.stack([(distort(xy + h * e, dist) - distort(xy - h * e, dist)) / (2 * h)
                            for e in np.eye(2)], axis=2)
        np.testing.assert_allclose(distortion_jacobian(xy, dist), numeric, atol=1e-8)


@pytest.mark.parametrize("dist", [MILD, STRONG, RATIONAL])
def test_undistort_round_trips_to_machine_precision(dist):
    xy = rng.uniform(-0.5, 0.5, (500, 2))
    np.testing.assert_allclose(undistort(distort(xy, dist), dist), xy, atol=1e-13)


def test_undistort_points_equals_cv2_undistort_points_with_many_iterations():
    """Oracle: cv2.undistortPoints with a tight criterion (its fixed-point iteration, converged)."""
    xy = rng.uniform(-0.45, 0.45, (300, 2))
    pixels = distort(xy, MILD) @ K[:2, :2].T + K[:2, 2]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    ref = cv2.undistortPoints(pixels.reshape(-1, 1, 2), K, MILD, criteria=criteria).reshape(-1, 2)
    ours = undistort_points(pixels, K, MILD, normalised=True)
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    np.testing.assert_allclose(ours, xy, atol=1e-12)
    ref_pix = cv2.undistortPoints(pixels.reshape(-1, 1, 2), K, MILD, P=K,
                                  criteria=criteria).reshape(-1, 2)
    np.testing.assert_allclose(undistort_points(pixels, K, MILD), ref_pix, atol=1e-7)


def test_undistort_newton_beats_opencv_default_five_fixed_point_iterations():
    """Pitfall: a few fixed-point iterations (cv2.undistortPoints' default) leave pixel-sized
    errors under strong distortion; Newton converges. Oracle: the known undistorted points."""
    xy = rng.uniform(-0.6, 0.6, (300, 2))
    xy_d = distort(xy, STRONG)
    ref = cv2.undistortPoints(xy_d.reshape(-1, 1, 2), np.eye(3), STRONG).reshape(-1, 2)
    assert 800 * np.abs(ref - xy).max() > 0.5  # over half a pixel at f = 800
    np.testing.assert_allclose(undistort(xy_d, STRONG), xy, atol=1e-12)


def test_undistort_outside_the_invertible_region_is_nan_not_a_wrong_point():
    """Closed form: with k₁ = −0.5 alone, r_d = r (1 − 0.5 r²) peaks at r = √(2/3), r_d ≈ 0.544;
    a distorted radius of 0.7 has no preimage at all."""
    dist = [-0.5, 0.0, 0.0, 0.0]
    out = undistort([[0.7, 0.0], [0.3, 0.0]], dist)
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(distort(out[1:], dist), [[0.3, 0.0]], atol=1e-14)


def test_undistort_rejects_exact_roots_beyond_the_fold():
    """Pitfall: Newton can converge to an exact but unphysical root. With k₁ = −0.5 the point
    (a, a), a³ − a + 5 = 0 (a ≈ −1.904, closed form), distorts exactly to (5, 5) because
    f(r²) = 1 − 0.5 r² < 0 mirrors it through the centre; it lies beyond the fold r² = 2/3
    (1 + 3k₁r² = 0), so (5, 5) has no physical undistorted position."""
    dist = [-0.5, 0.0, 0.0, 0.0]
    a = np.roots([1.0, 0.0, -1.0, 5.0])
    a = a[np.abs(a.imag) < 1e-12].real[0]
    np.testing.assert_allclose(distort([[a, a]], dist), [[5.0, 5.0]], atol=1e-12)
    assert np.isnan(undistort([[5.0, 5.0]], dist)).all()
    inside = 0.999 * np.sqrt(2 / 3)  # just inside the fold: still invertible
    np.testing.assert_allclose(undistort(distort([[inside, 0.0]], dist), dist), [[inside, 0.0]],
                               atol=1e-6)


def test_undistort_points_honours_skew_closed_form():
    """Closed form: with skew s, u = f_x x_d + s y_d + c_x (HZ eq. 6.10), which
    cv2.undistortPoints ignores; our pixels → normalised → pixels round trip keeps it."""
    K_skew = intrinsics(800.0, 780.0, 320.0, 240.0, skew=2.0)
    xy = rng.uniform(-0.4, 0.4, (50, 2))
    pixels = distort(xy, MILD) @ K_skew[:2, :2].T + K_skew[:2, 2]
    np.testing.assert_allclose(undistort_points(pixels, K_skew, MILD, normalised=True), xy,
                               atol=1e-12)
    np.testing.assert_allclose(undistort_points(pixels, K_skew, MILD),
                               xy @ K_skew[:2, :2].T + K_skew[:2, 2], atol=1e-9)


def test_no_distortion_is_the_identity():
    xy = rng.uniform(-1, 1, (10, 2))
    np.testing.assert_array_equal(distort(xy, None), xy)
    np.testing.assert_array_equal(undistort(xy, np.zeros(5)), xy)
    np.testing.assert_allclose(undistort_points(xy * 100 + 300, K, None), xy * 100 + 300,
                               atol=1e-12)


def test_coefficients_accept_opencv_shapes_and_pad_with_zeros():
    np.testing.assert_array_equal(distortion_coefficients(np.ones((1, 5))),
                                  [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(distortion_coefficients(None), np.zeros(8))


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: distort(np.zeros((3, 2)), [0.1, 0.2, 0.3]), "4, 5 or 8 coefficients"),
     (lambda: distort(np.zeros((3, 2)), [np.nan, 0, 0, 0]), "finite dist"),
     (lambda: distort(np.zeros((3, 3)), MILD), r"xy of shape \(N, 2\)"),
     (lambda: undistort([[np.inf, 0.0]], MILD), "finite xy_distorted"),
     (lambda: undistort_points(np.zeros((2, 2)), np.ones((3, 3)), MILD), "upper triangular")],
)
def test_bad_input_raises_one_line_geometry_error(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
