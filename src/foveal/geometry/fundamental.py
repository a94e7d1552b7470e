"""The fundamental matrix from point correspondences: 8-point, 7-point, RANSAC, refinement.

Every correspondence ``x₁ ↔ x₂`` gives one linear equation ``x̃₂ᵀ F x̃₁ = 0`` in the nine entries
``f`` of ``F`` (row-major), HZ eq. 11.3:

    (u₂u₁, u₂v₁, u₂, v₂u₁, v₂v₁, v₂, u₁, v₁, 1) · f = 0.

**Normalised 8-point (HZ Algorithm 11.1).** Translate and scale each image's points so that
their centroid is 0 and their mean distance from it √2 (``ŷ = T x̃``, Hartley 1997); without this
the columns of the design matrix ``A`` differ by ~10⁵ (pixels² against 1) and the solution is
ruined by round-off and noise alike. Then ``f̂`` is the eigenvector of the 9×9 ``AᵀA`` of the
smallest eigenvalue (the right singular vector of ``A``), ``F̂`` is made rank 2 by zeroing its
smallest singular value (the nearest rank-2 matrix in Frobenius norm, HZ §11.1.1), and
``F = T₂ᵀ F̂ T₁``. Rank 2 must come *before* de-normalisation, where the Frobenius norm means
something.

**7-point (HZ §11.1.2).** Seven points leave a 2-D null space ``F₁``, ``F₂``; the rank condition
``det(α F₁ + (1 − α) F₂) = 0`` is a cubic in ``α`` with one or three real roots, each a solution.
With ``D = F₁ − F₂`` the cubic's coefficients are closed forms,

    det(F₂ + α D) = det F₂ + α tr(adj(F₂) D) + α² tr(F₂ adj(D)) + α³ det D.

**Robust estimation.** :func:`find_fundamental` runs RANSAC (:mod:`foveal.geometry.ransac`)
over 7-point (or 8-point) samples, vectorised over blocks of samples, scored by the Sampson
distance in pixels (:func:`foveal.geometry.epipolar.sampson_distance`), refits by the normalised
8-point algorithm on the inliers, and then minimises the Sampson error over the inliers with
``F`` kept exactly rank 2 through its orthonormal representation ``F = U diag(1, σ, 0) Vᵀ``,
``U``, ``V`` ∈ SO(3) (Bartoli & Sturm 2004): 7 parameters for 7 degrees of freedom.

**Degeneracy.** If every point lies on one world plane (or the cameras share a centre), the
images are related by a homography ``H`` and every ``F = [e₂]× H`` fits: ``F`` is not unique
(HZ §11.9). The design matrix then has a null space of dimension 3, not 1. The linear solvers
raise :class:`~foveal.errors.GeometryError` when the null space is larger than they need (exact
data). With noise, :func:`find_fundamental` fits a homography to the inliers; when it explains
all but a handful of them, RANSAC may simply have settled on a plane-induced ``F`` that ignores
the few points off a dominant plane (Chum, Werner & Matas 2005), so it tries *plane and
parallax* (HZ §13.3: ``e₂`` is where the lines ``(H x̃₁) × x̃₂`` of off-plane points meet), and
raises only when that finds no parallax either.

References: HZ §11.1–11.2 (algorithms 11.1, 11.2), §11.6 (RANSAC for F), §11.9 (degeneracies),
§13.3 (plane and parallax); R. Hartley, "In defense of the eight-point algorithm", IEEE TPAMI
19(6), 1997; A. Bartoli and P. Sturm, "Nonlinear estimation of the fundamental matrix with
minimal parameters", IEEE TPAMI 26(3), 2004; O. Chum, T. Werner and J. Matas, "Two-view
geometry estimation unaffected by a dominant plane", CVPR 2005.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.epipolar import _normalised, _signed_sampson, _squared_sampson
from foveal.geometry.homography import find_homography, normalise_points
from foveal.geometry.ransac import ransac, ransac_batched
from foveal.geometry.rotation import exp_so3, hat
from foveal.geometry.validate import points, positive

Method = Literal["ransac", "8point", "7point"]

# A null space is larger than one dimension when the next-smallest eigenvalue of AᵀA is within
# this fraction of the largest: exactly planar points leave round-off (~1e-16) there, 0.01 px of
# noise already ~1e-9, a general scene ~1e-3.
_NULL_RTOL = 1e-12

# Imaginary parts of cubic roots below this (relative) are round-off of a real root.
_REAL_RTOL = 1e-8

# F is not pinned down when a homography explains the inliers (at least 8 of them: any 4 points
# fit one exactly, so only twice that is evidence of a plane) and fewer than 2 of them (plane and
# parallax needs two) or than 5 % are off it: outliers that chance aligns with a plane-induced F
# make up a few per cent of the inliers.
_MIN_ON_PLANE, _MIN_OFF_PLANE, _MIN_OFF_PLANE_FRACTION = 8, 2, 0.05


def _pair(x1: ArrayLike, x2: ArrayLike, op: str, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    x1 = points(x1, 2, op, "x1")
    x2 = points(x2, 2, op, "x2", count=len(x1))
    if len(x1) < minimum:
        raise GeometryError(f"{op}: expected at least {minimum} correspondences, got {len(x1)}")
    return x1, x2


def _design_rows(y1: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """``Aᵀ`` (..., 9, N) for points (..., N, 2): column ``i`` is ``ỹ₂ᵢ ⊗ ỹ₁ᵢ`` (HZ eq. 11.3).

    Built row by row (contiguous) rather than as an (N, 9) array: ~3× faster for large N."""
    u1, v1, u2, v2 = y1[..., 0], y1[..., 1], y2[..., 0], y2[..., 1]
    At = np.empty((*y1.shape[:-2], 9, y1.shape[-2]))
    At[..., 0, :] = u2 * u1
    At[..., 1, :] = u2 * v1
    At[..., 2, :] = u2
    At[..., 3, :] = v2 * u1
    At[..., 4, :] = v2 * v1
    At[..., 5, :] = v2
    At[..., 6, :] = u1
    At[..., 7, :] = v1
    At[..., 8, :] = 1.0
    return At


def _rank_two(F: np.ndarray) -> np.ndarray:
    """The nearest rank-2 matrices (..., 3, 3) in Frobenius norm: zero the smallest singular
    value (HZ §11.1.1)."""
    U, s, Vt = np.linalg.svd(F)
    s[..., 2] = 0.0
    return (U * s[..., None, :]) @ Vt


def _denormalise(F: np.ndarray, T1: np.ndarray, T2: np.ndarray) -> np.ndarray:
    """``T₂ᵀ F̂ T₁``: the constraint ``ŷ₂ᵀ F̂ ŷ₁ = 0`` with ``ŷ = T x̃`` in pixel terms."""
    return _normalised(T2.T @ F @ T1)


def _eight_point_normalised(y1: np.ndarray, y2: np.ndarray, op: str | None = None
                            ) -> np.ndarray:
    """Rank-2 ``F̂`` (..., 3, 3) from Hartley-normalised points (..., N, 2), N ≥ 8.

    With ``op``, raises when ``AᵀA`` has a second (near-)zero eigenvalue: ``F`` not unique."""
    At = _design_rows(y1, y2)
    w, V = np.linalg.eigh(At @ np.swapaxes(At, -1, -2))
    if op is not None and w[..., 1] <= _NULL_RTOL * w[..., 8]:
        raise GeometryError(f"{op}: degenerate correspondences: the 8-point system has a "
                            "null space of dimension ≥ 2 (all points on one plane, or on few "
                            "lines), so F is not unique")
    return _rank_two(V[..., :, 0].reshape(*V.shape[:-2], 3, 3))


def _eight_point(x1: np.ndarray, x2: np.ndarray, op: str | None = None) -> np.ndarray:
    y1, T1 = normalise_points(x1)
    y2, T2 = normalise_points(x2)
    return _denormalise(_eight_point_normalised(y1, y2, op), T1, T2)


def fundamental_8point(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """``F`` (3, 3) from N ≥ 8 correspondences by the normalised 8-point algorithm.

    ``x1``, ``x2`` (N, 2) pixels with ``x̃₂ᵀ F x̃₁ ≈ 0``; least squares in the algebraic error
    for N > 8 (HZ Algorithm 11.1, module docstring). ``F`` has rank 2, ``‖F‖_F = 1`` and a
    canonical sign (largest entry positive). The same estimate as
    ``cv2.findFundamentalMat(x1, x2, cv2.FM_8POINT)`` up to scale.

    Raises :class:`~foveal.errors.GeometryError` for fewer than 8 points, NaN, mismatched
    lengths, or points whose 8-point system has more than a one-dimensional null space (exactly
    planar scenes and other degenerate configurations: ``F`` not unique).
    """
    op = "fundamental_8point"
    x1, x2 = _pair(x1, x2, op, 8)
    return _eight_point(x1, x2, op)


def _seven_point_normalised(y1: np.ndarray, y2: np.ndarray, op: str | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """All real 7-point solutions for B samples (B, 7, 2) of normalised points.

    Returns ``(F̂ (K, 3, 3), owners (K,))``: up to three solutions per sample, ``owners[k]``
    the sample of solution ``k`` (ascending)."""
    At = _design_rows(y1, y2)
    _, s, Vt = np.linalg.svd(np.swapaxes(At, -1, -2), full_matrices=True)
    if op is not None and s[..., 6] <= 1e-7 * s[..., 0]:
        raise GeometryError(f"{op}: degenerate correspondences: the 7 points give fewer than "
                            "7 independent equations (points on one plane or line)")
    F1 = Vt[..., 7, :].reshape(-1, 3, 3)
    F2 = Vt[..., 8, :].reshape(-1, 3, 3)
    D = F1 - F2
    adj_F2 = _adjugate(F2)
    adj_D = _adjugate(D)
    c0 = np.linalg.det(F2)
    c1 = np.einsum("bij,bji->b", adj_F2, D)  # tr(adj(F₂) D)
    c2 = np.einsum("bij,bji->b", F2, adj_D)  # tr(F₂ adj(D))
    c3 = np.linalg.det(D)
    roots = _cubic_roots(c3, c2, c1, c0)  # (B, 3) complex
    real = np.abs(roots.imag) <= _REAL_RTOL * np.maximum(1.0, np.abs(roots.real))
    owners, which = np.nonzero(real)
    alpha = roots.real[owners, which]
    F = F2[owners] + alpha[:, None, None] * D[owners]
    return F, owners


def _adjugate(A: np.ndarray) -> np.ndarray:
    """``adj A`` (B, 3, 3) of 3×3 matrices: rows are cross products of columns (``adj A = A⁻¹
    det A``, defined for singular ``A`` too)."""
    c0, c1, c2 = A[..., :, 0], A[..., :, 1], A[..., :, 2]
    return np.stack([np.cross(c1, c2), np.cross(c2, c0), np.cross(c0, c1)], axis=-2)


def _cubic_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Roots (B, 3) of ``a α³ + b α² + c α + d`` as eigenvalues of the companion matrix.

    A vanishing ``a`` leaves a root at infinity (``F = D``, measure zero): its row gives
    non-finite roots, which the realness test drops."""
    B = len(a)
    C = np.zeros((B, 3, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        C[:, 0, 0], C[:, 0, 1], C[:, 0, 2] = -b / a, -c / a, -d / a
    C[:, 1, 0] = C[:, 2, 1] = 1.0
    ok = np.isfinite(C).all(axis=(1, 2))
    roots = np.full((B, 3), np.nan + 0j)
    if ok.any():
        roots[ok] = np.linalg.eigvals(C[ok])
    return roots


def fundamental_7point(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """All fundamental matrices (k, 3, 3), k ∈ {1, 2, 3}, through exactly 7 correspondences.

    The minimal solver (HZ §11.1.2, module docstring) on Hartley-normalised points: each
    solution is exactly rank 2, ``‖F‖_F = 1`` with a canonical sign. As
    ``cv2.findFundamentalMat(x1, x2, cv2.FM_7POINT)``, which stacks them 3k × 3. Raises
    :class:`~foveal.errors.GeometryError` unless N = 7, or when the 7 equations are dependent.
    """
    op = "fundamental_7point"
    x1, x2 = _pair(x1, x2, op, 7)
    if len(x1) != 7:
        raise GeometryError(f"{op}: expected exactly 7 correspondences, got {len(x1)}")
    y1, T1 = normalise_points(x1)
    y2, T2 = normalise_points(x2)
    F, _ = _seven_point_normalised(y1[None], y2[None], op)
    return _denormalise(F, T1, T2)


def _sampson_jacobian(F: np.ndarray, h1: np.ndarray, h2: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Signed Sampson residuals ``r`` (N,) of homogeneous points (N, 3) and ``∂r/∂F`` (N, 3, 3).

    With ``e = x̃₂ᵀ F x̃₁``, ``a = F x̃₁``, ``b = Fᵀ x̃₂`` and ``g = a₁² + a₂² + b₁² + b₂²``:
    ``r = e / √g`` and ``∂r/∂F = x̃₂ x̃₁ᵀ / √g − e g^(−3/2) (P a x̃₁ᵀ + x̃₂ (P b)ᵀ)`` with
    ``P = diag(1, 1, 0)`` (∂g/∂F = 2 P a x̃₁ᵀ + 2 x̃₂ (P b)ᵀ)."""
    a = h1 @ F.T
    b = h2 @ F
    e = np.einsum("ni,ni->n", h2, a)
    a[:, 2] = 0.0
    b[:, 2] = 0.0
    g = np.einsum("ni,ni->n", a, a) + np.einsum("ni,ni->n", b, b)
    g = np.where(g > 0, g, 1.0)  # a point at an epipole: residual 0, no gradient
    root = np.sqrt(g)
    outer = h2[:, :, None] * h1[:, None, :] / root[:, None, None]
    k = (e / (g * root))[:, None, None]
    grad = outer - k * (a[:, :, None] * h1[:, None, :] + h2[:, :, None] * b[:, None, :])
    return e / root, grad


def _orthonormal_fit(F0: np.ndarray, x1: np.ndarray, x2: np.ndarray, *,
                     left: np.ndarray | None = None, right: np.ndarray | None = None,
                     essential: bool = False, iterations: int = 50) -> np.ndarray:
    """Minimise the Sampson error of ``x1 ↔ x2`` over rank-2 matrices near ``F0`` (3, 3).

    The matrix is ``M = U diag(1, σ, 0) Vᵀ`` with ``U``, ``V`` ∈ SO(3) updated on the manifold,
    ``U ← U exp([δa]×)``, ``V ← V exp([δb]×)``, and ``σ ← σ + δσ`` (fundamental: 7 parameters
    for 7 degrees of freedom) or ``σ = 1`` (essential: 6 parameters for 5 — the redundant one,
    a common rotation about the third axes, is a gauge the damping handles). Pixels see
    ``F = leftᵀ M right`` (``K₂⁻ᵀ E K₁⁻¹`` for an essential matrix, identity otherwise), so the
    Sampson error is in pixels either way. Levenberg–Marquardt on the signed Sampson residuals
    with the analytic Jacobian, at ``δ = 0``:

        ∂M/∂aₖ = U [eₖ]× D Vᵀ,   ∂M/∂bₖ = −U D [eₖ]× Vᵀ,   ∂M/∂σ = U diag(0, 1, 0) Vᵀ.

    Returns ``M``.
    """
    left = np.eye(3) if left is None else left
    right = np.eye(3) if right is None else right
    U, s, Vt = np.linalg.svd(F0)
    U = U * np.sign(np.linalg.det(U))  # U, V in SO(3): the sign goes into M, harmless
    V = Vt.T * np.sign(np.linalg.det(Vt))
    sigma = 1.0 if essential else s[1] / s[0]
    h1 = np.column_stack([x1, np.ones(len(x1))])
    h2 = np.column_stack([x2, np.ones(len(x2))])
    generators = hat(np.eye(3))
    n_params = 6 if essential else 7

    def matrix(U: np.ndarray, V: np.ndarray, sigma: float) -> np.ndarray:
        return (U * [1.0, sigma, 0.0]) @ V.T

    def cost(M: np.ndarray) -> float:
        return float((_signed_sampson(left.T @ M @ right, x1, x2) ** 2).sum())

    M = matrix(U, V, sigma)
    current = cost(M)
    lam = 1e-3
    for _ in range(iterations):
        r, grad = _sampson_jacobian(left.T @ M @ right, h1, h2)
        D = np.diag([1.0, sigma, 0.0])
        dM = [U @ G @ D @ V.T for G in generators] + [-U @ D @ G @ V.T for G in generators]
        if not essential:
            dM.append(U @ np.diag([0.0, 1.0, 0.0]) @ V.T)
        dF = np.stack([left.T @ d @ right for d in dM])
        J = np.einsum("nij,kij->nk", grad, dF)
        H, g = J.T @ J, J.T @ r
        improved = False
        while lam < 1e12:
            step = np.linalg.solve(H + lam * (np.diag(np.diag(H)) + 1e-12 * np.trace(H)
                                              * np.eye(n_params)), -g)
            U_t, V_t = U @ exp_so3(step[:3]), V @ exp_so3(step[3:6])
            sigma_t = sigma if essential else sigma + step[6]
            M_t = matrix(U_t, V_t, sigma_t)
            trial = cost(M_t)
            if trial < current:
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
        done = current - trial <= 1e-12 * current
        U, V, sigma, M, current, lam = U_t, V_t, sigma_t, M_t, trial, max(lam / 10.0, 1e-9)
        if done:
            break
    return M


def _refine_sampson(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``F`` refined to the (locally) minimal Sampson error over rank-2 matrices."""
    return _normalised(_orthonormal_fit(F, x1, x2))


def find_fundamental(x1: ArrayLike, x2: ArrayLike, method: Method = "ransac",
                     threshold: float = 1.0, confidence: float = 0.999, seed: int = 0, *,
                     solver: Literal["7point", "8point"] = "7point",
                     max_iterations: int = 10_000, refine: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``F`` and its inliers from correspondences ``x1 ↔ x2`` (N, 2) pixels.

    Methods:

    - ``"ransac"`` (N ≥ 8): RANSAC over ``solver`` minimal samples (7-point by default: fewer
      points per sample, far fewer samples with outliers) scored by the Sampson distance in
      pixels against ``threshold`` (MSAC cost, adaptive stopping at ``confidence``, LO by
      8-point refits; :func:`foveal.geometry.ransac.ransac_batched`); then the normalised
      8-point fit on all inliers, and with ``refine`` the Sampson error minimised over them
      (orthonormal representation, rank 2 throughout), inliers recomputed after each step.
      If a homography explains nearly all inliers, plane and parallax gets a second try
      (module docstring) and the better ``F`` (MSAC cost) is kept.
    - ``"8point"`` (N ≥ 8): :func:`fundamental_8point` on all points (no robustness; the
      planar test below still applies to the points it explains).
    - ``"7point"`` (N = 7): :func:`fundamental_7point`; ``F`` is then the (k, 3, 3) stack of
      all k ∈ {1, 2, 3} solutions, as OpenCV's ``FM_7POINT``.

    Returns ``(F, inliers)``: ``F`` (3, 3) rank 2, ``‖F‖_F = 1``, canonical sign; ``inliers``
    (N,) bool, Sampson distance < ``threshold`` (all True for ``"7point"``).

    Raises :class:`~foveal.errors.GeometryError` for bad input (too few points, NaN, mismatched
    lengths), when RANSAC finds no model with 8 inliers, and for a **degenerate** scene: when
    a homography (one world plane, or no baseline) explains all the inliers but fewer than
    ``max(2, 5 %)`` of them (at least 8 on the plane), ``F`` is not determined by the data and
    no ``F`` is returned.
    """
    op = "find_fundamental"
    threshold = positive(threshold, op, "threshold")
    if method == "7point":
        x1, x2 = _pair(x1, x2, op, 7)
        return fundamental_7point(x1, x2), np.ones(len(x1), dtype=bool)
    if method not in ("ransac", "8point"):
        raise GeometryError(f"{op}: expected method 'ransac', '8point' or '7point', got "
                            f"{method!r}")
    x1, x2 = _pair(x1, x2, op, 8)
    if method == "8point":
        F = _eight_point(x1, x2, op)
        inliers = np.abs(_signed_sampson(F, x1, x2)) < threshold
        _raise_if_planar(*_off_plane(x1, x2, inliers, threshold), op)
        return F, inliers
    if solver not in ("7point", "8point"):
        raise GeometryError(f"{op}: expected solver '7point' or '8point', got {solver!r}")
    F, inliers = _ransac(x1, x2, threshold, confidence, seed, solver, max_iterations, op)
    if refine:
        F, inliers = _refine_inliers(F, x1, x2, inliers, threshold)
    off, on = _off_plane(x1, x2, inliers, threshold)
    if _planar(off, on):
        # RANSAC's classic failure on a dominant plane (Chum et al. 2005): samples from the
        # plane give an F of the family [e₂]× H that fits it and not the few points off it.
        # Plane and parallax (HZ §13.3) recovers F from H and two off-plane points if they exist.
        rescued = _plane_and_parallax(x1, x2, threshold, confidence, seed)
        if rescued is not None:
            F2, inliers2 = rescued
            if refine:
                F2, inliers2 = _refine_inliers(F2, x1, x2, inliers2, threshold)
            if _msac(F2, x1, x2, threshold) < _msac(F, x1, x2, threshold):
                F, inliers = F2, inliers2
                off, on = _off_plane(x1, x2, inliers, threshold)
    _raise_if_planar(off, on, op)
    return F, inliers


def _msac(F: np.ndarray, x1: np.ndarray, x2: np.ndarray, threshold: float) -> float:
    return float(np.minimum(_signed_sampson(F, x1, x2) ** 2, threshold**2).sum())


def _refine_inliers(F: np.ndarray, x1: np.ndarray, x2: np.ndarray, inliers: np.ndarray,
                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Sampson refinement on the inliers, inliers recomputed (twice at most)."""
    for _ in range(2):
        if inliers.sum() < 8:
            break
        F = _refine_sampson(F, x1[inliers], x2[inliers])
        updated = np.abs(_signed_sampson(F, x1, x2)) < threshold
        if np.array_equal(updated, inliers) or updated.sum() < 8:
            break
        inliers = updated
    return F, inliers


def _planar(off: int, on: int) -> bool:
    """A homography explains at least 8 inliers and all but fewer than max(2, 5 %) of them."""
    return on >= _MIN_ON_PLANE and off < max(_MIN_OFF_PLANE,
                                             _MIN_OFF_PLANE_FRACTION * (on + off))


def _raise_if_planar(off: int, on: int, op: str) -> None:
    if _planar(off, on):
        raise GeometryError(f"{op}: degenerate: a homography explains {on} of the {on + off} "
                            f"inliers (one world plane, or no baseline), leaving {off} off it: "
                            "F is not determined")


def _off_plane(x1: np.ndarray, x2: np.ndarray, inliers: np.ndarray, threshold: float
               ) -> tuple[int, int]:
    """``(off, on)``: how many of the inliers the best homography leaves out and explains.

    The homography's threshold is ``3 t``: its transfer error carries the noise of both images
    (about √2 × that of the Sampson distance), and a tighter test would count the noise tail of
    planar points as parallax."""
    idx = np.flatnonzero(inliers)
    try:
        _, on_plane = find_homography(x1[idx], x2[idx], 3.0 * threshold, refine=False)
    except GeometryError:
        return len(idx), 0  # no homography (too few or collinear points): not this degeneracy
    on = int(on_plane.sum())
    return len(idx) - on, on


def _plane_and_parallax(x1: np.ndarray, x2: np.ndarray, threshold: float, confidence: float,
                        seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``F = [e₂]× H`` from the dominant homography ``H`` and the points off its plane.

    For a point off the plane, ``x̃₂`` and ``H x̃₁`` both lie on the epipolar line through
    ``e₂``, so ``lᵢ = (H x̃₁ᵢ) × x̃₂ᵢ`` passes through the epipole and two of them meet there,
    ``e₂ = lᵢ × lⱼ`` (HZ §13.3): a 2-point RANSAC over the points the
    homography does not explain. The result is refitted by the 8-point algorithm on all its
    inliers."""
    try:
        H, on_plane = find_homography(x1, x2, 3.0 * threshold, refine=False, seed=seed)
    except GeometryError:
        return None
    off = np.flatnonzero(~on_plane)
    if len(off) < 2:
        return None
    h1 = np.column_stack([x1[off], np.ones(len(off))])
    h2 = np.column_stack([x2[off], np.ones(len(off))])
    lines = np.cross(h1 @ H.T, h2)

    def fit(idx: np.ndarray) -> list[np.ndarray]:
        e = np.cross(lines[idx[0]], lines[idx[1]])
        return [] if not np.any(e) else [hat(e) @ H]

    def residuals(F: np.ndarray) -> np.ndarray:
        return np.abs(_signed_sampson(F, x1[off], x2[off]))

    result = ransac(len(off), 2, fit, residuals, threshold, confidence=confidence, seed=seed)
    if result.model is None:
        return None
    F = _normalised(result.model)
    inliers = np.abs(_signed_sampson(F, x1, x2)) < threshold
    if inliers.sum() >= 8:
        F = _eight_point(x1[inliers], x2[inliers])
        inliers = np.abs(_signed_sampson(F, x1, x2)) < threshold
    return F, inliers


def _ransac(x1: np.ndarray, x2: np.ndarray, threshold: float, confidence: float, seed: int,
            solver: str, max_iterations: int, op: str) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC over minimal samples in globally normalised coordinates (one ``T`` per image)."""
    y1, T1 = normalise_points(x1)
    y2, T2 = normalise_points(x2)
    h1 = np.vstack([x1.T, np.ones(len(x1))]).astype(np.float32)  # scoring only
    h2 = np.vstack([x2.T, np.ones(len(x2))]).astype(np.float32)
    size = 7 if solver == "7point" else 8

    def fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if size == 7:
            F, owners = _seven_point_normalised(y1[samples], y2[samples])
        else:
            F, owners = _eight_point_normalised(y1[samples], y2[samples]), np.arange(len(samples))
        return _denormalise(F, T1, T2), owners

    def squared(models: np.ndarray) -> np.ndarray:
        return _squared_sampson(np.asarray(models), h1, h2)

    def refit(idx: np.ndarray) -> np.ndarray | None:
        return _eight_point(x1[idx], x2[idx]) if len(idx) >= 8 else None

    result = ransac_batched(len(x1), size, fit, squared, threshold, refine=refit,
                            confidence=confidence, max_iterations=max_iterations, seed=seed)
    if result.model is None or result.inliers.sum() < 8:
        raise GeometryError(f"{op}: expected a fundamental matrix with at least 8 inliers "
                            f"within {threshold} px, got {int(result.inliers.sum())} after "
                            f"{result.iterations} RANSAC iterations")
    return np.asarray(result.model), result.inliers
