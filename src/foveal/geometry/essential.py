"""The essential matrix: 8-point and 5-point solvers, RANSAC, decomposition into pose.

For calibrated cameras, with normalised image coordinates ``ŷ = K⁻¹ x̃`` and the relative pose
``x_cam2 = R x_cam1 + t``, correspondences satisfy (HZ §9.6, eq. 9.11)

    ŷ₂ᵀ E ŷ₁ = 0,      E = [t]× R,

because ``x_cam2``, ``t`` and ``R x_cam1`` are coplanar. ``E`` has 5 degrees of freedom (3 for
``R``, 2 for the direction of ``t``: the scale of ``t`` is lost) and is characterised by its
singular values ``(σ, σ, 0)`` (HZ Result 9.17), equivalently by the cubic constraints

    det E = 0,       2 E Eᵀ E − tr(E Eᵀ) E = 0                      (Nistér 2004, eq. 3–4).

**8-point.** :func:`essential_8point` runs the normalised 8-point algorithm
(:func:`foveal.geometry.fundamental.fundamental_8point`) on normalised coordinates and projects
the result onto the essential space, ``U diag(1, 1, 0) Vᵀ`` (HZ Result 9.18: the nearest
essential matrix in Frobenius norm has both non-zero singular values equal).

**5-point (Nistér 2004).** Five correspondences leave a 4-D null space ``X, Y, Z, W`` of the
linear system, ``E = x X + y Y + z Z + W``. Substituting into the ten cubic constraints gives a
10 × 20 system in the monomials of ``(x, y, z)`` up to degree 3, ordered

    x³, y³, x²y, xy², x²z, x², y²z, y², xyz, xy | xz², xz, x, yz², yz, y, z³, z², z, 1;

Gauss–Jordan elimination of the first ten columns leaves rows ``⟨e⟩ … ⟨j⟩`` led by ``x²z, x²,
y²z, y², xyz, xy``, and ``⟨e⟩ − z⟨f⟩``, ``⟨g⟩ − z⟨h⟩``, ``⟨i⟩ − z⟨j⟩`` are free of those leaders:
three equations ``B(z) (x, y, 1)ᵀ = 0`` whose coefficients are polynomials in ``z`` of degree 3,
3 and 4. Hence ``det B(z) = 0``, a polynomial of degree 10 whose real roots give up to 10
solutions; ``(x, y)`` come from the null vector of ``B(z)``. The solver here is vectorised over
blocks of RANSAC samples (batched SVD, elimination and companion-matrix roots).

**Pose.** With ``E = U diag(1, 1, 0) Vᵀ`` (``U``, ``V`` rotations) and
``W = [[0, −1, 0], [1, 0, 0], [0, 0, 1]]`` the four candidates are ``R ∈ {U W Vᵀ, U Wᵀ Vᵀ}``,
``t = ±u₃`` (HZ Result 9.19). Exactly one puts the scene in front of both cameras (cheirality,
HZ §9.6.3): :func:`recover_pose` triangulates and counts.

**Degeneracy.** A pure rotation (no baseline) makes ``E = [t]× R`` vanish on every match for
*any* ``t``: ``E`` and ``t`` are then undetermined. :func:`find_essential` and
:func:`recover_pose` detect it — the rotation alone (the infinite homography ``K₂ R K₁⁻¹``)
explains the matches, i.e. all triangulation angles are at noise level — and raise
:class:`~foveal.errors.GeometryError`. A planar scene is *not* degenerate for the 5-point
solver, unlike for the fundamental matrix, but it is ambiguous: the plane's homography
``H = K₂ (R + t nᵀ/d) K₁⁻¹`` has two decompositions with all points in front (Faugeras &
Lustman 1988), and the essential matrices of both fit every match exactly. From the matches
alone either may be returned; a third view or any point off the plane settles it.

References: HZ §9.6 (E, its decomposition, the four solutions); D. Nistér, "An efficient
solution to the five-point relative pose problem", IEEE TPAMI 26(6), 2004; H. Stewénius,
C. Engels and D. Nistér, "Recent developments on direct relative orientation", ISPRS J. 60(4),
2006; O. Faugeras and F. Lustman, "Motion and structure from motion in a piecewise planar
environment", IJPRAI 2(3), 1988.
"""

