"""Homogeneous 2D points and lines against closed forms (slope–intercept lines, Cramer's rule,
the textbook point–line distance) and scale invariance."""

import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.homogeneous import (
    from_homogeneous,
    join,
    meet,
    point_line_distance,
    to_homogeneous,
)

rng = np.random.default_rng(2)


def test_to_and_from_homogeneous_round_trip_and_ignore_scale():
    x = rng.standard_normal((20, 2))
    h = to_homogeneous(x)
    np.testing.assert_array_equal(h[:, 2], 1.0)
    np.testing.assert_allclose(from_homogeneous(h * rng.uniform(-5, 5, (20, 1))), x, atol=1e-14)
    assert from_homogeneous(to_homogeneous(rng.standard_normal((4, 3)))).shape == (4, 3)


def test_from_homogeneous_refuses_points_at_infinity():
    """Pitfall: dividing by w = 0 gives inf (or 1e16 for w ≈ 1e-16) instead of an error."""
    with pytest.raises(GeometryError, match=r"got 1 at infinity, e\.g\. row 1 = \[1\.0, 2\.0, "):
        from_homogeneous([[1.0, 2.0, 1.0], [1.0, 2.0, 1e-17]])


def test_join_is_the_line_through_both_points_closed_form():
    """Closed form: through (0, 1) and (2, 5) runs y = 2x + 1, i.e. (2, −1, 1) up to scale."""
    line = join([[0.0, 1.0]], [[2.0, 5.0]])[0]
    np.testing.assert_allclose(line / line[2], [2.0, -1.0, 1.0])
    p, q = rng.standard_normal((2, 50, 3))
    lines = join(p, q)
    np.testing.assert_allclose(np.einsum("ni,ni->n", lines, p), 0, atol=1e-14)
    np.testing.assert_allclose(np.einsum("ni,ni->n", lines, q), 0, atol=1e-14)


def test_meet_equals_cramers_rule_intersection():
    """Closed form: solve [a₁ b₁; a₂ b₂] (x, y) = −(c₁, c₂) with np.linalg.solve."""
    first, second = rng.standard_normal((2, 30, 3))
    ours = from_homogeneous(meet(first, second))
    ref = np.stack([np.linalg.solve(np.array([li[:2], mi[:2]]), -np.array([li[2], mi[2]]))
                    for li, mi in zip(first, second, strict=True)])
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_parallel_lines_meet_at_infinity_in_their_direction():
    """Closed form: x + 2y = 3 and x + 2y = −1 meet at (2, −1, 0)·k, their common direction."""
    x = meet([1.0, 2.0, -3.0], [1.0, 2.0, 1.0])
    assert x[2] == 0.0
    np.testing.assert_allclose(x[:2] / np.linalg.norm(x[:2]), np.array([2.0, -1.0]) / np.sqrt(5))
    with pytest.raises(GeometryError, match="at infinity"):
        from_homogeneous(x[None])


def test_join_with_a_point_at_infinity_is_the_line_in_that_direction():
    """Closed form: through (1, 1) with direction (1, 0) runs y = 1, i.e. (0, 1, −1)."""
    line = join([1.0, 1.0, 1.0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(line / line[1], [0.0, 1.0, -1.0])


def test_point_line_distance_equals_the_textbook_formula_and_ignores_scale():
    """Closed form: |a x + b y + c| / √(a² + b²); the result must not change when p or l is
    rescaled (a pitfall: forgetting to divide by p₃)."""
    assert point_line_distance([3.0, 4.0], [0.0, 1.0, 0.0]) == pytest.approx(4.0)
    p = rng.standard_normal((40, 2))
    lines = rng.standard_normal((40, 3))
    ref = np.abs(np.einsum("ni,ni->n", p, lines[:, :2]) + lines[:, 2]) / np.linalg.norm(
        lines[:, :2], axis=1)
    np.testing.assert_allclose(point_line_distance(p, lines), ref, atol=1e-13)
    scaled = to_homogeneous(p) * rng.uniform(-3, 3, (40, 1))
    np.testing.assert_allclose(point_line_distance(scaled, -7 * lines), ref, atol=1e-12)


def test_single_line_broadcasts_against_many_points():
    d = point_line_distance(np.array([[0.0, 0.0], [0.0, 2.0], [5.0, -1.0]]), [0.0, 1.0, -1.0])
    np.testing.assert_allclose(d, [1.0, 1.0, 2.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda: join([1.0, 2.0], [2.0, 4.0, 2.0]), "two distinct points, got 1 coincident"),
     (lambda: meet([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]), "two distinct lines"),
     (lambda: join(np.zeros((3, 4)), np.zeros((3, 4))), r"shape \(N, 3\) homogeneous or"),
     (lambda: join(np.ones((3, 2)), np.ones((4, 2))), "equal length N"),
     (lambda: meet(np.ones((2, 2)), np.ones((2, 3))), r"l of shape \(N, 3\) as \(a, b, c\)"),
     (lambda: point_line_distance([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]), "point at infinity"),
     (lambda: point_line_distance([1.0, 1.0], [0.0, 0.0, 1.0]), "line at infinity"),
     (lambda: to_homogeneous(np.zeros(3)), r"x of shape \(N, d\)"),
     (lambda: from_homogeneous([[np.nan, 1.0, 1.0]]), "finite x"),
     (lambda: from_homogeneous(np.ones((3, 1))), r"\(N, d \+ 1\) with d ≥ 1")],
)
def test_bad_input_raises_one_line_geometry_error(call, message):
    with pytest.raises(GeometryError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
