"""Umeyama alignment against scikit-image's SimilarityTransform and closed forms."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from skimage.transform import SimilarityTransform

from foveal.errors import GeometryError
from foveal.geometry.alignment import camera_pose_errors, rotation_angle_deg, umeyama

rng = np.random.default_rng(0)


def test_umeyama_recovers_a_known_similarity_exactly():
    R = Rotation.from_rotvec([0.3, -0.5, 1.1]).as_matrix()
    x = rng.standard_normal((20, 3))
    y = 2.5 * x @ R.T + [1.0, -2.0, 0.5]
    sim = umeyama(x, y)
    assert sim.scale == pytest.approx(2.5)
    np.testing.assert_allclose(sim.R, R, atol=1e-12)
    np.testing.assert_allclose(sim.apply(x), y, atol=1e-12)


def test_umeyama_equals_skimage_similarity_transform_under_noise():
    x = rng.standard_normal((30, 3))
    y = 0.7 * x @ Rotation.from_rotvec([1.0, 0.2, -0.4]).as_matrix().T + 3 + rng.normal(
        0, 0.05, (30, 3))
    ours = umeyama(x, y)
    ref = SimilarityTransform.from_estimate(x, y) if hasattr(
        SimilarityTransform, "from_estimate") else None
    if ref is None:
        ref = SimilarityTransform(dimensionality=3)
        ref.estimate(x, y)
    np.testing.assert_allclose(ours.apply(x), ref(x), atol=1e-10)


def test_umeyama_returns_a_rotation_not_a_reflection():
    """Pitfall: without the det sign fix, a mirrored point set gives det R = −1."""
    x = rng.standard_normal((10, 3))
    y = x * [1, 1, -1]  # a reflection: no rotation maps x onto y
    sim = umeyama(x, y)
    assert np.linalg.det(sim.R) == pytest.approx(1.0)


def test_collinear_points_are_degenerate():
    x = np.outer(np.arange(5.0), [1, 2, 3])
    with pytest.raises(GeometryError, match="degenerate"):
        umeyama(x, x)


def test_camera_pose_errors_are_zero_for_a_similar_copy():
    Rs = Rotation.random(6, random_state=1).as_matrix()
    C = rng.standard_normal((6, 3))
    sim_R = Rotation.from_rotvec([0, 0.4, 0.2]).as_matrix()
    # the same cameras seen in a frame Y = s R X + t:  R_c' = R_c Rᵀ, C' = s R C + t
    C_est = 0.5 * C @ sim_R.T + 1.0
    R_est = Rs @ sim_R.T
    errors = camera_pose_errors(R_est, C_est, Rs, C)
    assert errors.median_rotation_deg < 1e-6 and errors.median_center < 1e-10


def test_rotation_angle_closed_form():
    R = Rotation.from_rotvec([0, 0, np.radians(30)]).as_matrix()
    assert rotation_angle_deg(R, np.eye(3)) == pytest.approx(30)