from __future__ import annotations

from itertools import product

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.camera import invert_intrinsics
from foveal.geometry.epipolar import (
    _calibrations,
    _fundamental_matrix,
    _normalised,
    _signed_sampson,
    _squared_sampson,
)
from foveal.geometry.fundamental import _design_rows, _eight_point, _orthonormal_fit, _pair
from foveal.geometry.ransac import ransac_batched
from foveal.geometry.rotation import project_to_so3
from foveal.geometry.triangulation import _null_vectors
from foveal.geometry.validate import positive

# ---------------------------------------------------------------------------------------------
# Polynomials in (x, y, z) for the 5-point solver
# ---------------------------------------------------------------------------------------------

# Exponents (of x, y, z) of the linear, quadratic and cubic monomial bases.
_LINEAR = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 0)]
_QUADRATIC = [e for e in product(range(3), repeat=3) if sum(e) <= 2]
_CUBIC = [(3, 0, 0), (0, 3, 0), (2, 1, 0), (1, 2, 0), (2, 0, 1), (2, 0, 0), (0, 2, 1),
          (0, 2, 0), (1, 1, 1), (1, 1, 0), (1, 0, 2), (1, 0, 1), (1, 0, 0), (0, 1, 2),
          (0, 1, 1), (0, 1, 0), (0, 0, 3), (0, 0, 2), (0, 0, 1), (0, 0, 0)]  # Nistér's order


def _product_tensor(left: list, right: list, out: list) -> np.ndarray:
    """``T[i, j, k] = 1`` when monomial ``left[i]`` times ``right[j]`` is ``out[k]``: the product
    of coefficient vectors ``a``, ``b`` is then ``einsum('i,j,ijk', a, b, T)``."""
    index = {e: k for k, e in enumerate(out)}
    T = np.zeros((len(left), len(right), len(out)))
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            T[i, j, index[tuple(p + q for p, q in zip(a, b, strict=True))]] = 1.0
    return T


_LIN_LIN = _product_tensor(_LINEAR, _LINEAR, _QUADRATIC)
_QUAD_LIN = _product_tensor(_QUADRATIC, _LINEAR, _CUBIC)

_REAL_RTOL = 1e-8  # relative imaginary part below which a root of the degree-10 polynomial is real

# Pure rotation: the rotation alone explains at least this fraction of E's inliers, within
# this multiple of the threshold (its transfer error carries the noise of both images, ~√2 × a
# Sampson distance, so at 1 × t it would miss a third of the matches of a true pure rotation).
_ROTATION_ONLY_FRACTION = 0.95
_TRANSFER_MULTIPLIER = 3.0


