"""Triangulation against cv2.triangulatePoints, numpy's SVD of the stacked DLT system, scipy's
least_squares, and closed forms (noise-free scenes, the common perpendicular, HZ eq. 6.15)."""

import cv2
import numpy as np
import pytest
from scipy.optimize import least_squares

from foveal.errors import GeometryError
from foveal.geometry.rotation import exp_so3
from foveal.geometry.triangulation import (
    in_front,
    point_depths,
    refine_points,
    triangulate_dlt,
    triangulate_midpoint,
    triangulate_nview,
    triangulation_angles,
)

K = np.array([[800.0, 0.0, 320.0], [0.0, 780.0, 240.0], [0.0, 0.0, 1.0]])


def camera(rvec, t):
    return K @ np.column_stack([exp_so3(rvec), t])


P1 = camera([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
P2 = camera([0.05, -0.2, 0.03], [-1.0, 0.1, 0.2])
P3 = camera([-0.1, 0.15, 0.0], [0.8, -0.3, 0.1])


def project(P, X):
    x = np.column_stack([X, np.ones(len(X))]) @ P.T
    return x[:, :2] / x[:, 2:]


def scene(n=200, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (n, 3))
    xs = [project(P, X) + rng.normal(0.0, noise, (n, 2)) for P in (P1, P2, P3)]
    return X, xs


def svd_dlt(Ps, xs):
    """Oracle: per point, the last right singular vector of the stacked 2M × 4 system."""
    out = []
    for i in range(xs[0].shape[0]):
        A = []
        for P, x in zip(Ps, xs, strict=True):
            A += [x[i, 0] * P[2] - P[0], x[i, 1] * P[2] - P[1]]
        v = np.linalg.svd(np.array(A))[2][-1]
        out.append(v[:3] / v[3])
    return np.array(out)


def test_dlt_is_exact_on_noise_free_points_closed_form():
    X, (x1, x2, _) = scene()
    np.testing.assert_allclose(triangulate_dlt(P1, P2, x1, x2), X, atol=1e-10)


def test_dlt_equals_cv2_triangulate_points_with_noise():
    """Oracle: cv2.triangulatePoints (homogeneous 4 × N, SVD per point), pixel noise 0.5."""
    X, (x1, x2, _) = scene(noise=0.5)
    ref = cv2.triangulatePoints(P1, P2, x1.T, x2.T)
    ref = (ref[:3] / ref[3]).T
    ours = triangulate_dlt(P1, P2, x1, x2)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    assert np.abs(ours - X).max() > 1e-3  # the noise did move the points


def test_dlt_equals_cv2_for_sign_flipped_general_cameras_in_a_projective_frame():
    """Oracle: cv2.triangulatePoints. A general 3 × 4 matrix need not be K [R | t] (here a
    random projective change of world frame ``P Q``), and its sign is arbitrary."""
    rng = np.random.default_rng(3)
    _, (x1, x2, _) = scene(50, noise=0.3)
    Q = rng.normal(size=(4, 4))
    Pa, Pb = -3.7 * P1 @ Q, 2.0 * P2 @ Q
    ref = cv2.triangulatePoints(Pa, Pb, x1.T, x2.T)
    np.testing.assert_allclose(triangulate_dlt(Pa, Pb, x1, x2), (ref[:3] / ref[3]).T,
                               rtol=1e-9, atol=1e-12)


def test_vectorised_null_vector_equals_numpy_svd_per_point_for_three_views():
    """Oracle: np.linalg.svd of each point's stacked 6 × 4 system (the adjugate shortcut)."""
    _, xs = scene(100, seed=1, noise=1.0)
    ours = triangulate_nview([P1, P2, P3], xs)
    np.testing.assert_allclose(ours, svd_dlt([P1, P2, P3], xs), rtol=1e-9, atol=1e-9)


def test_nview_with_two_views_is_dlt_and_honours_visibility():
    """Oracle: triangulate_dlt on the two visible views, and the numpy SVD for mixed masks."""
    _, (x1, x2, x3) = scene(60, seed=2, noise=0.5)
    np.testing.assert_allclose(triangulate_nview([P1, P2], [x1, x2]),
                               triangulate_dlt(P1, P2, x1, x2), rtol=1e-12)
    visible = np.ones((3, 60), dtype=bool)
    visible[0, :20] = False
    visible[2, 20:40] = False
    xs = np.stack([x1, x2, x3])
    xs[~visible] = np.nan  # unseen observations may be NaN
    ours = triangulate_nview([P1, P2, P3], xs, visible)
    np.testing.assert_allclose(ours[:20], triangulate_dlt(P2, P3, x2[:20], x3[:20]),
                               rtol=1e-9)
    np.testing.assert_allclose(ours[20:40], triangulate_dlt(P1, P2, x1[20:40], x2[20:40]),
                               rtol=1e-9)
    np.testing.assert_allclose(ours[40:], svd_dlt([P1, P2, P3], [x[40:] for x in (x1, x2, x3)]),
                               rtol=1e-9)


def test_midpoint_is_exact_without_noise_and_the_middle_of_the_common_perpendicular():
    """Closed forms: noise-free rays meet at X; with noise the segment between the two closest
    points is perpendicular to both rays (the midpoint method, HZ §12.1)."""
    X, (x1, x2, _) = scene(50)
    np.testing.assert_allclose(triangulate_midpoint(P1, P2, x1, x2), X, atol=1e-9)
    _, (y1, y2, _) = scene(50, seed=4, noise=2.0)
    M = triangulate_midpoint(P1, P2, y1, y2)
    C1, C2 = np.zeros(3), -exp_so3([0.05, -0.2, 0.03]).T @ np.array([-1.0, 0.1, 0.2])
    d1 = np.column_stack([y1, np.ones(50)]) @ np.linalg.inv(K).T
    d2 = (np.column_stack([y2, np.ones(50)]) @ np.linalg.inv(K).T) @ exp_so3([0.05, -0.2, 0.03])
    s1 = np.einsum("ij,ij->i", M - C1, d1) / np.einsum("ij,ij->i", d1, d1)
    s2 = np.einsum("ij,ij->i", M - C2, d2) / np.einsum("ij,ij->i", d2, d2)
    Q1, Q2 = C1 + s1[:, None] * d1, C2 + s2[:, None] * d2  # feet of M on the rays
    np.testing.assert_allclose(0.5 * (Q1 + Q2), M, atol=1e-9)
    gap = Q2 - Q1
    assert np.abs(np.einsum("ij,ij->i", gap, d1)).max() < 1e-9
    assert np.abs(np.einsum("ij,ij->i", gap, d2)).max() < 1e-9


def test_refine_points_reaches_the_scipy_least_squares_optimum():
    """Oracle: scipy.optimize.least_squares on each point's reprojection residuals (3 views)."""
    _, xs = scene(30, seed=5, noise=1.0)
    start = triangulate_nview([P1, P2, P3], xs)
    ours = refine_points([P1, P2, P3], xs, start, iterations=20)

    def residuals(Xi, i):
        return np.concatenate([project(P, Xi[None])[0] - x[i] for P, x in zip(
            (P1, P2, P3), xs, strict=True)])

    for i in range(30):
        ref = least_squares(residuals, start[i], args=(i,), xtol=1e-14, ftol=1e-14).x
        np.testing.assert_allclose(ours[i], ref, atol=1e-7)
    cost = lambda Y: sum(((project(P, Y) - x) ** 2).sum(1) for P, x in zip(  # noqa: E731
        (P1, P2, P3), xs, strict=True))
    assert np.all(cost(ours) <= cost(start) + 1e-12)


def test_depths_follow_hz_eq_6_15_and_flag_points_behind():
    """Closed form: for P = K [R | t] the depth is the z of R X + t, invariant to P's scale
    and sign; points behind a camera fail the cheirality test."""
    R, t = exp_so3([0.05, -0.2, 0.03]), np.array([-1.0, 0.1, 0.2])
    X = np.array([[0.0, 0.0, 5.0], [0.2, -0.1, -3.0], [0.5, 0.5, 0.5], [0.0, 0.0, 30.0]])
    np.testing.assert_allclose(point_depths(-2.5 * P2, X), (X @ R.T + t)[:, 2], rtol=1e-12)
    np.testing.assert_array_equal(in_front([P1, P2], X), (X[:, 2] > 0) & ((X @ R.T + t)[:, 2]
                                                                           > 0))
    assert list(in_front([P1, P2], X)) == [True, False, True, True]


def test_triangulation_angles_keep_their_digits_for_far_points_closed_form():
    """Closed form: centres 2 apart, a point at distance 1 on the bisector: 90°; at 10⁶: 2·10⁻⁶
    rad. Pitfall: ``acos`` of the cosine keeps only ~8 digits of an angle that small (the
    cosine is 1 − 2·10⁻¹²); ``atan2(‖a × b‖, a·b)`` keeps them all."""
    Pa = np.column_stack([np.eye(3), [1.0, 0.0, 0.0]])  # centre (−1, 0, 0)
    Pb = np.column_stack([np.eye(3), [-1.0, 0.0, 0.0]])  # centre (1, 0, 0)
    X = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1e6]])
    np.testing.assert_allclose(triangulation_angles(Pa, Pb, X), [90.0, 2 * np.degrees(1e-6)],
                               rtol=1e-9)


