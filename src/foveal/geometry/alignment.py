"""Similarity alignment of point sets and the errors of reconstructed cameras against ground truth.

A reconstruction from images alone is defined up to a similarity (scale ``s``, rotation ``R``,
translation ``t``). Before comparing it with ground truth we find the similarity that maps the
reconstructed points ``X`` closest to the true ones ``Y`` in least squares,

    min_{s, R, t} Σᵢ ‖Yᵢ − (s R Xᵢ + t)‖²,

in closed form (Umeyama 1991): with centred sets ``X̄``, ``Ȳ`` and the cross-covariance
``Σ = Ȳᵀ X̄ / n = U D Vᵀ``, ``R = U S Vᵀ`` where ``S = diag(1, …, 1, det(U Vᵀ))`` (the sign fix
that keeps ``R`` a rotation, not a reflection), ``s = tr(D S) / σ²_X`` and
``t = μ_Y − s R μ_X``.

A camera ``(R_c, t_c)`` (world → camera) of the reconstruction, mapped into the ground-truth frame
by ``Y = s R X + t``, becomes ``R_c' = R_c Rᵀ`` with centre ``C' = s R C + t``.

Reference: S. Umeyama, "Least-squares estimation of transformation parameters between two point
patterns", IEEE TPAMI 13(4), 1991.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.validate import points


@dataclass(frozen=True)
class Similarity:
    """``y = scale · R x + t``."""

    scale: float
    R: np.ndarray
    t: np.ndarray

    def apply(self, x: ArrayLike) -> np.ndarray:
        """Map (N, d) points."""
        return self.scale * np.asarray(x, dtype=np.float64) @ self.R.T + self.t


def umeyama(src: ArrayLike, dst: ArrayLike, *, with_scale: bool = True) -> Similarity:
    """The least-squares similarity (or rigid motion) mapping ``src`` (N, d) onto ``dst`` (N, d).

    Needs at least ``d`` points not all on one (d−2)-dimensional flat (three non-collinear
    points in 3-D); raises :class:`~foveal.errors.GeometryError` otherwise.
    """
    x = np.asarray(src, dtype=np.float64)
    d = x.shape[1] if x.ndim == 2 else 0
    x = points(x, d if d else 3, "umeyama", "src", minimum=max(d, 2))
    y = points(dst, x.shape[1], "umeyama", "dst", count=len(x))
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    var_x = (xc**2).sum() / len(x)
    if var_x < 1e-300:
        raise GeometryError("umeyama: expected src points that are not all equal, got "
                            f"{len(x)} copies of one point")
    U, D, Vt = np.linalg.svd(yc.T @ xc / len(x))
    if D.size > 1 and D[-2] <= 1e-12 * max(D[0], 1e-300):
        raise GeometryError(f"umeyama: degenerate src/dst: the points span fewer than "
                            f"{x.shape[1] - 1} dimensions (singular values {D})")
    S = np.ones(len(D))
    S[-1] = np.sign(np.linalg.det(U @ Vt)) or 1.0
    R = U @ np.diag(S) @ Vt
    scale = float((D * S).sum() / var_x) if with_scale else 1.0
    return Similarity(scale, R, my - scale * R @ mx)


def rotation_angle_deg(R_a: ArrayLike, R_b: ArrayLike) -> np.ndarray:
    """Angle of ``R_a R_bᵀ`` in degrees, for (..., 3, 3) stacks: ``acos((tr − 1) / 2)``."""
    Ra, Rb = np.asarray(R_a, dtype=np.float64), np.asarray(R_b, dtype=np.float64)
    trace = np.einsum("...ij,...ij->...", Ra, Rb)  # tr(R_a R_bᵀ) without forming the product
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


@dataclass(frozen=True)
class PoseErrors:
    """Per-camera errors after aligning the reconstruction to ground truth."""

    similarity: Similarity
    rotation_deg: np.ndarray  # (M,)
    center: np.ndarray  # (M,) in ground-truth units

    @property
    def median_rotation_deg(self) -> float:
        return float(np.median(self.rotation_deg))

    @property
    def median_center(self) -> float:
        return float(np.median(self.center))


def camera_pose_errors(R_est: ArrayLike, C_est: ArrayLike, R_true: ArrayLike,
                       C_true: ArrayLike) -> PoseErrors:
    """Align estimated camera centres to the true ones (Umeyama), then compare every camera.

    ``R_*`` (M, 3, 3) world → camera rotations, ``C_*`` (M, 3) camera centres; M ≥ 3 cameras
    not all on one line.
    """
    R_est = np.asarray(R_est, dtype=np.float64)
    R_true = np.asarray(R_true, dtype=np.float64)
    if R_est.shape != R_true.shape or R_est.shape[1:] != (3, 3):
        raise GeometryError(f"camera_pose_errors: expected two (M, 3, 3) rotation stacks of "
                            f"equal shape, got {R_est.shape} and {R_true.shape}")
    sim = umeyama(C_est, C_true)
    C_aligned = sim.apply(C_est)
    R_aligned = R_est @ sim.R.T
    return PoseErrors(
        similarity=sim,
        rotation_deg=rotation_angle_deg(R_aligned, R_true),
        center=np.linalg.norm(C_aligned - np.asarray(C_true, dtype=np.float64), axis=1),
    )