def _normalised_coordinates(x: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``K⁻¹ x̃`` (N, 2) of pixels (N, 2)."""
    K_inv = invert_intrinsics(K)
    return x @ K_inv[:2, :2].T + K_inv[:2, 2]


def _polymul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Products (..., m + n − 1) of polynomials in z, ascending coefficients (..., m), (..., n)."""
    out = np.zeros((*np.broadcast_shapes(a.shape[:-1], b.shape[:-1]),
                    a.shape[-1] + b.shape[-1] - 1))
    for i in range(a.shape[-1]):
        out[..., i:i + b.shape[-1]] += a[..., i:i + 1] * b
    return out


def _constraint_matrix(basis: np.ndarray) -> np.ndarray:
    """The 10 × 20 cubic constraints (B, 10, 20) on ``E = x X + y Y + z Z + W``, with
    ``basis`` (B, 4, 3, 3) holding ``X, Y, Z, W``."""
    E = np.moveaxis(basis, 1, -1)  # (B, 3, 3, 4): each entry a linear polynomial
    EEt = np.einsum("bikp,bjkq,pqr->bijr", E, E, _LIN_LIN, optimize=True)
    trace = EEt[:, 0, 0] + EEt[:, 1, 1] + EEt[:, 2, 2]
    EEtE = np.einsum("bikr,bkjs,rst->bijt", EEt, E, _QUAD_LIN, optimize=True)
    trE = np.einsum("br,bijs,rst->bijt", trace, E, _QUAD_LIN, optimize=True)
    # det E by the first row: E₀ⱼ times the cofactor of rows 1–2
    cof = np.stack([np.einsum("bp,bq,pqr->br", E[:, 1, (j + 1) % 3], E[:, 2, (j + 2) % 3],
                              _LIN_LIN)
                    - np.einsum("bp,bq,pqr->br", E[:, 1, (j + 2) % 3], E[:, 2, (j + 1) % 3],
                                _LIN_LIN) for j in range(3)], axis=1)
    det = np.einsum("bjr,bjs,rst->bt", cof, E[:, 0], _QUAD_LIN)
    return np.concatenate([det[:, None], (2.0 * EEtE - trE).reshape(-1, 9, 20)], axis=1)


def _five_point(y1: np.ndarray, y2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All real 5-point essential matrices for B samples of normalised points (B, n, 2), n ≥ 5.

    Returns ``(E (K, 3, 3), owners (K,))``, ascending owners, ``‖E‖_F = √2``, canonical sign.
    With n > 5 the null space is the least-squares one (four smallest singular vectors)."""
    At = _design_rows(y1, y2)
    _, _, Vt = np.linalg.svd(np.swapaxes(At, -1, -2), full_matrices=True)
    basis = Vt[:, 5:9].reshape(-1, 4, 3, 3)  # X, Y, Z, W
    C = _constraint_matrix(basis)
    try:
        G = np.linalg.solve(C[:, :, :10], C[:, :, 10:])  # Gauss–Jordan: [I | G]
    except np.linalg.LinAlgError:
        G = np.stack([_solve_or_nan(c) for c in C])
    # Rows 4..9 lead with x²z, x², y²z, y², xyz, xy. A row's remainder in the basis
    # xz², xz, x, yz², yz, y, z³, z², z, 1 gives, as ascending polynomials in z (length 5),
    # the coefficients of x: (G₂, G₁, G₀), of y: (G₅, G₄, G₃), of 1: (G₉, G₈, G₇, G₆).
    def as_polys(row: np.ndarray) -> np.ndarray:
        P = np.zeros((len(row), 3, 5))
        P[:, 0, :3] = row[:, [2, 1, 0]]
        P[:, 1, :3] = row[:, [5, 4, 3]]
        P[:, 2, :4] = row[:, [9, 8, 7, 6]]
        return P

    def shifted(P: np.ndarray) -> np.ndarray:  # z · P
        return np.concatenate([np.zeros((*P.shape[:-1], 1)), P[..., :-1]], axis=-1)

    Bz = np.stack([as_polys(G[:, 2 * k + 4]) - shifted(as_polys(G[:, 2 * k + 5]))
                   for k in range(3)], axis=1)  # (B, 3 rows k l m, 3 cols x y 1, 5)
    det = (_polymul(Bz[:, 0, 0], _polymul(Bz[:, 1, 1], Bz[:, 2, 2])
                    - _polymul(Bz[:, 1, 2], Bz[:, 2, 1]))
           - _polymul(Bz[:, 0, 1], _polymul(Bz[:, 1, 0], Bz[:, 2, 2])
                      - _polymul(Bz[:, 1, 2], Bz[:, 2, 0]))
           + _polymul(Bz[:, 0, 2], _polymul(Bz[:, 1, 0], Bz[:, 2, 1])
                      - _polymul(Bz[:, 1, 1], Bz[:, 2, 0])))  # (B, 11) ascending
    z, owners = _real_roots(det[:, :11])
    # Evaluate B(z) and take its null vector (x, y, 1) from the largest cross product of rows.
    powers = z[:, None] ** np.arange(5)
    Bv = np.einsum("kijd,kd->kij", Bz[owners], powers)
    cands = np.stack([np.cross(Bv[:, 0], Bv[:, 1]), np.cross(Bv[:, 0], Bv[:, 2]),
                      np.cross(Bv[:, 1], Bv[:, 2])], axis=1)
    v = cands[np.arange(len(z)), np.argmax(np.linalg.norm(cands, axis=2), axis=1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = v[:, 0] / v[:, 2], v[:, 1] / v[:, 2]
    coeff = np.stack([x, y, z, np.ones_like(z)], axis=1)
    E = np.einsum("kc,kcij->kij", coeff, basis[owners])
    ok = np.isfinite(E).all(axis=(1, 2)) & (np.abs(E).sum(axis=(1, 2)) > 0)
    return _normalised(E[ok], np.sqrt(2.0)), owners[ok]


def _solve_or_nan(C: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(C[:, :10], C[:, 10:])
    except np.linalg.LinAlgError:  # a degenerate sample: no solutions from it
        return np.full((10, 10), np.nan)


def _real_roots(coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real roots of polynomials with ascending coefficients (B, d + 1), batched through their
    companion matrices; returns ``(roots (K,), owners (K,))``. A vanishing leading coefficient
    (a root at infinity) or a NaN row gives no roots for that row."""
    B, d = coeffs.shape[0], coeffs.shape[1] - 1
    lead = coeffs[:, -1]
    ok = np.isfinite(coeffs).all(axis=1) & (np.abs(lead) > 1e-12 * np.abs(coeffs).max(axis=1))
    C = np.zeros((int(ok.sum()), d, d))
    C[:, 0, :] = -coeffs[ok, -2::-1] / lead[ok, None]
    C[:, np.arange(1, d), np.arange(d - 1)] = 1.0
    roots = np.full((B, d), np.nan + 0j)
    if len(C):
        roots[ok] = np.linalg.eigvals(C)
    real = np.abs(roots.imag) <= _REAL_RTOL * np.maximum(1.0, np.abs(roots.real))
    owners, which = np.nonzero(real)
    return roots.real[owners, which], owners


# ---------------------------------------------------------------------------------------------
# Public solvers
# ---------------------------------------------------------------------------------------------

def project_to_essential(M: ArrayLike) -> np.ndarray:
    """The essential matrix nearest to ``M`` (3, 3): ``U diag(1, 1, 0) Vᵀ`` for ``M = U Σ Vᵀ``
    (HZ Result 9.18, up to the scale ``(σ₁ + σ₂)/2`` that a homogeneous matrix does not
    need), so ``‖E‖_F = √2``, with a canonical sign."""
    M = _fundamental_matrix(M, "project_to_essential", "M")
    U, _, Vt = np.linalg.svd(M)
    return _normalised((U * [1.0, 1.0, 0.0]) @ Vt, np.sqrt(2.0))


def essential_8point(x1: ArrayLike, x2: ArrayLike, K1: ArrayLike, K2: ArrayLike | None = None
                     ) -> np.ndarray:
    """``E`` (3, 3) from N ≥ 8 correspondences (pixels, (N, 2)) and calibrations ``K1``, ``K2``
    (``None``: same as ``K1``): the normalised 8-point algorithm on ``K⁻¹ x̃``, projected onto
    the essential space (:func:`project_to_essential`). Singular values ``(1, 1, 0)``.

    Raises :class:`~foveal.errors.GeometryError` for fewer than 8 points, NaN, mismatched
    lengths, or degenerate (e.g. exactly planar) configurations; use :func:`essential_5point`
    or :func:`find_essential` for planar scenes.
    """
    op = "essential_8point"
    x1, x2 = _pair(x1, x2, op, 8)
    K1, K2 = _calibrations(K1, K2, op)
    F = _eight_point(_normalised_coordinates(x1, K1), _normalised_coordinates(x2, K2), op)
    return project_to_essential(F)


def essential_5point(x1: ArrayLike, x2: ArrayLike, K1: ArrayLike, K2: ArrayLike | None = None
                     ) -> np.ndarray:
    """All real essential matrices (k, 3, 3), 0 ≤ k ≤ 10, through 5 correspondences (Nistér).

    ``x1``, ``x2`` (N, 2) pixels with N ≥ 5 (N > 5: the 4-D null space in the least-squares
    sense, then the same solver); ``K1``, ``K2`` calibrations (``K2 = None``: ``K1``). Each
    ``E`` has singular values ``(1, 1, 0)`` up to round-off and a canonical sign. Works for
    planar scenes too (where two solutions fit the whole plane, see the module docstring).
    Pick among the solutions with more points, e.g. by :func:`find_essential`.
    """
    op = "essential_5point"
    x1, x2 = _pair(x1, x2, op, 5)
    K1, K2 = _calibrations(K1, K2, op)
    y1, y2 = _normalised_coordinates(x1, K1), _normalised_coordinates(x2, K2)
    s = np.linalg.svd(np.swapaxes(_design_rows(y1, y2), -1, -2), compute_uv=False)
    if s[4] <= 1e-9 * s[0]:
        raise GeometryError(f"{op}: degenerate correspondences: fewer than 5 independent "
                            "epipolar equations (repeated or collinear points)")
    E, _ = _five_point(y1[None], y2[None])
    return E


def _pixel_fundamentals(E: np.ndarray, K1: np.ndarray, K2: np.ndarray) -> np.ndarray:
    return invert_intrinsics(K2).T @ E @ invert_intrinsics(K1)


def find_essential(x1: ArrayLike, x2: ArrayLike, K1: ArrayLike, K2: ArrayLike | None = None,
                   threshold: float = 1.0, confidence: float = 0.999, seed: int = 0, *,
                   max_iterations: int = 10_000, refine: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Robust ``E`` and its inliers from N ≥ 5 correspondences ``x1 ↔ x2`` (N, 2) pixels.

    RANSAC over 5-point samples (:func:`essential_5point`, up to 10 hypotheses each, vectorised
    over blocks of samples) scored by the Sampson distance *in pixels* of
    ``F = K₂⁻ᵀ E K₁⁻¹`` against ``threshold`` (so two different cameras are handled exactly,
    not through a mean focal length), MSAC cost, adaptive stopping at ``confidence``, LO by
    the 5-point solver on all the inliers (least-squares null space; the 8-point estimate
    projected onto the essential space is markedly worse); then with ``refine`` the Sampson
    error over the inliers is minimised over essential matrices ``U diag(1, 1, 0) Vᵀ`` and the
    inliers recomputed.

    Returns ``(E, inliers)``: ``E`` (3, 3) with singular values ``(1, 1, 0)`` and a canonical
    sign, ``inliers`` (N,) bool. As ``cv2.findEssentialMat(x1, x2, K, cv2.RANSAC, prob,
    threshold)`` for ``K1 = K2 = K``.

    Raises :class:`~foveal.errors.GeometryError` for bad input, when no model has 5 inliers,
    and for a pure rotation: when the best rotation alone (``x̃₂ ∼ K₂ R K₁⁻¹ x̃₁``) explains
    95 % of the inliers within ``3 × threshold`` (a transfer error, with the noise of both
    images), there is no baseline and ``E`` is not determined.
    """
    op = "find_essential"
    x1, x2 = _pair(x1, x2, op, 5)
    K1, K2 = _calibrations(K1, K2, op)
    threshold = positive(threshold, op, "threshold")
    y1, y2 = _normalised_coordinates(x1, K1), _normalised_coordinates(x2, K2)
    h1 = np.vstack([x1.T, np.ones(len(x1))]).astype(np.float32)  # scoring only
    h2 = np.vstack([x2.T, np.ones(len(x2))]).astype(np.float32)
    left, right = invert_intrinsics(K2), invert_intrinsics(K1)

    def fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _five_point(y1[samples], y2[samples])

    def squared(models: np.ndarray) -> np.ndarray:
        return _squared_sampson(left.T @ np.asarray(models) @ right, h1, h2)

    def refit(idx: np.ndarray) -> np.ndarray | None:
        # The 5-point solver on all of idx (least-squares null space, constraints exact) beats
        # the 8-point-and-project refit by far: projection moves a noisy estimate a lot.
        E, _ = _five_point(y1[idx][None], y2[idx][None])
        if len(E) == 0:
            return None
        t2 = threshold * threshold
        return E[np.argmin(np.minimum(squared(E), t2).sum(axis=1))]

    result = ransac_batched(len(x1), 5, fit, squared, threshold, refine=refit,
                            confidence=confidence, max_iterations=max_iterations, seed=seed)
    inliers = result.inliers
    if result.model is None or inliers.sum() < 5:
        raise GeometryError(f"{op}: expected an essential matrix with at least 5 inliers within "
                            f"{threshold} px, got {int(inliers.sum())} after "
                            f"{result.iterations} RANSAC iterations")
    E = np.asarray(result.model)
    if refine and inliers.sum() >= 6:
        for _ in range(2):
            M = _orthonormal_fit(E, x1[inliers], x2[inliers], left=left, right=right,
                                 essential=True)
            E = _normalised(M, np.sqrt(2.0))
            updated = np.abs(_signed_sampson(left.T @ E @ right, x1, x2)) < threshold
            if np.array_equal(updated, inliers) or updated.sum() < 6:
                break
            inliers = updated
    _check_baseline(E, x1, x2, K1, K2, inliers, threshold, op)
    return E, inliers


def _rotation_residuals(R: np.ndarray, x1: np.ndarray, x2: np.ndarray, K1: np.ndarray,
                        K2: np.ndarray) -> np.ndarray:
    """Pixel distances (N,) of ``x₂`` from ``K₂ R K₁⁻¹ x̃₁`` (the infinite homography);
    ``inf`` where that maps behind the camera."""
    H = K2 @ R @ invert_intrinsics(K1)
    p = np.column_stack([x1, np.ones(len(x1))]) @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.linalg.norm(p[:, :2] / p[:, 2:] - x2, axis=1)
    return np.where(p[:, 2] > 0, d, np.inf)


def _check_baseline(E: np.ndarray, x1: np.ndarray, x2: np.ndarray, K1: np.ndarray,
                    K2: np.ndarray, inliers: np.ndarray, threshold: float, op: str) -> None:
    """Raise when a rotation alone explains ≥ 95 % of the inliers within ``3 t`` (no baseline).

    Candidates: the two rotations of ``E`` (under a pure rotation ``R₀``, any ``E = [t]× R₀``
    fits, and its decomposition returns ``R₀``), each re-fitted to the rays it explains
    (Wahba's problem: the rotation nearest to ``Σ b₂ b₁ᵀ``)."""
    n = int(inliers.sum())
    if n == 0:
        return
    a, b = x1[inliers], x2[inliers]
    b1 = np.column_stack([a, np.ones(n)]) @ invert_intrinsics(K1).T
    b2 = np.column_stack([b, np.ones(n)]) @ invert_intrinsics(K2).T
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
    best, within = 0, _TRANSFER_MULTIPLIER * threshold
    for R in _decompose(E)[:2]:
        near = _rotation_residuals(R, a, b, K1, K2) < within
        if near.sum() >= 3:
            R = project_to_so3(b2[near].T @ b1[near])
        best = max(best, int((_rotation_residuals(R, a, b, K1, K2) < within).sum()))
    if best >= _ROTATION_ONLY_FRACTION * n:
        raise GeometryError(f"{op}: degenerate: a pure rotation explains {best} of the {n} "
                            f"inliers within {within:g} px (no baseline: E and t are not "
                            "determined; estimate a rotation or homography instead)")


def _decompose(E: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    U, _, Vt = np.linalg.svd(E)
    # U, V rotations: flipping the sign of U or V flips that of E, which is homogeneous anyway
    U = U * np.sign(np.linalg.det(U))
    Vt = Vt * np.sign(np.linalg.det(Vt))
    W = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return U @ W @ Vt, U @ W.T @ Vt, U[:, 2].copy()


def decompose_essential(E: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two rotations and the translation direction of ``E``: ``(R1, R2, t)``.

    ``E = U diag(1, 1, 0) Vᵀ`` with ``det U = det V = +1`` (the sign of ``E`` is free, so
    flipping ``U`` or ``V`` costs nothing), ``W = [[0, −1, 0], [1, 0, 0], [0, 0, 1]]``:

        R1 = U W Vᵀ,   R2 = U Wᵀ Vᵀ,   t = u₃ (‖t‖ = 1),

    and the four poses ``(R1, ±t)``, ``(R2, ±t)`` all satisfy ``E ∼ [t]× R`` (HZ Result 9.19).
    ``R1`` and ``R2`` differ by a rotation of π about the baseline (the "twisted pair");
    ``±t`` mirror the scene through camera 1. As ``cv2.decomposeEssentialMat``; use
    :func:`recover_pose` to pick the physical one.
    """
    op = "decompose_essential"
    E = _fundamental_matrix(E, op, "E")
    s = np.linalg.svd(E, compute_uv=False)
    if s[1] <= 1e-6 * s[0]:
        raise GeometryError(f"{op}: expected E of rank 2, got singular values "
                            f"{np.array2string(s / s[0], precision=3)} (relative)")
    return _decompose(E)


def recover_pose(E: ArrayLike, x1: ArrayLike, x2: ArrayLike, K1: ArrayLike,
                 K2: ArrayLike | None = None, *, mask: ArrayLike | None = None,
                 threshold: float = 1.0, max_depth: float = 50.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pose ``(R, t, in_front)`` of camera 2 relative to camera 1 from ``E`` and matches.

    Of the four candidates of :func:`decompose_essential` the one with the most points
    (among ``mask``, default all) in front of both cameras wins (cheirality, HZ §9.6.3): each
    point is triangulated by the DLT with ``P₁ = [I | 0]``, ``P₂ = [R | t]`` in normalised
    coordinates and counts when its depth is positive in both views and below
    ``max_depth`` baselines (far points have an unreliable depth sign; OpenCV's
    ``distanceThresh`` plays the same role). ``t`` has unit norm: the baseline's length is
    not observable. ``in_front`` (N,) bool marks those points (inside ``mask``). As
    ``cv2.recoverPose(E, x1, x2, K)``. For a planar scene ``E`` itself is one of two valid
    answers (module docstring); this picks the pose of the ``E`` it is given.

    Raises :class:`~foveal.errors.GeometryError` for bad input, when no point is in front of
    both cameras, and for a pure rotation (no baseline): when a rotation alone explains 95 %
    of the matches consistent with ``E`` (Sampson distance < ``threshold`` px) within
    ``3 × threshold``, the translation is undetermined and any choice of the four would be
    arbitrary.
    """
    op = "recover_pose"
    E = _fundamental_matrix(E, op, "E")
    x1, x2 = _pair(x1, x2, op, 1)
    K1, K2 = _calibrations(K1, K2, op)
    threshold = positive(threshold, op, "threshold")
    max_depth = positive(max_depth, op, "max_depth")
    if mask is None:
        use = np.ones(len(x1), dtype=bool)
    else:
        use = np.asarray(mask, dtype=bool).reshape(-1)
        if use.shape != (len(x1),):
            raise GeometryError(f"{op}: expected mask of shape ({len(x1)},), got "
                                f"{np.shape(mask)}")
    s = np.linalg.svd(E, compute_uv=False)
    if s[1] <= 1e-6 * s[0]:
        raise GeometryError(f"{op}: expected E of rank 2, got singular values "
                            f"{np.array2string(s / s[0], precision=3)} (relative)")
    consistent = use & (np.abs(_signed_sampson(_pixel_fundamentals(E, K1, K2), x1, x2))
                        < threshold)
    _check_baseline(E, x1, x2, K1, K2, consistent, threshold, op)
    y = np.stack([_normalised_coordinates(x1, K1), _normalised_coordinates(x2, K2)])
    R1, R2, t = _decompose(E)
    P1 = np.eye(3, 4)
    best: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
    for R, tt in ((R1, t), (R1, -t), (R2, t), (R2, -t)):
        P2 = np.column_stack([R, tt])
        Xh = _null_vectors(np.stack([P1, P2]), y, None)
        # depths of homogeneous points: z₁ / w and (R X + t w)_z / w, both must be positive
        w = Xh[:, 3]
        z1 = Xh[:, 2] * w
        z2 = (Xh[:, :3] @ R[2] + tt[2] * w) * w
        far = np.abs(Xh[:, 2]) >= max_depth * np.abs(w)
        good = use & (z1 > 0) & (z2 > 0) & ~far
        count = int(good.sum())
        if best is None or count > best[0]:
            best = (count, R, tt, good)
    assert best is not None
    count, R, tt, good = best
    if count == 0:
        raise GeometryError(f"{op}: expected points in front of both cameras for one of the "
                            f"four poses of E, got none (of {int(use.sum())} points)")
    return R, tt, good