def test_parallel_rays_triangulate_to_nan_not_to_garbage():
    """A point at infinity: both views see the same direction from a pure translation."""
    Pa = K @ np.eye(3, 4)
    Pb = K @ np.column_stack([np.eye(3), [-1.0, 0.0, 0.0]])
    x = np.array([[320.0, 240.0]])
    assert np.isnan(triangulate_dlt(Pa, Pb, x, x)).all()
    assert np.isnan(triangulate_midpoint(Pa, Pb, x, x)).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: triangulate_dlt(P1, P2, np.zeros((3, 2)), np.zeros((4, 2))), r"x2 of shape \(3, 2\)"),
     (lambda: triangulate_dlt(P1, P2, [[np.nan, 1.0]], [[1.0, 1.0]]), "finite x1"),
     (lambda: triangulate_dlt(P1[:, :3], P2, np.zeros((1, 2)), np.zeros((1, 2))),
      "P1 as a 3×4 matrix"),
     (lambda: triangulate_dlt(np.zeros((3, 4)), P2, np.zeros((1, 2)), np.zeros((1, 2))),
      "P1 of rank 3"),
     (lambda: triangulate_nview([P1], np.zeros((1, 5, 2))), r"M ≥ 2"),
     (lambda: triangulate_nview([P1, P2], np.zeros((3, 5, 2))), r"xs of shape \(2, N, 2\)"),
     (lambda: triangulate_nview([P1, P2, P3], np.zeros((3, 5, 2)),
                                np.eye(3, 5, dtype=bool)), "at least 2 views"),
     (lambda: refine_points([P1, P2], np.zeros((2, 5, 2)), np.zeros((4, 3))),
      r"X of shape \(5, 3\)")],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
