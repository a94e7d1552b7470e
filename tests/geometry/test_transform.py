"""SE(3) transforms and camera poses against np.linalg.inv, scipy.linalg.expm/logm, cv2.composeRT
and worked closed-form examples."""

import cv2
import numpy as np
import pytest
from scipy.linalg import expm, logm
from scipy.spatial.transform import Rotation

from foveal.errors import GeometryError
from foveal.geometry.rotation import exp_so3, hat
from foveal.geometry.transform import (
    camera_center,
    compose,
    exp_se3,
    extrinsics_from_pose,
    invert_transform,
    log_se3,
    make_transform,
    pose_from_extrinsics,
    transform_points,
)

rng = np.random.default_rng(11)
Rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def random_transforms(n):
    R = Rotation.random(n, random_state=5).as_matrix()
    return make_transform(R, rng.standard_normal((n, 3)) * 3)


def twist_matrix(xi):
    """The 4×4 se(3) matrix [[ [ω]×, ρ ], [0, 0]] of a twist (ρ, ω)."""
    M = np.zeros((4, 4))
    M[:3, :3] = hat(xi[3:])
    M[:3, 3] = xi[:3]
    return M


def test_world_point_in_a_rotated_shifted_camera_frame_closed_form():
    """The worked example: camera axes rotated 90° about z, centre (3, 2, 0); the world point
    (4, 2, 0) lies one unit along world x, which is the camera's −y axis: (0, −1, 0)."""
    R, t = extrinsics_from_pose(Rz90, [3.0, 2.0, 0.0])
    np.testing.assert_allclose(R @ [4.0, 2.0, 0.0] + t, [0.0, -1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(transform_points(make_transform(R, t), [[4.0, 2.0, 0.0]]),
                               [[0.0, -1.0, 0.0]], atol=1e-15)


def test_pose_and_extrinsics_are_inverse_and_centre_maps_to_origin():
    """Closed form: R C + t = 0 for the centre; pose ↔ extrinsics round trip, batched."""
    R = Rotation.random(20, random_state=1).as_matrix()
    t = rng.standard_normal((20, 3))
    R_c, C = pose_from_extrinsics(R, t)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, C) + t, 0, atol=1e-14)
    np.testing.assert_allclose(camera_center(R, t), C, atol=1e-15)
    R2, t2 = extrinsics_from_pose(R_c, C)
    np.testing.assert_allclose(R2, R, atol=1e-15)
    np.testing.assert_allclose(t2, t, atol=1e-14)


def test_extrinsics_are_the_inverse_of_the_camera_to_world_transform_numpy_inv():
    """Oracle: np.linalg.inv of the camera-to-world matrix [[R_c, C], [0, 1]]."""
    R_c, C = Rotation.random(random_state=2).as_matrix(), np.array([1.0, -2.0, 5.0])
    R, t = extrinsics_from_pose(R_c, C)
    np.testing.assert_allclose(make_transform(R, t), np.linalg.inv(make_transform(R_c, C)),
                               atol=1e-14)


def test_extrinsics_t_is_not_minus_the_centre():
    """Pitfall: t = −C is right only for R = I; the centre must be rotated, t = −R C."""
    R_c, C = exp_so3([0.0, 0.0, 0.5]), np.array([1.0, 2.0, 3.0])
    _, t = extrinsics_from_pose(R_c, C)
    assert np.abs(t + C).max() > 0.1
    np.testing.assert_allclose(t, -R_c.T @ C)


def test_invert_transform_closed_form_equals_numpy_inv():
    """Oracle: np.linalg.inv, batched."""
    T = random_transforms(30)
    np.testing.assert_allclose(invert_transform(T), np.linalg.inv(T), atol=1e-13)
    np.testing.assert_allclose(compose(T[0], invert_transform(T[0])), np.eye(4), atol=1e-14)


def test_compose_applies_the_rightmost_first_and_matches_cv2_compose_rt():
    """Oracle: cv2.composeRT — (rvec3, tvec3) = first (rvec1, tvec1), then (rvec2, tvec2)."""
    r1, t1, r2, t2 = rng.standard_normal((4, 3))
    r3, t3 = cv2.composeRT(r1, t1, r2, t2)[:2]
    T = compose(make_transform(exp_so3(r2), t2), make_transform(exp_so3(r1), t1))
    np.testing.assert_allclose(T, make_transform(cv2.Rodrigues(r3)[0], t3.ravel()), atol=1e-12)
    X = rng.standard_normal((10, 3))
    A, B = random_transforms(2)
    np.testing.assert_allclose(transform_points(compose(A, B), X),
                               transform_points(A, transform_points(B, X)), atol=1e-13)


