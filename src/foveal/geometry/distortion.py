"""Lens distortion: the radial-tangential (Brown–Conrady) model in OpenCV's coefficient order.

Distortion acts on *normalised* image coordinates ``(x, y) = (X/Z, Y/Z)`` in the camera frame,
before the intrinsics ``K``. With ``r² = x² + y²`` and coefficients
``(k₁, k₂, p₁, p₂[, k₃[, k₄, k₅, k₆]])``,

    f(r²) = (1 + k₁ r² + k₂ r⁴ + k₃ r⁶) / (1 + k₄ r² + k₅ r⁴ + k₆ r⁶)
    x_d = x f + 2 p₁ x y + p₂ (r² + 2x²)
    y_d = y f + p₁ (r² + 2y²) + 2 p₂ x y

and the pixel is ``K (x_d, y_d, 1)ᵀ``. Missing coefficients are 0 (4 or 5 coefficients give the
plain polynomial model, 8 the rational one). The map has no closed-form inverse; :func:`undistort`
solves ``distort(x) = x_d`` by Newton's method with the analytic 2×2 Jacobian.

References: D. C. Brown, "Decentering distortion of lenses", Photogrammetric Engineering 32(3),
1966; Z. Zhang, "A flexible new technique for camera calibration", IEEE TPAMI 22(11), 2000;
HZ §7.4; the OpenCV ``calib3d`` documentation (for the coefficient order).
"""

from __future__ import annotations

import numpy as np
import numpy.polynomial.polynomial as P_
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.validate import calibration_matrix, points

_COUNTS = (4, 5, 8)


def distortion_coefficients(dist: ArrayLike | None, op: str = "distortion_coefficients"
                            ) -> np.ndarray:
    """``dist`` as the 8 coefficients ``(k₁, k₂, p₁, p₂, k₃, k₄, k₅, k₆)``, zeros filled in.

    Accepts ``None`` (no distortion) or 4, 5 or 8 numbers in OpenCV order, any shape that
    flattens to that (OpenCV returns ``(1, 5)``).
    """
    if dist is None:
        return np.zeros(8)
    try:
        d = np.asarray(dist, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{op}: expected dist as a numeric array, got "
                            f"{type(dist).__name__} ({exc})") from None
    if d.size not in _COUNTS:
        raise GeometryError(f"{op}: expected dist with 4, 5 or 8 coefficients (k1, k2, p1, p2"
                            f"[, k3[, k4, k5, k6]]), got {d.size}")
    if not np.all(np.isfinite(d)):
        raise GeometryError(f"{op}: expected finite dist, got {d.tolist()}")
    return np.concatenate([d, np.zeros(8 - d.size)])


