"""Epipolar geometry against cv2.computeCorrespondEpilines, cv2.sampsonDistance,
cv2.correctMatches (the optimal, reprojection-error correction) and closed forms
(F = K₂⁻ᵀ [t]× R K₁⁻¹, epipoles as images of the camera centres)."""

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.epipolar import (
    epipolar_lines,
    epipoles,
    essential_from_fundamental,
    fundamental_from_essential,
    fundamental_from_projections,
    sampson_distance,
    symmetric_epipolar_distance,
)
from foveal.geometry.rotation import exp_so3, hat

K1 = np.array([[800.0, 0.0, 320.0], [0.0, 780.0, 240.0], [0.0, 0.0, 1.0]])
K2 = np.array([[650.0, 2.0, 300.0], [0.0, 660.0, 250.0], [0.0, 0.0, 1.0]])
R = exp_so3([0.05, -0.2, 0.03])
t = np.array([-1.0, 0.1, 0.2])
E_TRUE = hat(t) @ R
F_TRUE = np.linalg.inv(K2).T @ E_TRUE @ np.linalg.inv(K1)
P1 = K1 @ np.eye(3, 4)
P2 = K2 @ np.column_stack([R, t])


def same_up_to_scale(A, B, atol=1e-10):
    A, B = A / np.linalg.norm(A), B / np.linalg.norm(B)
    return min(np.abs(A - B).max(), np.abs(A + B).max()) < atol


