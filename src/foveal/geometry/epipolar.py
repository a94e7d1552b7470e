"""Epipolar geometry of two views: epipoles, epipolar lines, point-to-epipolar-line distances, and
the passages between F, E and the projection matrices.

Two cameras see a world point ``X`` at pixels ``x₁``, ``x₂``. The fundamental matrix ``F`` (3×3,
rank 2) is the bilinear constraint between them (HZ §9.2, eq. 9.3)

    x̃₂ᵀ F x̃₁ = 0,        x̃ = (u, v, 1)ᵀ.

``l₂ = F x̃₁`` is the epipolar line of ``x₁`` in image 2 and ``l₁ = Fᵀ x̃₂`` that of ``x₂`` in
image 1. The epipoles are the null vectors ``F e₁ = 0`` and ``Fᵀ e₂ = 0`` (the image of the other
camera's centre). With calibrations ``K₁``, ``K₂`` the essential matrix is (HZ eq. 9.12)

    E = K₂ᵀ F K₁ = [t]× R,

for the relative pose ``x_cam2 = R x_cam1 + t``. ``F`` and ``E`` are homogeneous: only their
ratios mean anything. Here ``F`` comes back with ``‖F‖_F = 1`` and a canonical sign (its entry of
largest magnitude positive), ``E`` with ``‖E‖_F = √2`` so that an exact essential matrix has
singular values ``(1, 1, 0)`` (``‖t‖ = 1``).

Distances, both in pixels:

- Sampson (HZ eq. 11.9), the first-order approximation of the geometric (reprojection) error,

      d_S² = (x̃₂ᵀ F x̃₁)² / ((F x̃₁)₁² + (F x̃₁)₂² + (Fᵀ x̃₂)₁² + (Fᵀ x̃₂)₂²);

- symmetric epipolar distance (HZ eq. 11.10), each point's distance to the other's epipolar line,

      d_sym² = d(x₂, F x̃₁)² + d(x₁, Fᵀ x̃₂)²,    d(x, l) = |lᵀ x̃| / √(l₁² + l₂²).

Reference: HZ §9.2 (F), §9.6 (E), §9.2.2 and §17.1 (F from two camera matrices), §11.4.3
(Sampson and symmetric epipolar errors).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.camera import invert_intrinsics
from foveal.geometry.validate import calibration_matrix, matrix, points

# A matrix whose smallest singular value is below this fraction of its largest has rank 2 to the
# precision of its construction; a rank-2 enforcement by SVD leaves ~1e-16 there.
_RANK_TWO_RTOL = 1e-6


def _normalised(F: np.ndarray, norm: float = 1.0) -> np.ndarray:
    """``F`` (..., 3, 3) scaled to ``‖F‖_F = norm`` with its entry of largest magnitude positive
    (the sign of a homogeneous matrix is arbitrary; fixing it makes results comparable)."""
    F = F * (norm / np.linalg.norm(F, axis=(-2, -1), keepdims=True))
    flat = F.reshape(*F.shape[:-2], 9)
    largest = np.take_along_axis(flat, np.argmax(np.abs(flat), axis=-1)[..., None], axis=-1)
    return np.where(largest[..., None] < 0, -F, F)


def _fundamental_matrix(F: ArrayLike, op: str, name: str = "F") -> np.ndarray:
    """``F`` as a finite, non-zero 3×3 float64 matrix."""
    F = matrix(F, (3, 3), op, name)
    if not np.any(F):
        raise GeometryError(f"{op}: expected a non-zero {name}, got the zero matrix")
    return F


def _homogeneous(x: np.ndarray) -> np.ndarray:
    return np.column_stack([x, np.ones(len(x))])


def _pair(x1: ArrayLike, x2: ArrayLike, op: str) -> tuple[np.ndarray, np.ndarray]:
    x1 = points(x1, 2, op, "x1")
    return x1, points(x2, 2, op, "x2", count=len(x1))


def epipoles(F: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The epipoles ``(e₁, e₂)`` of a rank-2 ``F``: ``F e₁ = 0`` and ``Fᵀ e₂ = 0`` (HZ result 9.8).

    ``e₁`` (in image 1) is the image of camera 2's centre, ``e₂`` (in image 2) that of camera
    1's. Both are homogeneous unit 3-vectors, because an epipole can be at infinity (parallel
    image planes): divide by the last coordinate for pixels when it is not ~0. Sign: last
    coordinate ≥ 0. From the SVD ``F = U Σ Vᵀ``: ``e₁ = v₃``, ``e₂ = u₃``.

    Raises :class:`~foveal.errors.GeometryError` unless ``F`` has rank 2 (``σ₃ ≤ 1e-6 σ₁`` and
    ``σ₂ > 1e-6 σ₁``): a noisy full-rank estimate has no epipole, so enforce rank 2 first.
    """
    op = "epipoles"
    F = _fundamental_matrix(F, op)
    U, s, Vt = np.linalg.svd(F)
    if s[2] > _RANK_TWO_RTOL * s[0] or s[1] <= _RANK_TWO_RTOL * s[0]:
        raise GeometryError(f"{op}: expected F of rank 2, got singular values "
                            f"{np.array2string(s / s[0], precision=3)} (relative)")
    e1, e2 = Vt[2], U[:, 2]
    return (e1 if e1[2] >= 0 else -e1), (e2 if e2[2] >= 0 else -e2)