def _distort(xy: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distorted points (N, 2) and the Jacobians ∂(x_d, y_d)/∂(x, y) (N, 2, 2)."""
    k1, k2, p1, p2, k3, k4, k5, k6 = d
    x, y = xy[:, 0], xy[:, 1]
    r2 = x * x + y * y
    num = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    den = 1 + r2 * (k4 + r2 * (k5 + r2 * k6))
    f = num / den
    # d f / d(r²) by the quotient rule.
    df = ((k1 + r2 * (2 * k2 + 3 * k3 * r2)) * den - num * (k4 + r2 * (2 * k5 + 3 * k6 * r2))) \
        / (den * den)
    xd = x * f + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * f + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    J = np.empty((len(xy), 2, 2))
    J[:, 0, 0] = f + 2 * x * x * df + 2 * p1 * y + 6 * p2 * x
    J[:, 0, 1] = J[:, 1, 0] = 2 * x * y * df + 2 * p1 * x + 2 * p2 * y
    J[:, 1, 1] = f + 2 * y * y * df + 6 * p1 * y + 2 * p2 * x
    return np.stack([xd, yd], axis=1), J


def _radial_limit(d: np.ndarray) -> float:
    """The squared radius ``s* = r²`` up to which the radial map ``r ↦ r f(r²)`` increases.

    Beyond the first zero of ``d(r f)/dr`` the lens model folds back (several undistorted radii
    give one distorted radius) and beyond a zero of the denominator it is undefined, so only
    ``r² < s*`` is physical. With ``s = r²``, ``d(r f)/dr = P(s) / den(s)²`` where
    ``P = (num + 2s num′) den − 2s num den′``; ``s*`` is the smallest positive real root of
    ``P`` or ``den`` (``inf`` if none).
    """
    k1, k2, _, _, k3, k4, k5, k6 = d
    num, den = np.array([1.0, k1, k2, k3]), np.array([1.0, k4, k5, k6])  # ascending powers of s
    s_ = np.array([0.0, 1.0])
    P = P_.polysub(P_.polymul(P_.polyadd(num, 2 * P_.polymul(s_, P_.polyder(num))), den),
                   2 * P_.polymul(P_.polymul(s_, num), P_.polyder(den)))
    roots = np.concatenate([P_.polyroots(P_.polytrim(P)) if np.any(P[1:]) else [],
                            P_.polyroots(P_.polytrim(den)) if np.any(den[1:]) else []])
    real = roots[np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots.real))].real
    positive_roots = real[real > 0]
    return float(positive_roots.min()) if positive_roots.size else np.inf


def distort(xy: ArrayLike, dist: ArrayLike | None) -> np.ndarray:
    """Distorted normalised coordinates (N, 2) of undistorted normalised ``xy`` (N, 2).

    ``x_d = x f(r²) + 2 p₁ x y + p₂ (r² + 2x²)``, ``y_d = y f(r²) + p₁ (r² + 2y²) + 2 p₂ x y``
    (module docstring; Brown 1966).
    """
    xy = points(xy, 2, "distort", "xy")
    return _distort(xy, distortion_coefficients(dist, "distort"))[0]


def distortion_jacobian(xy: ArrayLike, dist: ArrayLike | None) -> np.ndarray:
    """``∂(x_d, y_d) / ∂(x, y)`` (N, 2, 2) of :func:`distort` at normalised ``xy`` (N, 2).

    The matrix is symmetric: ``∂x_d/∂y = ∂y_d/∂x = 2xy f′ + 2p₁x + 2p₂y``.
    """
    xy = points(xy, 2, "distortion_jacobian", "xy")
    return _distort(xy, distortion_coefficients(dist, "distortion_jacobian"))[1]


def undistort(xy_distorted: ArrayLike, dist: ArrayLike | None, *, iterations: int = 20,
              tol: float = 1e-14) -> np.ndarray:
    """Undistorted normalised coordinates (N, 2) of distorted normalised ones (N, 2).

    Newton's method on ``g(x) = distort(x) − x_d``: ``x ← x − J(x)⁻¹ g(x)``, starting from
    ``x = x_d`` and stopping when every step is below ``tol``. Newton converges quadratically
    where the fixed-point scheme ``x ← (x_d − Δ_tangential(x)) / f(r²)`` (OpenCV's) needs many
    iterations for strong distortion and may stall.

    A point outside the region where the model is invertible has no undistorted position and
    comes back as NaN rather than as a wrong number: a solution must lie inside the radius
    where ``r f(r²)`` stops increasing (the fold, from the roots of a polynomial in ``r²``) and
    have ``det J > 0``. Without that check Newton happily returns roots on the far side of the
    fold, e.g. ``(−1.9, −1.9)`` for ``(5, 5)`` with ``k₁ = −0.5``, where ``f < 0`` mirrors
    the point through the centre.
    """
    xd = points(xy_distorted, 2, "undistort", "xy_distorted")
    d = distortion_coefficients(dist, "undistort")
    if not np.any(d):
        return xd.copy()
    x = xd.copy()
    todo = np.arange(len(x))  # points still moving
    for _ in range(iterations):
        if todo.size == 0:
            break
        xi = x[todo]
        g, J = _distort(xi, d)
        r0, r1 = g[:, 0] - xd[todo, 0], g[:, 1] - xd[todo, 1]
        det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
        # Solve J step = r by Cramer's rule (2×2). A singular J (the model folds) gives inf/NaN,
        # which drops the point here and fails the final check.
        with np.errstate(divide="ignore", invalid="ignore"):
            sx = (J[:, 1, 1] * r0 - J[:, 0, 1] * r1) / det
            sy = (J[:, 0, 0] * r1 - J[:, 1, 0] * r0) / det
        xi[:, 0] -= sx
        xi[:, 1] -= sy
        x[todo] = xi
        size = np.maximum(np.abs(sx), np.abs(sy))
        todo = todo[size > tol * (1 + np.maximum(np.abs(xi[:, 0]), np.abs(xi[:, 1])))]
    # Accept only true solutions where the model is locally invertible and keeps orientation.
    with np.errstate(invalid="ignore", over="ignore"):
        g, J = _distort(x, d)
        det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
        err = np.maximum(np.abs(g[:, 0] - xd[:, 0]), np.abs(g[:, 1] - xd[:, 1]))
        scale = 1 + np.maximum(np.abs(xd[:, 0]), np.abs(xd[:, 1]))
        r2 = x[:, 0] ** 2 + x[:, 1] ** 2
        ok = (det > 0) & (err <= 1e-9 * scale) & (r2 < _radial_limit(d))  # False for NaN
    x[~ok] = np.nan
    return x


def undistort_points(pixels: ArrayLike, K: ArrayLike, dist: ArrayLike | None, *,
                     normalised: bool = False) -> np.ndarray:
    """Remove lens distortion from pixels (N, 2).

    ``x_d = K⁻¹ (u, v, 1)ᵀ``, ``x = undistort(x_d)``; returns the ideal pinhole pixels
    ``K (x, 1)ᵀ`` (N, 2), or the normalised ``x`` itself when ``normalised=True`` (what
    ``cv2.undistortPoints`` returns without ``P``). Points that cannot be undistorted are NaN.
    """
    # Imported here because camera.py imports this module for its projection.
    from foveal.geometry.camera import invert_intrinsics

    uv = points(pixels, 2, "undistort_points", "pixels")
    K = calibration_matrix(K, "undistort_points")
    d = distortion_coefficients(dist, "undistort_points")
    K_inv = invert_intrinsics(K)
    x = undistort(uv @ K_inv[:2, :2].T + K_inv[:2, 2], d)
    if normalised:
        return x
    return x @ K[:2, :2].T + K[:2, 2]
