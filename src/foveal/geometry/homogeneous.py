"""Homogeneous coordinates in the projective plane: points, lines, join and meet.

A point ``(x, y)`` is any ``p = (λx, λy, λ)``, ``λ ≠ 0``; ``(x, y, 0)`` is a point at infinity
(a direction). A line ``a x + b y + c = 0`` is ``l = (a, b, c)``, and ``p`` lies on ``l`` exactly
when ``lᵀ p = 0``. By duality (HZ §2.2.1, results 2.2 and 2.4):

- the line through two points is ``l = p × q`` (*join*);
- the intersection of two lines is ``x = l × m`` (*meet*); parallel lines
  ``(a, b, c)``, ``(a, b, c′)`` meet at ``(b, −a, 0)``·(c′ − c), a point at infinity.

The distance from a finite point to a line is ``|lᵀ p| / (|p₃| √(a² + b²))``.

Functions take (N, 3) homogeneous arrays (or (N, 2) finite points where a point is expected,
lifted with ``w = 1``), broadcasting a single (3,) point or line against many.
Reference: HZ §2.2.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.validate import stack

# |w| (or ‖(a, b)‖) below this fraction of the vector's norm counts as zero: a point (line) at
# infinity. Homogeneous vectors carry an arbitrary scale, so only the relative size means anything.
_INFINITY_RTOL = 1e-12


def to_homogeneous(x: ArrayLike) -> np.ndarray:
    """Points (N, d) → (N, d + 1) with a last coordinate of 1: ``(x, y) ↦ (x, y, 1)``."""
    a = stack(x, (), "to_homogeneous", "x")
    if a.ndim != 2 or a.shape[1] < 1:
        raise GeometryError(f"to_homogeneous: expected x of shape (N, d), got {a.shape}")
    return np.column_stack([a, np.ones(len(a))])


def from_homogeneous(x: ArrayLike) -> np.ndarray:
    """Points (N, d + 1) → (N, d) by dividing by the last coordinate: ``(x, y, w) ↦ (x/w, y/w)``.

    A point at infinity (``|w| ≤ 1e-12 ‖x‖``) has no finite position: it raises
    :class:`~foveal.errors.GeometryError` rather than returning ``inf`` or huge numbers.
    """
    a = stack(x, (), "from_homogeneous", "x")
    if a.ndim != 2 or a.shape[1] < 2:
        raise GeometryError(f"from_homogeneous: expected x of shape (N, d + 1) with d ≥ 1, got "
                            f"{a.shape}")
    w = a[:, -1]
    at_infinity = np.abs(w) <= _INFINITY_RTOL * np.linalg.norm(a, axis=1)
    if np.any(at_infinity):
        i = int(np.argmax(at_infinity))
        raise GeometryError(f"from_homogeneous: expected finite points (w ≠ 0), got "
                            f"{int(at_infinity.sum())} at infinity, e.g. row {i} = "
                            f"{a[i].tolist()}")
    return a[:, :-1] / w[:, None]


def _as_points(p: ArrayLike, op: str, name: str) -> np.ndarray:
    """(3,), (N, 3) homogeneous or (2,), (N, 2) finite points as homogeneous (..., 3)."""
    a = stack(p, (), op, name)
    if a.ndim in (1, 2) and a.shape[-1] == 2:
        return np.concatenate([a, np.ones((*a.shape[:-1], 1))], axis=-1)
    if a.ndim in (1, 2) and a.shape[-1] == 3:
        return a
    raise GeometryError(f"{op}: expected {name} of shape (N, 3) homogeneous or (N, 2) finite, "
                        f"got {a.shape}")


def _as_lines(l: ArrayLike, op: str, name: str) -> np.ndarray:  # noqa: E741 (l is HZ's symbol)
    a = stack(l, (), op, name)
    if a.ndim not in (1, 2) or a.shape[-1] != 3:
        raise GeometryError(f"{op}: expected {name} of shape (N, 3) as (a, b, c), got {a.shape}")
    return a


def _cross_nonzero(u: np.ndarray, v: np.ndarray, op: str, what: str) -> np.ndarray:
    try:
        out = np.cross(u, v)
    except ValueError:
        raise GeometryError(f"{op}: expected inputs of equal length N or one of them single, "
                            f"got shapes {u.shape} and {v.shape}") from None
    scale = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
    degenerate = np.linalg.norm(out, axis=-1) <= _INFINITY_RTOL * scale
    if np.any(degenerate):
        raise GeometryError(f"{op}: expected {what}, got {int(np.sum(degenerate))} "
                            f"coincident pair(s) (or a zero vector)")
    return out


def join(p: ArrayLike, q: ArrayLike) -> np.ndarray:
    """The line ``l = p × q`` (N, 3) through points ``p`` and ``q`` (HZ result 2.4).

    Points are (N, 3) homogeneous or (N, 2) finite; a point at infinity is allowed (the line
    through ``p`` in that direction). Coincident points define no line and raise.
    """
    p = _as_points(p, "join", "p")
    q = _as_points(q, "join", "q")
    return _cross_nonzero(p, q, "join", "two distinct points")


def meet(l: ArrayLike, m: ArrayLike) -> np.ndarray:  # noqa: E741 (l is HZ's symbol)
    """The intersection ``x = l × m`` (N, 3), homogeneous, of lines ``l`` and ``m`` (HZ result 2.2).

    Parallel lines meet at a point at infinity (``x₃ = 0``), returned as such; pass the result to
    :func:`from_homogeneous` only when a finite point is needed. Identical lines raise.
    """
    l = _as_lines(l, "meet", "l")  # noqa: E741
    m = _as_lines(m, "meet", "m")
    return _cross_nonzero(l, m, "meet", "two distinct lines")


def point_line_distance(p: ArrayLike, l: ArrayLike) -> np.ndarray:  # noqa: E741
    """Euclidean distances (N,) from finite points ``p`` to lines ``l = (a, b, c)``:

        d = |lᵀ p| / (|p₃| √(a² + b²))

    which is invariant to the scale of both ``p`` and ``l``. Points at infinity and the line at
    infinity ``(0, 0, c)`` have no finite distance and raise.
    """
    p = _as_points(p, "point_line_distance", "p")
    l = _as_lines(l, "point_line_distance", "l")  # noqa: E741
    w = np.abs(p[..., 2])
    if np.any(w <= _INFINITY_RTOL * np.linalg.norm(p, axis=-1)):
        raise GeometryError("point_line_distance: expected finite points p (w ≠ 0), got a point "
                            "at infinity")
    ab = np.linalg.norm(l[..., :2], axis=-1)
    if np.any(ab <= _INFINITY_RTOL * np.linalg.norm(l, axis=-1)):
        raise GeometryError("point_line_distance: expected lines with (a, b) ≠ 0, got the line "
                            "at infinity")
    try:
        dot = np.einsum("...i,...i->...", p, l)
    except ValueError:
        raise GeometryError(f"point_line_distance: expected p and l of equal length N or one of "
                            f"them single, got shapes {p.shape} and {l.shape}") from None
    return np.abs(dot) / (w * ab)