def scene(n=100, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform([-2, -2, 4], [2, 2, 8], (n, 3))
    x1 = X @ K1.T
    x2 = (X @ R.T + t) @ K2.T
    x1 = x1[:, :2] / x1[:, 2:] + rng.normal(0, noise, (n, 2))
    x2 = x2[:, :2] / x2[:, 2:] + rng.normal(0, noise, (n, 2))
    return x1, x2


def test_fundamental_from_projections_equals_closed_form_and_satisfies_the_constraint():
    """Closed form: F = K₂⁻ᵀ [t]× R K₁⁻¹ for P₁ = K₁[I | 0], P₂ = K₂[R | t] (HZ eq. 9.2/9.12),
    and x̃₂ᵀ F x̃₁ = 0 on projected points."""
    F = fundamental_from_projections(P1, P2)
    assert same_up_to_scale(F, F_TRUE)
    x1, x2 = scene()
    r = np.einsum("ij,jk,ik->i", np.column_stack([x2, np.ones(100)]), F,
                  np.column_stack([x1, np.ones(100)]))
    assert np.abs(r).max() < 1e-12


def test_fundamental_from_projections_of_general_cameras_satisfies_the_constraint():
    """Closed form: projections of random points by two random 3×4 cameras satisfy x̃₂ᵀFx̃₁ = 0
    (HZ eq. 17.3 holds for any pair with distinct centres, not just K [R | t])."""
    rng = np.random.default_rng(1)
    Pa, Pb = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    Xh = np.column_stack([rng.normal(size=(50, 3)), np.ones(50)])
    xa, xb = Xh @ Pa.T, Xh @ Pb.T
    F = fundamental_from_projections(Pa, Pb)
    r = np.einsum("ij,jk,ik->i", xb / xb[:, 2:], F, xa / xa[:, 2:])
    assert np.abs(r).max() < 1e-10 * np.abs(xb / xb[:, 2:]).max() * np.abs(xa / xa[:, 2:]).max()


def test_fundamental_from_projections_rejects_a_shared_centre():
    """No baseline (P₂ = K₂ R [I | 0], same centre as P₁): F = 0, raised, not normalised."""
    with pytest.raises(GeometryError, match="distinct centres"):
        fundamental_from_projections(P1, K2 @ np.column_stack([R, np.zeros(3)]))


def test_epipoles_are_the_images_of_the_other_camera_centres():
    """Closed form: e₁ ∼ P₁ C₂ and e₂ ∼ P₂ C₁ (HZ §9.1) with C₂ = −Rᵀt, C₁ = 0."""
    e1, e2 = epipoles(F_TRUE)
    C2 = np.append(-R.T @ t, 1.0)
    assert same_up_to_scale(e1, P1 @ C2)
    assert same_up_to_scale(e2, P2 @ np.array([0.0, 0.0, 0.0, 1.0]))
    assert np.abs(F_TRUE @ e1).max() < 1e-12 and np.abs(F_TRUE.T @ e2).max() < 1e-12
    assert e1[2] >= 0 and e2[2] >= 0 and np.isclose(np.linalg.norm(e1), 1.0)


def test_epipoles_reject_a_full_rank_matrix():
    """Pitfall: a noisy 8-point estimate without rank enforcement has no epipole at all."""
    with pytest.raises(GeometryError, match="rank 2"):
        epipoles(F_TRUE / np.linalg.norm(F_TRUE) + 1e-3 * np.eye(3))


@pytest.mark.parametrize("which", [1, 2])
def test_epipolar_lines_equal_cv2_compute_correspond_epilines(which):
    """Oracle: cv2.computeCorrespondEpilines (lines normalised to a² + b² = 1)."""
    x1, x2 = scene(noise=0.5)
    x = x1 if which == 1 else x2
    ours = epipolar_lines(F_TRUE, x, which)
    ref = cv2.computeCorrespondEpilines(x.reshape(-1, 1, 2), which, F_TRUE).reshape(-1, 3)
    np.testing.assert_allclose(ours, ref, atol=1e-6)  # OpenCV returns float32
    np.testing.assert_allclose(np.hypot(ours[:, 0], ours[:, 1]), 1.0, atol=1e-14)


def test_sampson_distance_squared_equals_cv2_sampson_distance():
    """Oracle: cv2.sampsonDistance(x̃₁, x̃₂, F), which returns the square (HZ eq. 11.9)."""
    x1, x2 = scene(30, noise=2.0)
    ours = sampson_distance(F_TRUE, x1, x2)
    ref = [cv2.sampsonDistance(np.append(a, 1.0), np.append(b, 1.0), F_TRUE)
           for a, b in zip(x1, x2, strict=True)]
    np.testing.assert_allclose(ours**2, ref, rtol=1e-10)


def test_sampson_distance_approximates_the_optimal_correction_of_cv2_correct_matches():
    """Oracle: cv2.correctMatches moves each pair the least (in pixels) onto the epipolar
    constraint (HZ §12.5, optimal triangulation); for small noise the Sampson distance is that
    distance to first order."""
    x1, x2 = scene(50, seed=2, noise=0.5)
    c1, c2 = cv2.correctMatches(F_TRUE, x1[None], x2[None])
    exact = np.sqrt(((c1[0] - x1) ** 2).sum(1) + ((c2[0] - x2) ** 2).sum(1))
    np.testing.assert_allclose(sampson_distance(F_TRUE, x1, x2), exact, rtol=1e-3, atol=1e-6)


def test_symmetric_epipolar_distance_is_the_two_point_to_line_distances():
    """Closed form: √(d(x₂, l₂)² + d(x₁, l₁)²) with the unit epipolar lines of each point; for
    pure horizontal disparity (rectified F = [e₁]×) both are the vertical offset."""
    x1, x2 = scene(40, seed=3, noise=1.0)
    l2 = epipolar_lines(F_TRUE, x1, 1)
    l1 = epipolar_lines(F_TRUE, x2, 2)
    d2 = np.abs(np.einsum("ij,ij->i", l2, np.column_stack([x2, np.ones(40)])))
    d1 = np.abs(np.einsum("ij,ij->i", l1, np.column_stack([x1, np.ones(40)])))
    np.testing.assert_allclose(symmetric_epipolar_distance(F_TRUE, x1, x2), np.hypot(d1, d2),
                               rtol=1e-12)
    F_rect = hat([1.0, 0.0, 0.0])
    d = symmetric_epipolar_distance(F_rect, [[10.0, 5.0]], [[3.0, 7.5]])
    np.testing.assert_allclose(d, [np.hypot(2.5, 2.5)], rtol=1e-14)


def test_essential_and_fundamental_convert_both_ways_closed_form():
    """Closed form: E = K₂ᵀ F K₁ (HZ eq. 9.12) has singular values (σ, σ, 0); the round trip
    returns F up to scale; E is scaled to singular values (1, 1, 0)."""
    E = essential_from_fundamental(F_TRUE, K1, K2)
    assert same_up_to_scale(E, E_TRUE)
    np.testing.assert_allclose(np.linalg.svd(E, compute_uv=False), [1.0, 1.0, 0.0], atol=1e-12)
    F = fundamental_from_essential(E, K1, K2)
    assert same_up_to_scale(F, F_TRUE) and np.isclose(np.linalg.norm(F), 1.0)
    assert np.abs(F).max() == F.max()  # canonical sign: the largest entry is positive
    same_K = fundamental_from_essential(E_TRUE, K1)
    assert same_up_to_scale(same_K, np.linalg.inv(K1).T @ E_TRUE @ np.linalg.inv(K1))


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: sampson_distance(F_TRUE, np.zeros((5, 2)), np.zeros((4, 2))),
      r"x2 of shape \(5, 2\)"),
     (lambda: sampson_distance(np.zeros((3, 3)), np.zeros((5, 2)), np.zeros((5, 2))),
      "non-zero F"),
     (lambda: sampson_distance(F_TRUE[:2], np.zeros((5, 2)), np.zeros((5, 2))),
      "F as a 3×3 matrix"),
     (lambda: symmetric_epipolar_distance(F_TRUE, [[np.nan, 0.0]], [[0.0, 0.0]]),
      "finite x1"),
     (lambda: epipolar_lines(F_TRUE, np.zeros((2, 2)), which=3), "which = 1 or 2"),
     (lambda: essential_from_fundamental(F_TRUE, np.ones((3, 3))), "upper triangular"),
     (lambda: fundamental_from_projections(P1, P2[:, :3]), "P2 as a 3×4 matrix")],
)
def test_bad_input_raises_one_line(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
