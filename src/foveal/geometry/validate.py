"""Input checks at the door of every geometry function: shapes, finiteness, counts.

Each check returns a ``float64`` array and raises :class:`~foveal.errors.GeometryError` with one
line naming the function, what was expected and what arrived, for example
``find_homography: expected dst of shape (N, 2) with N = 120 like src, got (119, 2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError


def _array(value: ArrayLike, op: str, name: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{op}: expected {name} as a numeric array, got "
                            f"{type(value).__name__} ({exc})") from None
    return a


def _finite(a: np.ndarray, op: str, name: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise GeometryError(f"{op}: expected finite {name}, got {bad} NaN or inf value(s)")
    return a


def points(value: ArrayLike, dim: int, op: str, name: str = "points", *, minimum: int = 0,
           count: int | None = None) -> np.ndarray:
    """``value`` as a finite ``(N, dim)`` float64 array with ``N ≥ minimum`` (and ``N = count``).

    A single point of shape ``(dim,)`` is not accepted: callers that allow one reshape first.
    """
    a = _array(value, op, name)
    if a.ndim != 2 or a.shape[1] != dim:
        raise GeometryError(f"{op}: expected {name} of shape (N, {dim}), got {a.shape}")
    if count is not None and a.shape[0] != count:
        raise GeometryError(f"{op}: expected {name} of shape ({count}, {dim}) to match the "
                            f"other input, got {a.shape}")
    if a.shape[0] < minimum:
        raise GeometryError(f"{op}: expected at least {minimum} {name}, got {a.shape[0]}")
    return _finite(a, op, name)


def matrix(value: ArrayLike, shape: tuple[int, ...], op: str, name: str) -> np.ndarray:
    """``value`` as a finite float64 array of exactly ``shape`` (e.g. ``(3, 3)`` for K, H, F)."""
    a = _array(value, op, name)
    if a.shape != tuple(shape):
        expected = "×".join(str(s) for s in shape)
        raise GeometryError(f"{op}: expected {name} as a {expected} matrix, got shape {a.shape}")
    return _finite(a, op, name)


def correspondences(src: ArrayLike, dst: ArrayLike, op: str, *, minimum: int,
                    dims: tuple[int, int] = (2, 2)) -> tuple[np.ndarray, np.ndarray]:
    """Two matched point sets of equal length ``N ≥ minimum`` (pixels by default)."""
    a = points(src, dims[0], op, "src")
    b = points(dst, dims[1], op, "dst", count=a.shape[0])
    if a.shape[0] < minimum:
        raise GeometryError(f"{op}: expected at least {minimum} correspondences, "
                            f"got {a.shape[0]}")
    return a, b


def positive(value: Any, op: str, name: str) -> float:
    """A finite number > 0 (thresholds, focal lengths)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise GeometryError(f"{op}: expected {name} as a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise GeometryError(f"{op}: expected {name} > 0, got {v}")
    return v


def stack(value: ArrayLike, tail: tuple[int, ...], op: str, name: str) -> np.ndarray:
    """``value`` as a finite float64 array whose last axes are ``tail``, e.g. ``(..., 3, 3)``."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{op}: expected {name} as a numeric array, got "
                            f"{type(value).__name__} ({exc})") from None
    if a.ndim < len(tail) or a.shape[a.ndim - len(tail):] != tail:
        expected = ", ".join(["..."] + [str(s) for s in tail])
        raise GeometryError(f"{op}: expected {name} of shape ({expected}), got {a.shape}")
    if not np.all(np.isfinite(a)):
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise GeometryError(f"{op}: expected finite {name}, got {bad} NaN or inf value(s)")
    return a


def rotations(value: ArrayLike, op: str, name: str = "R", *,
                    tol: float = 1e-6) -> np.ndarray:
    """``value`` as (..., 3, 3) rotations: ``RᵀR = I`` within ``tol`` and ``det R > 0``.

    Closed forms such as ``R⁻¹ = Rᵀ`` are silently wrong for anything else, so callers that use
    them check here first.
    """
    R = stack(value, (3, 3), op, name)
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(initial=0.0)
    if err > tol:
        raise GeometryError(f"{op}: expected {name} to be a rotation (RᵀR = I), got "
                            f"max |RᵀR − I| = {err:.3g}; see project_to_so3")
    if np.any(np.linalg.det(R) < 0):
        raise GeometryError(f"{op}: expected {name} to be a rotation (det = +1), got a "
                            "reflection (det = −1)")
    return R




def calibration_matrix(K: ArrayLike, op: str, name: str = "K") -> np.ndarray:
    """``K`` (3, 3) checked to be upper triangular and invertible, scaled so that K₃₃ = 1."""
    K = matrix(K, (3, 3), op, name)
    scale = np.abs(K).max()
    if scale == 0 or np.abs(K[[1, 2, 2], [0, 0, 1]]).max() > 1e-12 * scale:
        raise GeometryError(f"{op}: expected {name} upper triangular [[fx, s, cx], [0, fy, cy], "
                            f"[0, 0, 1]], got {np.array2string(K, precision=4)}"
                            .replace("\n", ""))
    if np.abs(K[2, 2]) <= 1e-12 * scale:
        raise GeometryError(f"{op}: expected {name}[2, 2] ≠ 0, got {K[2, 2]}")
    K = K / K[2, 2]
    if min(abs(K[0, 0]), abs(K[1, 1])) <= 1e-12 * np.abs(K).max():
        raise GeometryError(f"{op}: expected focal lengths ≠ 0 in {name}, got fx = {K[0, 0]}, "
                            f"fy = {K[1, 1]} (K is singular)")
    return K
