"""SO(3): hat/vee, Rodrigues exp/log, Jacobians and quaternions against cv2.Rodrigues, scipy's
Rotation, numeric derivatives and closed forms."""

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from foveal.errors import GeometryError
from foveal.geometry.rotation import (
    exp_so3,
    hat,
    left_jacobian_inverse_so3,
    left_jacobian_so3,
    log_so3,
    matrix_from_quaternion,
    project_to_so3,
    quaternion_from_matrix,
    quaternion_multiply,
    vee,
)

rng = np.random.default_rng(7)


def random_rotvecs(n, max_angle=np.pi):
    axes = rng.standard_normal((n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return axes * rng.uniform(0, max_angle, (n, 1))


def test_hat_times_v_is_the_cross_product_numpy_cross():
    """Oracle: np.cross — [u]× v = u × v, batched."""
    u, v = rng.standard_normal((2, 50, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", hat(u), v), np.cross(u, v), atol=1e-14)


def test_hat_is_skew_and_vee_inverts_it_closed_form():
    v = rng.standard_normal((4, 5, 3))
    M = hat(v)
    assert M.shape == (4, 5, 3, 3)
    np.testing.assert_array_equal(M, -np.swapaxes(M, -1, -2))
    np.testing.assert_array_equal(vee(M), v)


def test_exp_so3_equals_cv2_rodrigues():
    """Oracle: cv2.Rodrigues (vector → matrix), one vector at a time, against our batch."""
    w = random_rotvecs(200)
    ours = exp_so3(w)
    for wi, Ri in zip(w, ours, strict=True):
        np.testing.assert_allclose(Ri, cv2.Rodrigues(wi)[0], atol=1e-14)


def test_log_so3_equals_cv2_rodrigues():
    """Oracle: cv2.Rodrigues (matrix → vector), away from θ = π where the sign is ambiguous."""
    R = exp_so3(random_rotvecs(200, max_angle=3.0))
    ours = log_so3(R)
    for wi, Ri in zip(ours, R, strict=True):
        np.testing.assert_allclose(wi, cv2.Rodrigues(Ri)[0].ravel(), atol=1e-12)


def test_exp_so3_matches_scipy_rotation_batched():
    """Oracle: scipy.spatial.transform.Rotation.from_rotvec."""
    w = random_rotvecs(500).reshape(5, 100, 3)
    np.testing.assert_allclose(exp_so3(w).reshape(-1, 3, 3),
                               Rotation.from_rotvec(w.reshape(-1, 3)).as_matrix(), atol=1e-14)


def test_exp_so3_of_one_vector_equals_the_batched_path():
    """The single-vector fast path (Python floats) against the batched path, to rounding, on
    both sides of the Taylor switch and at 0."""
    w = random_rotvecs(300)
    w = np.concatenate([w, w[:100] * 1e-4, w[:100] * 1e-9, np.zeros((1, 3))])
    single = np.stack([exp_so3(wi) for wi in w])
    np.testing.assert_allclose(single, exp_so3(w), rtol=0, atol=1e-15)
    assert exp_so3(w[0]).shape == (3, 3)


def test_project_to_so3_of_one_matrix_equals_the_batched_path_and_fixes_reflections():
    """The single-matrix path against the batched one; a reflection's nearest rotation has
    det +1 (oracle: the batched path, which flips the last singular vector)."""
    rng = np.random.default_rng(3)
    M = rng.normal(size=(50, 3, 3))
    M[::2] *= -1.0  # half with det < 0
    single = np.stack([project_to_so3(m) for m in M])
    np.testing.assert_allclose(single, project_to_so3(M), rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(single), 1.0, atol=1e-12)


@pytest.mark.parametrize("theta", [0.0, 1e-300, 1e-12, 1e-8, 1e-5, 9.99e-3, 1.001e-2, 0.5])
def test_exp_so3_near_zero_uses_taylor_without_cancellation(theta):
    """Pitfall: (1 − cos θ)/θ² evaluated literally is 0/0 at 0 and loses all digits at 1e-8.
    Oracle: the axis-angle closed form cos θ I + sin θ [n]× + (1 − cos θ) n nᵀ."""
    n = np.array([0.36, -0.48, 0.8])
    R = exp_so3(theta * n)
    # Independent closed form: R = cos θ I + sin θ [n]× + (1 − cos θ) n nᵀ, with 1 − cos θ
    # written as 2 sin²(θ/2) so that the oracle itself is exact at small angles.
    ref = (np.cos(theta) * np.eye(3) + np.sin(theta) * hat(n)
           + 2 * np.sin(theta / 2) ** 2 * np.outer(n, n))
    np.testing.assert_allclose(R, ref, atol=1e-16)
    np.testing.assert_allclose(log_so3(R), theta * n, atol=1e-16, rtol=1e-12)


def test_log_so3_round_trips_every_angle_up_to_pi():
    w = random_rotvecs(2000)
    np.testing.assert_allclose(log_so3(exp_so3(w)), w, atol=1e-12)


@pytest.mark.parametrize("gap", [1e-12, 1e-9, 1e-6, 1e-3, 0.1])
def test_log_so3_near_pi_does_not_divide_by_sin_theta(gap):
    """Pitfall: ω = θ/(2 sin θ) · vee(R − Rᵀ) amplifies rounding by 1/sin θ ≈ 1/gap near π.
    Oracle: the rotation vector we started from (closed form)."""
    n = np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5])
    w = (np.pi - gap) * n
    np.testing.assert_allclose(log_so3(exp_so3(w)), w, atol=1e-13)
    naive = (np.pi - gap) / (2 * np.sin(np.pi - gap)) * 2 * vee(exp_so3(w))
    if gap <= 1e-9:
        assert np.abs(naive - w).max() > 1e-8  # the naive formula really is that bad here


def test_log_so3_at_exactly_pi_gives_pi_times_the_axis_up_to_sign():
    """At θ = π, +πn and −πn are the same rotation: compare up to sign, and re-exponentiate."""
    for axis in (np.eye(3)[0], np.eye(3)[2], np.array([1.0, 1.0, 1.0]) / np.sqrt(3),
                 np.array([0.6, -0.8, 0.0])):
        R = exp_so3(np.pi * axis)
        w = log_so3(R)
        assert np.linalg.norm(w) == pytest.approx(np.pi, abs=1e-14)
        assert min(np.abs(w - np.pi * axis).max(), np.abs(w + np.pi * axis).max()) < 1e-12
        np.testing.assert_allclose(exp_so3(w), R, atol=1e-14)


def test_log_so3_of_180_degree_rotation_matrices_closed_form():
    """R = diag(1, −1, −1) is π about x (closed form), a case where vee(R) = 0 exactly."""
    w = log_so3(np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(np.abs(w), [np.pi, 0, 0], atol=1e-15)


def test_left_jacobian_is_the_derivative_of_exp_numeric_gradient():
    """Oracle: central differences of exp — exp([ω + δ]×) exp([ω]×)ᵀ ≈ exp([J δ]×)."""
    for w in random_rotvecs(5, max_angle=3.0):
        J = left_jacobian_so3(w)
        h = 1e-6
        numeric = np.stack([
            vee((exp_so3(w + h * e) - exp_so3(w - h * e)) @ exp_so3(w).T) / (2 * h)
            for e in np.eye(3)], axis=1)
        np.testing.assert_allclose(J, numeric, atol=1e-8)


def test_left_jacobian_inverse_is_the_matrix_inverse_numpy_inv():
    """Oracle: np.linalg.inv, including the small-angle series branch."""
    w = np.concatenate([random_rotvecs(20, 3.1), random_rotvecs(5, 1e-3), np.zeros((1, 3))])
    np.testing.assert_allclose(left_jacobian_inverse_so3(w), np.linalg.inv(left_jacobian_so3(w)),
                               atol=1e-12)
    with pytest.raises(GeometryError, match="below 2π"):
        left_jacobian_inverse_so3([2 * np.pi, 0, 0])


def test_quaternion_from_matrix_equals_scipy_canonical():
    """Oracle: scipy Rotation.as_quat(canonical=True), reordered from (x, y, z, w)."""
    R = Rotation.random(500, random_state=3).as_matrix()
    ref = Rotation.from_matrix(R).as_quat(canonical=True)[:, [3, 0, 1, 2]]
    q = quaternion_from_matrix(R)
    np.testing.assert_allclose(q, ref, atol=1e-14)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-15)


def test_quaternion_from_matrix_every_shepperd_branch_closed_form():
    """Each of w, x, y, z largest in turn: identity, and π about each axis (q = axis)."""
    for R, q in [(np.eye(3), [1, 0, 0, 0]), (np.diag([1.0, -1, -1]), [0, 1, 0, 0]),
                 (np.diag([-1.0, 1, -1]), [0, 0, 1, 0]), (np.diag([-1.0, -1, 1]), [0, 0, 0, 1])]:
        np.testing.assert_allclose(quaternion_from_matrix(R), q, atol=1e-15)


def test_matrix_from_quaternion_equals_scipy_and_normalises():
    """Oracle: scipy Rotation.from_quat (which normalises too)."""
    q = rng.standard_normal((100, 4)) * 3
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(matrix_from_quaternion(q), ref, atol=1e-14)
    np.testing.assert_allclose(matrix_from_quaternion(-q), ref, atol=1e-14)
    np.testing.assert_allclose(matrix_from_quaternion(quaternion_from_matrix(ref)), ref,
                               atol=1e-14)


def test_quaternion_multiply_composes_rotations_scipy():
    """Oracle: scipy's Rotation composition r1 * r2 — R(p ⊗ q) = R(p) R(q)."""
    r1, r2 = Rotation.random(50, random_state=1), Rotation.random(50, random_state=2)
    p, q = r1.as_quat()[:, [3, 0, 1, 2]], r2.as_quat()[:, [3, 0, 1, 2]]
    pq = quaternion_multiply(p, q)
    np.testing.assert_allclose(matrix_from_quaternion(pq), (r1 * r2).as_matrix(), atol=1e-14)
    np.testing.assert_allclose(quaternion_multiply([1, 0, 0, 0], q), q)


def test_project_to_so3_returns_a_rotation_not_a_reflection():
    """Pitfall: U Vᵀ alone is a reflection when det M < 0. Oracle: closed-form properties."""
    M = np.diag([1.0, 2.0, -3.0])
    R = project_to_so3(M)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-14)
    U, _, Vt = np.linalg.svd(M)
    assert np.linalg.det(U @ Vt) == pytest.approx(-1.0)


def test_project_to_so3_recovers_a_noisy_rotation_scipy_align():
    """Oracle: scipy Rotation.align_vectors (Kabsch), nearest rotation in another guise."""
    R_true = Rotation.random(random_state=4).as_matrix()
    M = R_true + 0.01 * rng.standard_normal((3, 3))
    R = project_to_so3(M)
    ref, _ = Rotation.align_vectors(M.T, np.eye(3))  # min Σ ‖R eᵢ − M[:, i]‖²
    np.testing.assert_allclose(R, ref.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(project_to_so3(np.stack([R_true, R_true])), [R_true] * 2,
                               atol=1e-14)


@pytest.mark.parametrize(
    ("fn", "value", "message"),
    [(hat, np.zeros((3, 2)), r"hat: expected v of shape \(\.\.\., 3\), got \(3, 2\)"),
     (exp_so3, [np.nan, 0, 0], "exp_so3: expected finite omega, got 1 NaN"),
     (log_so3, np.eye(4), r"log_so3: expected R of shape \(\.\.\., 3, 3\), got \(4, 4\)"),
     (vee, "abc", "vee: expected M as a numeric array"),
     (matrix_from_quaternion, np.zeros(4), "expected non-zero quaternions"),
     (quaternion_from_matrix, np.eye(3)[:2], r"got \(2, 3\)")],
)
def test_bad_input_raises_one_line_geometry_error(fn, value, message):
    with pytest.raises(GeometryError, match=message) as info:
        fn(value)
    assert "\n" not in str(info.value)