def epipolar_lines(F: ArrayLike, x: ArrayLike, which: int = 1) -> np.ndarray:
    """Epipolar lines (N, 3) in the *other* image of pixels ``x`` (N, 2) of image ``which``.

    ``which = 1``: ``l₂ = F x̃₁`` (lines in image 2); ``which = 2``: ``l₁ = Fᵀ x̃₂`` (lines in
    image 1), as ``cv2.computeCorrespondEpilines(x, which, F)``. Each line ``(a, b, c)`` is
    scaled to ``a² + b² = 1``, so ``|lᵀ (u, v, 1)|`` is the distance in pixels from ``(u, v)``
    to it. A point at the epipole has no epipolar line: its row is ``(0, 0, 0)``.
    """
    op = "epipolar_lines"
    F = _fundamental_matrix(F, op)
    x = points(x, 2, op, "x")
    if which not in (1, 2):
        raise GeometryError(f"{op}: expected which = 1 or 2 (the image of x), got {which!r}")
    lines = _homogeneous(x) @ (F.T if which == 1 else F)
    norm = np.hypot(lines[:, 0], lines[:, 1])
    return np.divide(lines, norm[:, None], out=np.zeros_like(lines), where=norm[:, None] > 0)


def _residual_terms(F: np.ndarray, x1: np.ndarray, x2: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x̃₂ᵀ F x̃₁`` (N,), ``‖(F x̃₁)₁,₂‖²`` (N,) and ``‖(Fᵀ x̃₂)₁,₂‖²`` (N,)."""
    h1, h2 = _homogeneous(x1), _homogeneous(x2)
    l2 = h1 @ F.T  # F x̃₁ per row
    l1 = h2 @ F  # Fᵀ x̃₂ per row
    algebraic = np.einsum("ij,ij->i", h2, l2)
    return algebraic, l2[:, 0] ** 2 + l2[:, 1] ** 2, l1[:, 0] ** 2 + l1[:, 1] ** 2


def _signed_sampson(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``x̃₂ᵀ F x̃₁ / √(…)``: the Sampson distance with the sign of the algebraic residual,
    smooth through 0 (what a least-squares refinement wants); 0 at the epipoles."""
    r, g2, g1 = _residual_terms(F, x1, x2)
    den = np.sqrt(g1 + g2)
    return np.divide(r, den, out=np.zeros_like(r), where=den > 0)


def _squared_sampson(F: np.ndarray, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Squared Sampson distances (K, N) of K matrices ``F`` (K, 3, 3) on homogeneous points
    ``h1``, ``h2`` (3, N), for RANSAC scoring: one matrix product per term, computed in the
    dtype of ``h1`` (float32 halves the memory traffic; for 1 px-scale residuals it is exact
    to ~1e-4 px, plenty to rank hypotheses)."""
    k, dtype = len(F), h1.dtype
    F = np.asarray(F, dtype=dtype)
    l2 = (F.reshape(3 * k, 3) @ h1).reshape(k, 3, -1)  # F x̃₁ per point
    l1 = (np.swapaxes(F, 1, 2).reshape(3 * k, 3) @ h2).reshape(k, 3, -1)  # Fᵀ x̃₂
    r = l2[:, 0] * h2[0] + l2[:, 1] * h2[1] + l2[:, 2] * h2[2]
    r *= r
    den = l2[:, 0] ** 2
    den += l2[:, 1] ** 2
    den += l1[:, 0] ** 2
    den += l1[:, 1] ** 2
    return np.divide(r, den, out=np.zeros_like(r), where=den > 0)


def sampson_distance(F: ArrayLike, x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """Sampson distance (N,) in pixels of correspondences ``x1 ↔ x2`` (N, 2) under ``F``:

        d_S = |x̃₂ᵀ F x̃₁| / √((F x̃₁)₁² + (F x̃₁)₂² + (Fᵀ x̃₂)₁² + (Fᵀ x̃₂)₂²)   (HZ eq. 11.9)

    It is the first-order approximation of the distance (in the joint 4-D space of
    ``(x₁, x₂)``) from the measured pair to the nearest pair satisfying the epipolar constraint
    exactly, and for small errors it equals that reprojection distance. ``cv2.sampsonDistance``
    returns its square. ``F`` is used as given (any scale; rank 2 not required).
    """
    op = "sampson_distance"
    F = _fundamental_matrix(F, op)
    x1, x2 = _pair(x1, x2, op)
    return np.abs(_signed_sampson(F, x1, x2))


def symmetric_epipolar_distance(F: ArrayLike, x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """Symmetric epipolar distance (N,) in pixels:
    ``√(d(x₂, F x̃₁)² + d(x₁, Fᵀ x̃₂)²)``, each term the distance of a point to the epipolar line
    of its partner; the square is HZ's eq. 11.10 cost. A point at the epipole contributes 0."""
    op = "symmetric_epipolar_distance"
    F = _fundamental_matrix(F, op)
    x1, x2 = _pair(x1, x2, op)
    r, g2, g1 = _residual_terms(F, x1, x2)
    r2 = r * r
    d2 = np.divide(r2, g2, out=np.zeros_like(r), where=g2 > 0)
    d1 = np.divide(r2, g1, out=np.zeros_like(r), where=g1 > 0)
    return np.sqrt(d1 + d2)


def _calibrations(K1: ArrayLike, K2: ArrayLike | None, op: str) -> tuple[np.ndarray, np.ndarray]:
    K1 = calibration_matrix(K1, op, "K1")
    return K1, (K1 if K2 is None else calibration_matrix(K2, op, "K2"))


def essential_from_fundamental(F: ArrayLike, K1: ArrayLike, K2: ArrayLike | None = None
                               ) -> np.ndarray:
    """``E = K₂ᵀ F K₁`` (HZ eq. 9.12), scaled to ``‖E‖_F = √2`` with a canonical sign.

    ``K2 = None`` means both images share ``K1``. A noisy ``F`` gives a matrix whose two
    non-zero singular values differ; :func:`foveal.geometry.essential.project_to_essential`
    makes them equal.
    """
    op = "essential_from_fundamental"
    F = _fundamental_matrix(F, op)
    K1, K2 = _calibrations(K1, K2, op)
    return _normalised(K2.T @ F @ K1, np.sqrt(2.0))


def fundamental_from_essential(E: ArrayLike, K1: ArrayLike, K2: ArrayLike | None = None
                               ) -> np.ndarray:
    """``F = K₂⁻ᵀ E K₁⁻¹`` (HZ eq. 9.12 inverted), scaled to ``‖F‖_F = 1`` with a canonical sign.

    ``K2 = None`` means both images share ``K1``.
    """
    op = "fundamental_from_essential"
    E = _fundamental_matrix(E, op, "E")
    K1, K2 = _calibrations(K1, K2, op)
    return _normalised(invert_intrinsics(K2).T @ E @ invert_intrinsics(K1))


def fundamental_from_projections(P1: ArrayLike, P2: ArrayLike) -> np.ndarray:
    """``F`` of two camera matrices ``P₁``, ``P₂`` (3, 4), ``‖F‖_F = 1`` with a canonical sign.

    The bilinear form of HZ §17.1, eq. 17.3: with ``∼aⁱ`` the 2×4 matrix ``P₁`` without row
    ``i`` and ``∼bʲ`` ``P₂`` without row ``j``,

        F_ji = (−1)^(i+j) det [∼aⁱ ; ∼bʲ].

    Unlike ``F = [e₂]× P₂ P₁⁺`` (HZ eq. 9.1) it needs no pseudo-inverse and holds for every
    pair of cameras with distinct centres, cameras at infinity included. Raises
    :class:`~foveal.errors.GeometryError` when ``F`` vanishes: coincident centres (no baseline)
    or a rank-deficient ``P``.
    """
    op = "fundamental_from_projections"
    P1 = matrix(P1, (3, 4), op, "P1")
    P2 = matrix(P2, (3, 4), op, "P2")
    F = np.empty((3, 3))
    for i in range(3):
        a = np.delete(P1, i, axis=0)
        for j in range(3):
            F[j, i] = (-1) ** (i + j) * np.linalg.det(np.vstack([a, np.delete(P2, j, axis=0)]))
    scale = np.linalg.norm(P1) ** 2 * np.linalg.norm(P2) ** 2
    if np.linalg.norm(F) <= 1e-12 * scale:
        raise GeometryError(f"{op}: expected two cameras with distinct centres, got F = 0 "
                            f"(‖F‖ = {np.linalg.norm(F):.3g} against ‖P₁‖²‖P₂‖² = {scale:.3g})")
    return _normalised(F)
