"""The door checks: every rejection is one GeometryError line naming op, expectation and value."""

import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.validate import correspondences, matrix, points, positive


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.zeros((4, 3)), r"expected pts of shape \(N, 2\), got \(4, 3\)"),
     (np.zeros(2), r"expected pts of shape \(N, 2\), got \(2,\)"),
     ([[1.0, np.nan], [0, 0], [1, 1]], "expected finite pts, got 1 NaN or inf"),
     ([["a", "b"]], "expected pts as a numeric array"),
     (np.zeros((1, 2)), "expected at least 3 pts, got 1")],
)
def test_points_rejections_are_one_line(value, message):
    with pytest.raises(GeometryError, match=message) as info:
        points(value, 2, "op", "pts", minimum=3)
    assert "\n" not in str(info.value) and str(info.value).startswith("op: ")


def test_correspondences_need_equal_lengths_and_a_minimum():
    with pytest.raises(GeometryError, match=r"dst of shape \(5, 2\) to match"):
        correspondences(np.zeros((5, 2)), np.zeros((4, 2)), "op", minimum=4)
    with pytest.raises(GeometryError, match="at least 8 correspondences, got 5"):
        correspondences(np.zeros((5, 2)), np.zeros((5, 2)), "op", minimum=8)


def test_matrix_and_positive():
    assert matrix(np.eye(3), (3, 3), "op", "K").dtype == np.float64
    with pytest.raises(GeometryError, match=r"K as a 3×3 matrix, got shape \(3, 4\)"):
        matrix(np.zeros((3, 4)), (3, 3), "op", "K")
    with pytest.raises(GeometryError, match=r"threshold > 0, got -1\.0"):
        positive(-1, "op", "threshold")


def test_stack_rotations_and_calibration_matrix():
    from foveal.geometry.validate import calibration_matrix, rotations, stack

    assert stack(np.zeros((4, 3, 3)), (3, 3), "op", "R").shape == (4, 3, 3)
    with pytest.raises(GeometryError, match=r"R of shape \(\.\.\., 3, 3\), got \(3, 4\)"):
        stack(np.zeros((3, 4)), (3, 3), "op", "R")
    with pytest.raises(GeometryError, match="reflection"):
        rotations(np.diag([1.0, 1.0, -1.0]), "op")
    with pytest.raises(GeometryError, match="RᵀR = I"):
        rotations(2 * np.eye(3), "op")
    np.testing.assert_allclose(calibration_matrix(2 * np.eye(3), "op"), np.eye(3))
    with pytest.raises(GeometryError, match="upper triangular"):
        calibration_matrix(np.ones((3, 3)), "op")