def test_exp_se3_equals_scipy_expm_of_the_twist_matrix():
    """Oracle: scipy.linalg.expm of the 4×4 se(3) matrix."""
    xi = rng.standard_normal((20, 6))
    ours = exp_se3(xi)
    for x, T in zip(xi, ours, strict=True):
        np.testing.assert_allclose(T, expm(twist_matrix(x)), atol=1e-12)


def test_exp_se3_translation_is_not_rho_but_j_rho():
    """Pitfall: setting t = ρ treats the twist as 'rotate, then translate'. Oracle: expm."""
    xi = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    assert np.abs(exp_se3(xi)[:3, 3] - xi[:3]).max() > 0.1
    np.testing.assert_allclose(exp_se3(xi), expm(twist_matrix(xi)), atol=1e-12)


def test_log_se3_equals_scipy_logm_and_round_trips():
    """Oracle: scipy.linalg.logm (principal logarithm, angles below π)."""
    T = random_transforms(10)
    xi = log_se3(T)
    for x, Ti in zip(xi, T, strict=True):
        np.testing.assert_allclose(twist_matrix(x), logm(Ti).real, atol=1e-9)
    np.testing.assert_allclose(exp_se3(xi), T, atol=1e-13)


def test_exp_log_se3_near_zero_and_pure_translation_closed_form():
    xi = np.array([[0.3, -0.2, 0.1, 0, 0, 0], [1e-9, 2e-9, 0, 1e-10, 0, -1e-10]])
    T = exp_se3(xi)
    np.testing.assert_allclose(T[0], make_transform(np.eye(3), [0.3, -0.2, 0.1]))
    np.testing.assert_allclose(log_se3(T), xi, atol=1e-20, rtol=1e-9)


def test_log_se3_near_pi_round_trip():
    n = np.array([1.0, 2.0, -2.0]) / 3
    xi = np.concatenate([[0.5, -1.0, 2.0], (np.pi - 1e-10) * n])
    np.testing.assert_allclose(log_se3(exp_se3(xi)), xi, atol=1e-9)


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: make_transform(np.diag([1.0, 1.0, -1.0]), np.zeros(3)), "reflection"),
     (lambda: make_transform(2 * np.eye(3), np.zeros(3)), r"rotation \(RᵀR = I\)"),
     (lambda: make_transform(np.eye(3), np.zeros(4)), r"t of shape \(\.\.\., 3\)"),
     (lambda: invert_transform(np.ones((4, 4))), r"bottom row \[0, 0, 0, 1\]"),
     (lambda: transform_points(np.eye(4), np.zeros((5, 2))), r"X of shape \(N, 3\)"),
     (lambda: transform_points(np.eye(4), [[np.nan, 0, 0]]), "finite X"),
     (lambda: compose(), "at least one transform"),
     (lambda: exp_se3(np.zeros(3)), r"xi of shape \(\.\.\., 6\)"),
     (lambda: camera_center(np.eye(3), [np.inf, 0, 0]), "camera_center: expected finite t")],
)
def test_bad_input_raises_one_line_geometry_error(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_look_at_points_the_optical_axis_at_the_target_closed_form():
    from foveal.geometry.camera import project
    from foveal.geometry.transform import look_at

    centers = np.array([[10.0, 0, 1], [0, -5, 2], [-3, 4, 0]])
    R, t = look_at(centers, target=[0.5, 0.5, 0.0])
    assert np.allclose(np.einsum("nij,nkj->nik", R, R), np.eye(3))
    assert np.allclose(np.linalg.det(R), 1.0)
    np.testing.assert_allclose(camera_center(R, t), centers, atol=1e-12)
    K = np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]])
    for Ri, ti in zip(R, t, strict=True):
        pixels, depth = project([[0.5, 0.5, 0.0], [0.5, 0.5, 1.0]], K, Ri, ti)
        np.testing.assert_allclose(pixels[0], [50, 40], atol=1e-9)  # the principal point
        assert depth[0] > 0 and pixels[1, 1] < 40  # "up" appears above the target
    with pytest.raises(GeometryError, match="parallel"):
        look_at([0.0, 0, 5], up=[0, 0, 1])
