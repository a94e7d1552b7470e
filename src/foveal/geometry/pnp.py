"""Camera pose from 2-D–3-D correspondences (Perspective-n-Point): DLT, EPnP, RANSAC, refinement.

Given world points ``Xᵢ`` (N, 3), their pixels ``xᵢ`` (N, 2) and the intrinsics ``K``, find the
extrinsics ``(R, t)`` with ``xᵢ ≈ π(K (R Xᵢ + t))``, where ``π(u, v, w) = (u / w, v / w)``.
Every solver first maps pixels to normalised image coordinates ``m̂ᵢ = K⁻¹ (xᵢ, 1)ᵀ``, so that
the unknown is the calibrated camera ``[R | t]`` alone.

- :func:`pnp_dlt` — linear, 6+ non-coplanar points: the 12 entries of ``[R | t]`` up to scale
  from ``m̂ᵢ × ([R | t] X̃ᵢ) = 0``, then the nearest rotation (HZ §7.1, §7.2).
- :func:`epnp` — linear-time, 4+ points, planar or not: the camera-frame coordinates of four
  (three if planar) control points from the null space of a ``2N × 12`` matrix (Lepetit,
  Moreno-Noguer, Fua, IJCV 2009).
- :func:`refine_pose` — Levenberg–Marquardt on the reprojection error, optionally Huber-robust.
- :func:`solve_pnp_ransac` — EPnP on blocks of random 5-point samples inside
  :func:`foveal.geometry.ransac.ransac_batched`, then LM on the inliers.

Every function returns ``R`` (3, 3), ``t`` (3,) with ``x_cam = R X + t`` (the package convention)
and raises :class:`~foveal.errors.GeometryError` for bad input: mismatched lengths, NaN, too few
points, or points that are all on one line (the rotation about that line is then unobservable).

References: HZ §7.1–7.2 (DLT for the camera matrix); V. Lepetit, F. Moreno-Noguer, P. Fua,
"EPnP: an accurate O(n) solution to the PnP problem", IJCV 81(2), 2009 (cited as "EPnP");
K. Madsen, H. B. Nielsen, O. Tingleff, *Methods for Non-Linear Least Squares Problems*, 2004,
§3.2 (the Levenberg–Marquardt damping update).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import lapack

from foveal.errors import GeometryError
from foveal.geometry.camera import invert_intrinsics
from foveal.geometry.ransac import ransac_batched
from foveal.geometry.rotation import exp_so3, project_to_so3
from foveal.geometry.validate import calibration_matrix, matrix, points, positive, rotations

Loss = Literal["linear", "huber"]

# Point sets whose second (third) principal spread is below this fraction of the first are
# collinear (coplanar) to double precision: a rotation of any rigid scene leaves ~1e-16 there.
_FLAT_RTOL = 1e-8

# Point sets whose third principal spread is below this fraction of the first are treated as
# planar by EPnP (three control points); a checkerboard with Z = 0 has exactly 0 there.
_PLANAR_RTOL = 1e-6

# Gauss–Newton steps on the EPnP betas (EPnP §3.4). From the linearised starts a few suffice;
# the public epnp takes up to ten (stopping early once converged), RANSAC hypotheses three, as
# they are only scored: on all-inlier 5-point samples the third step leaves the pose within
# ~1e-5° of the fifth's (median), and the five steps were about a third of the cost of a sample.
_BETA_ITERATIONS, _BETA_ITERATIONS_RANSAC = 10, 3

# Samples in RANSAC's first block. A block of batched EPnP has a fixed cost of ~15 samples, so the
# first one covers the ~38 that p = 0.999 asks for at 30% outliers (5-point samples).
_FIRST_BLOCK = 40

# Index tables of EPnP: control-point pairs (a < b), and the six products βₖβₗ (k ≤ l) as the
# columns of L, off-diagonal ones counted twice in ‖Σ βₖ dvₖ‖²; the N = 2 products are columns
# (β₁β₁, β₁β₂, β₂β₂).
_PAIRS = {m: np.triu_indices(m, 1) for m in (3, 4)}
_PRODUCT_I, _PRODUCT_J = np.triu_indices(3)
_PRODUCT_WEIGHT = np.where(_PRODUCT_I == _PRODUCT_J, 1.0, 2.0)
_N2 = np.array([0, 1, 3])
_SYMMETRIC = np.array([[0, 1, 2], [1, 3, 4], [2, 4, 5]])  # the six products as a 3 × 3 matrix


# --------------------------------------------------------------------------------------------
# Inputs, projection and its Jacobian (shared with bundle_adjustment)
# --------------------------------------------------------------------------------------------

def _inputs(X: ArrayLike, x: ArrayLike, K: ArrayLike, op: str, minimum: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``X`` (N, 3), ``x`` (N, 2), ``K`` (3, 3) and normalised ``m̂ = K⁻¹ x̃`` (N, 2)."""
    X = points(X, 3, op, "X")
    x = points(x, 2, op, "x", count=len(X))
    if len(X) < minimum:
        raise GeometryError(f"{op}: expected at least {minimum} correspondences, got {len(X)}")
    K = calibration_matrix(K, op)
    _check_spread(X, op)
    K_inv = invert_intrinsics(K)
    return X, x, K, x @ K_inv[:2, :2].T + K_inv[:2, 2]


def _spread(X: np.ndarray) -> np.ndarray:
    """Singular values (3,) of the centred points, largest first: their principal spreads."""
    return np.linalg.svd(X - X.mean(0), compute_uv=False)


def _check_spread(X: np.ndarray, op: str) -> np.ndarray:
    s = _spread(X)
    if s[0] == 0 or s[1] <= _FLAT_RTOL * s[0]:
        raise GeometryError(f"{op}: expected world points not all on one line, got "
                            f"principal spreads {np.array2string(s, precision=3)}")
    return s


def _project(p_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (..., 2) of camera-frame points (..., 3): ``K[:2] (x/z, y/z, 1)ᵀ``."""
    return p_cam[..., :2] / p_cam[..., 2:3] @ K[:2, :2].T + K[:2, 2]


def _projection_jacobian(p_cam: np.ndarray, fx: ArrayLike, skew: ArrayLike,
                         fy: ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
    """``∂ pixel / ∂ x_cam`` (M, 2, 3) at camera-frame points ``(x, y, z)`` (M, 3).

        ∂(x/z, y/z)/∂(x, y, z) = [[1/z, 0, −x/z²], [0, 1/z, −y/z²]],   then left-multiplied by
        K₂ = [[f_x, s], [0, f_y]];

    ``fx``, ``skew``, ``fy`` are scalars or (M,) (one K per observation). Written into ``out``
    (M, 2, 3) if given, e.g. a slice of a larger Jacobian.
    """
    iz = 1.0 / p_cam[:, 2]
    a, b = p_cam[:, 0] * iz, p_cam[:, 1] * iz
    J = np.empty((len(p_cam), 2, 3)) if out is None else out
    J[:, 0, 0] = fx * iz
    J[:, 0, 1] = skew * iz
    J[:, 0, 2] = -(fx * a + skew * b) * iz
    J[:, 1, 0] = 0.0
    J[:, 1, 1] = fy * iz
    J[:, 1, 2] = -fy * b * iz
    return J


def _rotation_jacobian(J_proj: np.ndarray, q: np.ndarray,
                       out: np.ndarray | None = None) -> np.ndarray:
    """``J_proj · (−[q]×)`` (M, 2, 3): the derivative through ``R ← exp([δ]×) R`` at ``q = R X``.

    ``exp([δ]×) q ≈ q + δ × q = q − [q]× δ``, and a row ``a`` times ``−[q]×`` is ``(q × a)ᵀ``,
    written out component by component (``np.cross`` costs more in axis shuffling than in
    arithmetic at these sizes). Written into ``out`` (M, 2, 3) if given.
    """
    q0, q1, q2 = q[:, 0, None], q[:, 1, None], q[:, 2, None]  # (M, 1): broadcast over both rows
    a0, a1, a2 = J_proj[..., 0], J_proj[..., 1], J_proj[..., 2]
    out = np.empty_like(J_proj) if out is None else out
    out[..., 0] = q1 * a2 - q2 * a1
    out[..., 1] = q2 * a0 - q0 * a2
    out[..., 2] = q0 * a1 - q1 * a0
    return out


def _robust_cost(s: np.ndarray, loss: str, delta: float) -> np.ndarray:
    """``ρ(s)`` of squared residual norms ``s``: linear ``ρ = s``, or Huber

        ρ(s) = s                (s ≤ δ²)
             = 2 δ √s − δ²      (s > δ²)

    (scipy's ``loss="huber"`` with ``f_scale = δ``, applied to a whole 2-D residual).
    """
    if loss == "linear":
        return s
    root = np.sqrt(s)
    return np.where(root > delta, 2.0 * delta * root - delta * delta, s)


def _robust_model(r: np.ndarray, loss: str, delta: float
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The robust Gauss–Newton model of ``½ ρ(‖r‖²)`` for residuals ``r`` (M, 2).

    Its gradient is ``ρ' Jᵀ r`` and its Hessian ``Jᵀ (ρ' I + 2ρ'' r rᵀ) J`` (Triggs et al.
    2000, §4.3). Returns ``ρ'`` (M,) and the 2 × 2 weights ``ρ' I + 2ρ'' r rᵀ`` (M, 2, 2); both
    ``None`` for least squares (``ρ' = 1``, ``I``). For Huber beyond δ, ``ρ' = δ/‖r‖`` and
    ``2ρ'' ‖r‖² = −ρ'``, so the weight is ``ρ' (I − r̂ r̂ᵀ)``: no curvature along the residual,
    where the loss is linear. Plain reweighting (``ρ' I``) keeps that curvature, takes steps
    too short along it and needs hundreds of iterations where this needs tens.
    """
    if loss == "linear":
        return None, None
    norm = np.sqrt((r * r).sum(1))
    outer = norm > delta
    safe = np.where(outer, norm, 1.0)
    w = np.where(outer, delta / safe, 1.0)
    u = r / safe[:, None]
    W = w[:, None, None] * (np.eye(2) - outer[:, None, None] * (u[:, :, None] * u[:, None, :]))
    return w, W


def _check_loss(loss: str, delta: float, op: str) -> float:
    if loss not in ("linear", "huber"):
        raise GeometryError(f"{op}: expected loss 'linear' or 'huber', got {loss!r}")
    return positive(delta, op, "huber_delta")


# --------------------------------------------------------------------------------------------
# DLT
# --------------------------------------------------------------------------------------------

def _similarity_normaliser(p: np.ndarray) -> np.ndarray:
    """``T`` (d+1, d+1) moving the centroid to 0 and the mean distance to √d (HZ §4.4.4)."""
    d = p.shape[1]
    c = p.mean(0)
    scale = np.sqrt(d) / max(np.linalg.norm(p - c, axis=1).mean(), 1e-300)
    T = np.eye(d + 1) * scale
    T[:d, d] = -scale * c
    T[d, d] = 1.0
    return T


def pnp_dlt(X: ArrayLike, x: ArrayLike, K: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pose ``(R, t)`` from 6+ non-coplanar correspondences by the direct linear transform.

    With normalised image points ``m̂ᵢ = (uᵢ, vᵢ, 1) ~ [R | t] X̃ᵢ``, each point gives two rows
    of ``A p = 0`` for the 12 entries ``p`` of ``P̂ = λ [R | t]`` (HZ eq. 7.2):

        [ X̃ᵢᵀ   0ᵀ   −uᵢ X̃ᵢᵀ ]
        [ 0ᵀ    X̃ᵢᵀ  −vᵢ X̃ᵢᵀ ]  p = 0,

    solved by the last right singular vector after Hartley normalisation of both point sets
    (HZ §7.1 and §4.4.4: the algebraic error, hence the answer, then no longer depends on the
    world frame's origin and units). Then

    - sign: ``det(λ R) = λ³``, so multiplying ``P̂`` by ``sign(det P̂₃ₓ₃)`` makes ``λ > 0``
      (and the points' depths positive);
    - rotation: ``R`` is the nearest rotation to ``P̂₃ₓ₃`` (SVD, ``U Vᵀ``);
    - scale: ``λ`` is the mean singular value of ``P̂₃ₓ₃``, and ``t = p̂₄ / λ``.

    Coplanar points make ``A`` rank-deficient (a plane ``nᵀX = d`` lets any multiple of
    ``(n, −d)`` be added to each row of ``P̂``; HZ §7.1): use :func:`epnp` for them. The DLT
    minimises an algebraic error; follow it with :func:`refine_pose` for the maximum-likelihood
    (reprojection-error) pose.
    """
    op = "pnp_dlt"
    X, _, _, m = _inputs(X, x, K, op, 6)
    s = _spread(X)
    if s[2] <= _PLANAR_RTOL * s[0]:
        raise GeometryError(f"{op}: expected world points not all on one plane (the DLT is "
                            f"degenerate for a plane; use epnp), got principal spreads "
                            f"{np.array2string(s, precision=3)}")
    T3, T2 = _similarity_normaliser(X), _similarity_normaliser(m)
    Xn = X @ T3[:3, :3].T + T3[:3, 3]
    mn = m @ T2[:2, :2].T + T2[:2, 2]
    Xh = np.column_stack([Xn, np.ones(len(X))])
    A = np.zeros((2 * len(X), 12))
    A[0::2, 0:4] = Xh
    A[0::2, 8:12] = -mn[:, :1] * Xh
    A[1::2, 4:8] = Xh
    A[1::2, 8:12] = -mn[:, 1:] * Xh
    P = np.linalg.inv(T2) @ np.linalg.svd(A)[2][-1].reshape(3, 4) @ T3
    P *= np.sign(np.linalg.det(P[:, :3])) or 1.0
    R = project_to_so3(P[:, :3])
    lam = np.linalg.svd(P[:, :3], compute_uv=False).mean()
    return R, P[:, 3] / lam


# --------------------------------------------------------------------------------------------
# EPnP
# --------------------------------------------------------------------------------------------

def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched ``A x = b`` for (..., k, k) and (..., k); least squares if one ``A`` is singular."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(A) @ b[..., None])[..., 0]


def _epnp_candidates(X: np.ndarray, m: np.ndarray, A: np.ndarray, c0: np.ndarray,
                     s: np.ndarray, Vt: np.ndarray, planar: bool, iterations: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """EPnP for a batch of ``B`` point sets, all planar or all not.

    ``X`` (B, n, 3) world points, ``m`` (B, n, 2) normalised image points, ``A = X − c0``
    centred, ``s``/``Vt`` their principal spreads and axes (the SVD of ``A``). Returns the
    candidate poses ``R`` (B, c, 3, 3), ``t`` (B, c, 3), one per initialisation ``N``.
    Batched over sets and candidates, so a block of RANSAC samples costs one pass of NumPy calls.
    """
    B, n, _ = X.shape
    k = 3 if planar else 4  # control points, and null-space vectors kept
    # EPnP §3.1: control points at the centroid and one standard deviation along the principal
    # axes. A plane has no third spread, and a control point off it would make the barycentric
    # coordinates blow up: use three in the plane (EPnP §3.5).
    sigma = s[:, : k - 1] / np.sqrt(n)  # (B, k−1)
    axes = Vt[:, : k - 1]  # (B, k−1, 3)
    Cw = np.concatenate([c0[:, None], c0[:, None] + sigma[..., None] * axes], 1)  # (B, k, 3)
    # Barycentric coordinates, Xᵢ = Σⱼ αᵢⱼ Cⱼ with Σⱼ αᵢⱼ = 1: the axes are orthonormal, so
    # the coordinates along them are projections divided by the standard deviations.
    coords = (A @ np.swapaxes(axes, 1, 2)) / sigma[:, None, :]
    alphas = np.concatenate([1.0 - coords.sum(2, keepdims=True), coords], 2)  # (B, n, k)

    # EPnP eq. 7 with f = 1 (normalised camera): per point and control point j, the two rows
    # hold αᵢⱼ [1, 0, −uᵢ] and αᵢⱼ [0, 1, −vᵢ] against Cⱼᶜ = (xⱼ, yⱼ, zⱼ).
    M = np.zeros((B, n, 2, k, 3))  # point, row, control point, coordinate
    M[:, :, 0, :, 0] = alphas
    M[:, :, 1, :, 1] = alphas
    M[..., 2] = -m[..., None] * alphas[:, :, None, :]
    M = M.reshape(B, 2 * n, 3 * k)
    MtM = np.swapaxes(M, 1, 2) @ M
    # x = Σ βₗ vₗ over the right singular vectors of M with the smallest singular values: the
    # eigenvectors of MᵀM with the smallest eigenvalues (EPnP eq. 8).
    V = np.swapaxes(np.linalg.eigh(MtM)[1][:, :, :k], 1, 2)  # (B, kernel l, 3k)

    # Distances between control points are rigid: ‖Cₐᶜ − C_bᶜ‖² = ‖Cₐʷ − C_bʷ‖² (EPnP eq. 10).
    ia, ib = _PAIRS[k]
    rho = ((Cw[:, ia] - Cw[:, ib]) ** 2).sum(2)  # (B, P)
    Vc = V.reshape(B, k, k, 3)
    dv = np.swapaxes(Vc[:, :, ia] - Vc[:, :, ib], 1, 2)  # (B, P, l, 3)
    dots = dv @ np.swapaxes(dv, 2, 3)  # (B, P, l, l): D_p[l, l'] = dvₗ · dvₗ'

    # Linearisation (EPnP §3.3): with x = Σ_{l<N} βₗ vₗ the constraints ‖Σ βₗ dvₗ‖² = ρ are
    # linear in the products βₗβₗ': columns (β₁β₁, β₁β₂, β₁β₃, β₂β₂, β₂β₃, β₃β₃) of L.
    L = dots[:, :, _PRODUCT_I, _PRODUCT_J] * _PRODUCT_WEIGHT  # (B, P, 6)
    n_init = 3 if rho.shape[1] == 6 else 2  # a plane's 3 constraints cannot fix N = 3's six
    # With n < 6 points M (2n × 3k) has a null space of dimension ≥ 3k − 2n, which no smaller N
    # spans even on exact data: five points skip N = 1 (a third fewer candidates in RANSAC, same
    # accuracy). Four points need N = 4, which no start spans: there every start helps GN.
    first = 3 * k - 2 * n if 1 < 3 * k - 2 * n <= n_init else 1
    # β from the best rank-1 fit of the solved products Bm ≈ ββᵀ (N × N): its top eigenpair,
    # β = √λ u. On exact data the same as the paper's square roots and signs of single entries,
    # and it uses every entry of Bm. The sign of u is free: x and −x are both tried below.
    beta = np.zeros((B, n_init - first + 1, k))  # one start per N = first, ..., n_init
    if first == 1:
        b11 = (L[..., 0] * rho).sum(1) / np.maximum((L[..., 0] ** 2).sum(1), 1e-300)
        beta[:, 0, 0] = np.sqrt(np.maximum(b11, 0.0))
    L2 = L[..., _N2]
    L2t = np.swapaxes(L2, 1, 2)
    a, b, c = _solve(L2t @ L2, (L2t @ rho[..., None])[..., 0]).T  # β₁β₁, β₁β₂, β₂β₂
    # N = 2 in closed form: λ = (a + c)/2 + √(((a − c)/2)² + b²), u ∥ (λ − c, b) ∥ (b, λ − a);
    # of the two, the one without cancellation (a ≥ c: λ − c ≥ 0 is a sum of non-negatives).
    half = 0.5 * (a - c)
    root = np.hypot(half, b)
    lam = 0.5 * (a + c) + root
    u1 = np.where(half >= 0, half + root, b)
    u2 = np.where(half >= 0, b, root - half)
    norm = np.hypot(u1, u2)
    scale = np.sqrt(np.maximum(lam, 0.0)) / np.where(norm > 0, norm, 1.0)
    beta[:, 2 - first, 0] = np.where(norm > 0, scale * u1, np.sqrt(np.maximum(lam, 0.0)))
    beta[:, 2 - first, 1] = scale * u2
    if n_init == 3:
        Bm = _solve(L, rho)[:, _SYMMETRIC]  # (B, 3, 3)
        w, U = np.linalg.eigh(Bm)
        beta[:, 3 - first, :3] = np.sqrt(np.maximum(w[:, -1], 0.0))[:, None] * U[:, :, -1]
    n_init -= first - 1

    # Gauss–Newton on all k betas (EPnP §3.4): rₚ(β) = βᵀ D_p β − ρₚ, ∂rₚ/∂β = 2 D_p β.
    # Small batched matmuls: the arrays are tiny (B × c × 6 × 4), so the number of NumPy calls
    # and their per-matrix overhead, not the arithmetic, set the cost.
    D = dots.reshape(B, -1, k)  # (B, P·l, l)
    for it in range(iterations):
        Db = np.swapaxes(D @ np.swapaxes(beta, 1, 2), 1, 2).reshape(B, n_init, -1, k)  # D_p β
        r = (Db * beta[:, :, None, :]).sum(3) - rho[:, None]  # (B, c, P)
        DbT = np.swapaxes(Db, 2, 3)
        step = _solve(DbT @ Db, 0.5 * (DbT @ r[..., None])[..., 0])  # (JᵀJ)⁻¹Jᵀr, J = 2 D_p β
        beta = beta - step
        if it + 1 < iterations and np.abs(step).max() <= 1e-9 * np.abs(beta).max():
            break

    Cc = (beta @ V).reshape(B, n_init, k, 3)  # control points, camera frame
    # Absolute orientation (Horn; Umeyama without scale) of the camera-frame points
    # Pᵢ = Σⱼ αᵢⱼ Cⱼᶜ onto Aᵢ = Xᵢ − X̄: R from H = Σᵢ (Pᵢ − P̄) Aᵢᵀ, t = P̄ − R X̄. Both are
    # linear in the points' barycentric coordinates, so they come from the control points:
    # P̄ = ᾱ Cᶜ, and H = Cᶜᵀ αᵀ A (Σᵢ Aᵢ = 0), without forming the points.
    mu = (alphas.mean(1)[:, None, None] @ Cc)[:, :, 0]  # (B, c, 3)
    # x and −x satisfy the same constraints: keep the one with the points in front.
    front = np.where(mu[..., 2] < 0, -1.0, 1.0)
    mu *= front[..., None]
    H = (front[..., None, None] * np.swapaxes(Cc, 2, 3)) @ (np.swapaxes(alphas, 1, 2) @ A)[:, None]
    U, _, Wt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(U @ Wt))
    U[..., :, 2] *= np.where(d == 0, 1.0, d)[..., None]
    R = U @ Wt
    return R, mu - (R @ c0[:, None, :, None])[..., 0]


def _epnp_batch(X: np.ndarray, m: np.ndarray, x: np.ndarray, K: np.ndarray,
                iterations: int = _BETA_ITERATIONS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EPnP on ``B`` point sets (B, n, ·): poses ``R`` (B, 3, 3), ``t`` (B, 3) with the lowest
    reprojection error among the candidates (EPnP §3.4), and ``valid`` (B,), False for a
    collinear set (its pose is NaN)."""
    c0 = X.mean(1)
    A = X - c0[:, None]
    _, s, Vt = np.linalg.svd(A, full_matrices=False)
    valid = s[:, 1] > _FLAT_RTOL * s[:, 0]
    planar = s[:, 2] <= _PLANAR_RTOL * s[:, 0]
    R = np.full((len(X), 3, 3), np.nan)
    t = np.full((len(X), 3), np.nan)
    for flag in (False, True):
        sel = valid & (planar == flag)
        if not sel.any():
            continue
        if sel.all():  # the usual case: no copies
            sel = slice(None)
        Xs = X[sel]
        Rc, tc = _epnp_candidates(Xs, m[sel], A[sel], c0[sel], s[sel], Vt[sel], flag,
                                  iterations)
        pix = _project(Xs[:, None] @ np.swapaxes(Rc, 2, 3) + tc[:, :, None], K)
        err = ((pix - x[sel][:, None]) ** 2).sum(3).mean(2)
        best = np.argmin(np.where(np.isfinite(err), err, np.inf), axis=1)
        pick = np.arange(len(best))
        R[sel], t[sel] = Rc[pick, best], tc[pick, best]
    return R, t, valid


def epnp(X: ArrayLike, x: ArrayLike, K: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pose ``(R, t)`` from 4+ correspondences, planar or not, by EPnP in O(N).

    Every world point is a barycentric combination of four control points,
    ``Xᵢ = Σⱼ αᵢⱼ Cⱼʷ`` with ``Σⱼ αᵢⱼ = 1`` (the centroid and one standard deviation along each
    principal axis), and the same ``αᵢⱼ`` hold in the camera frame, ``Xᵢᶜ = Σⱼ αᵢⱼ Cⱼᶜ``.
    Projection then gives, per point, two equations linear in the 12 unknown camera-frame
    control-point coordinates ``x`` (EPnP eq. 7),

        Σⱼ αᵢⱼ xⱼ − αᵢⱼ uᵢ zⱼ = 0,    Σⱼ αᵢⱼ yⱼ − αᵢⱼ vᵢ zⱼ = 0,    i.e.  M x = 0  (2N × 12),

    so ``x = Σₗ βₗ vₗ`` over the right singular vectors ``vₗ`` of ``M`` with the smallest
    singular values. The ``βₗ`` come from the rigidity of the control-point distances,
    ``‖Cₐᶜ − C_bᶜ‖² = ‖Cₐʷ − C_bʷ‖²``: linearised in the products ``βₗβₗ'`` for
    ``N = 1, 2, 3`` (six constraints), each solution then refined by Gauss–Newton over all four
    ``β`` (EPnP §3.3–3.4). Each candidate gives camera-frame points; the pose is the rigid
    alignment of the world points onto them (Horn/Umeyama), and the candidate with the lowest
    reprojection error wins.

    Planar points use three control points in the plane (EPnP §3.5): ``M`` is then ``2N × 9``
    with three distance constraints, and ``N ≤ 2``. EPnP minimises an algebraic error; follow it
    with :func:`refine_pose` for the reprojection-error optimum. With exactly four non-coplanar
    points the null space is 4-D and Gauss–Newton from the ``N ≤ 3`` starts can stop in a local
    minimum of the distance constraints (about one case in five on exact data, as with
    ``cv2.SOLVEPNP_EPNP``): use five or more points where you can.
    """
    X, x, K, m = _inputs(X, x, K, "epnp", 4)
    R, t, _ = _epnp_batch(X[None], m[None], x[None], K)
    return R[0], t[0]


# --------------------------------------------------------------------------------------------
# Levenberg–Marquardt refinement
# --------------------------------------------------------------------------------------------

def _refine(R: np.ndarray, t: np.ndarray, X: np.ndarray, x: np.ndarray, K: np.ndarray,
            loss: str, delta: float, max_iterations: int,
            tolerance: float) -> tuple[np.ndarray, np.ndarray, float]:
    """LM on validated input; returns ``R``, ``t`` and the final cost ``½ Σ ρ(‖rᵢ‖²)``.

    The steps are taken about the points' centroid ``X̄``: with ``X' = X − X̄`` and
    ``t' = t + R X̄`` (the same projections), ``R ← exp([δω]×) R`` turns the points about their
    centroid rather than about the world origin. About the origin, a world far from it makes
    δω and δt nearly interchangeable (``[R X]× δω ≈ −δt``) and LM stalls short of the optimum.
    """
    fx, skew, fy = K[0, 0], K[0, 1], K[1, 1]
    centre = X.mean(0)
    X = X - centre
    t = t + R @ centre

    def evaluate(R: np.ndarray, t: np.ndarray
                 ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """The cost at ``(R, t)`` and what the next step's Jacobian needs: ``q = R X``,
        ``p = q + t`` and the residuals ``r`` (an accepted trial pose is not projected twice)."""
        q = X @ R.T
        p = q + t
        r = _project(p, K) - x
        return 0.5 * float(_robust_cost((r * r).sum(1), loss, delta).sum()), q, p, r

    lam, nu = 1e-3, 2.0
    cost, q, p, r = evaluate(R, t)
    for _ in range(max_iterations):
        w, W = _robust_model(r, loss, delta)
        J = np.empty((len(X), 2, 6))  # δω, δt: filled in place (no concatenation)
        _rotation_jacobian(_projection_jacobian(p, fx, skew, fy, out=J[..., 3:]), q,
                           out=J[..., :3])
        J2 = J.reshape(-1, 6)  # rows: the u and v residuals of each point
        JW = J2 if W is None else (W @ J).reshape(-1, 6)
        H = JW.T @ J2
        g = J2.T @ (r if w is None else w[:, None] * r).ravel()
        if np.abs(g).max() <= tolerance * max(cost, 1e-300):
            break
        D = np.diag(H)
        D = np.maximum(D, 1e-12 * max(D.max(), 1e-300))
        improved = False
        while lam < 1e16:
            # LAPACK's dgesv (np.linalg.solve's routine) without the wrapper, which costs more
            # than a 6 × 6 solve
            _, _, step, singular = lapack.dgesv(H + lam * np.diag(D), -g)
            if singular:
                lam, nu = lam * nu, nu * 2
                continue
            if np.abs(step).max() <= tolerance:
                # A negligible step ends the search before it is tried (as in Madsen et al.'s
                # LM algorithm): at the optimum rounding makes such steps fail, and raising λ
                # until one passes by chance costs a dozen evaluations for nothing.
                break
            R_new, t_new = exp_so3(step[:3]) @ R, t + step[3:]
            cost_new, *at_new = evaluate(R_new, t_new)
            predicted = 0.5 * step @ (lam * D * step - g)
            gain = (cost - cost_new) / predicted if predicted > 0 else -1.0
            if gain > 0:
                # Nielsen's update (Madsen et al. eq. 3.16): shrink λ smoothly on good steps.
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3)
                nu = 2.0
                improved = cost - cost_new > tolerance * cost
                R, t, cost = R_new, t_new, cost_new
                q, p, r = at_new
                break
            lam, nu = lam * nu, nu * 2
        if not improved or np.abs(step).max() <= tolerance:
            break
    R = project_to_so3(R)
    return R, t - R @ centre, cost


def refine_pose(R: ArrayLike, t: ArrayLike, X: ArrayLike, x: ArrayLike, K: ArrayLike, *,
                loss: Loss = "linear", huber_delta: float = 2.0, max_iterations: int = 50,
                tolerance: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Refine ``(R, t)`` by Levenberg–Marquardt on the reprojection error (motion-only BA).

    Minimises ``½ Σᵢ ρ(‖π(K (R Xᵢ + t)) − xᵢ‖²)`` with ``ρ`` linear or Huber (threshold
    ``huber_delta`` pixels, see :func:`foveal.geometry.bundle_adjustment.bundle_adjust`). The
    rotation is updated on the manifold, ``R ← exp([δω]×) R``, ``t ← t + δt``, so the 6-vector
    ``(δω, δt)`` is an axis-angle increment with the analytic Jacobian

        ∂rᵢ/∂δω = −J_π(pᵢ) [R Xᵢ]×,   ∂rᵢ/∂δt = J_π(pᵢ),   pᵢ = R Xᵢ + t,

    and each step solves ``(H + λ diag H) δ = −g`` (Marquardt scaling) with ``g = Σ ρ' Jᵢᵀ rᵢ``
    and ``H = Σ Jᵢᵀ (ρ' I + 2ρ'' rᵢ rᵢᵀ) Jᵢ``, the Gauss–Newton model of the robust cost (for
    least squares ``H = JᵀJ``; for Huber see ``_robust_model``). λ follows Nielsen's gain-ratio
    rule (Madsen, Nielsen, Tingleff 2004, §3.2). Stops when the
    cost, the gradient or the step stops changing at ``tolerance`` (relative), or after
    ``max_iterations``. The initial pose must put most points in front of the camera.
    """
    op = "refine_pose"
    X, x, K, _ = _inputs(X, x, K, op, 3)
    R = rotations(matrix(R, (3, 3), op, "R"), op)
    t = matrix(t, (3,), op, "t")
    delta = _check_loss(loss, huber_delta, op)
    front = int(np.count_nonzero((X @ R[2] + t[2]) > 0))
    if 2 * front < len(X):  # LM would fit the mirror image through the camera centre
        raise GeometryError(f"{op}: expected most points in front of the camera at the initial "
                            f"pose, got {front} of {len(X)} with positive depth")
    R, t, _ = _refine(R, t, X, x, K, loss, delta, int(max_iterations), float(tolerance))
    return R, t


# --------------------------------------------------------------------------------------------
# RANSAC
# --------------------------------------------------------------------------------------------

def solve_pnp_ransac(X: ArrayLike, x: ArrayLike, K: ArrayLike, threshold: float = 2.0,
                     confidence: float = 0.999, seed: int = 0, *, sample_size: int = 5,
                     max_iterations: int = 10_000, refine: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust pose ``(R, t, inliers)`` from correspondences with outliers.

    Hypotheses are EPnP poses of random ``sample_size``-point samples (4 is EPnP's minimum; 5,
    the default, is better conditioned for a few more samples), scored by MSAC on the
    reprojection error in pixels against ``threshold``, with adaptive stopping at
    ``confidence`` (:func:`foveal.geometry.ransac.ransac_batched`: EPnP runs on a whole block
    of samples at once, with three Gauss–Newton steps on the betas). A point behind the camera
    is never an inlier. The loop scores in float32, on world points centred first so that large
    coordinates do not cancel. The best hypothesis is then refined on its inliers by
    Levenberg–Marquardt (:func:`refine_pose`), the inliers are recomputed (in float64) with the
    refined pose, and it is refined once more on them if they changed: the inliers returned are
    those the pose was fitted to.
    ``refine=False`` replaces LM by EPnP on the inliers.

    No local optimisation runs inside the loop: LM on the final inliers reaches the same pose,
    and re-running EPnP on hundreds of inliers at every new best cost more than the samples it
    saved (measured in ``bench/geometry_pnp.py``).

    Returns ``R`` (3, 3), ``t`` (3,) and ``inliers`` (N,) bool. Raises
    :class:`~foveal.errors.GeometryError` when no sample gives a pose with at least
    ``sample_size`` inliers.
    """
    op = "solve_pnp_ransac"
    X, x, K, m = _inputs(X, x, K, op, 4)
    threshold = positive(threshold, op, "threshold")
    sample_size = int(sample_size)
    if sample_size < 4 or sample_size > len(X):
        raise GeometryError(f"{op}: expected 4 ≤ sample_size ≤ N = {len(X)}, got {sample_size}")

    # A model is the 3 × 4 matrix [R | t].
    def fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        R, t, valid = _epnp_batch(X[samples], m[samples], x[samples], K,
                                  _BETA_ITERATIONS_RANSAC)
        owners = np.flatnonzero(valid)
        return np.concatenate([R, t[..., None]], 2)[owners], owners

    # Scoring in float32 halves the memory traffic of a block's (k, 3, N) products. The world
    # points are centred first (and t moved with them) so that large world coordinates do not
    # cancel in single precision: the pixel error is then ~1e-7 (‖X − X̄‖ + ‖t'‖) f / z, far
    # below any useful threshold. The inliers returned are decided in float64.
    centre = X.mean(0)
    Xh = np.vstack([(X - centre).T, np.ones(len(X))])  # (4, N): points as columns
    Xh32 = Xh.astype(np.float32)
    px, py = x[:, 0].copy(), x[:, 1].copy()
    px32, py32 = px.astype(np.float32), py.astype(np.float32)

    def squared_residuals(models: np.ndarray, single: bool = True) -> np.ndarray:
        """Squared reprojection errors in pixels² (k, N), as ransac_batched expects:
        ``‖(u/z, v/z) − xᵢ‖²`` with ``(u, v) = K₂ [R | t] X̃ᵢ`` (the first two rows of ``K``),
        ``z`` the depth, ``inf`` behind the camera. In float32 unless ``single`` is False."""
        P = np.empty_like(models)
        P[:, :2] = K[:2] @ models
        P[:, 2] = models[:, 2]
        P[:, :, 3] += P[:, :, :3] @ centre  # [R | t] X̃ = [R | t + R X̄] (X − X̄, 1)
        p = P.astype(np.float32) @ Xh32 if single else P @ Xh  # (k, 3, N)
        # In place on p's rows: a block's (k, N) temporaries would cost more in fresh pages
        # than in arithmetic.
        u, v, z = p[:, 0], p[:, 1], p[:, 2]
        behind = ~(z > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.reciprocal(z, out=z)
            u *= z
            u -= px32 if single else px
            v *= z
            v -= py32 if single else py
            u *= u
            v *= v
            u += v
        u[behind] = np.inf
        return u

    result = ransac_batched(len(X), sample_size, fit, squared_residuals, threshold,
                            confidence=confidence, max_iterations=max_iterations, seed=seed,
                            first_block=_FIRST_BLOCK)
    inliers = result.inliers
    if result.model is None or inliers.sum() < sample_size:
        raise GeometryError(f"{op}: expected a pose with at least {sample_size} inliers within "
                            f"{threshold} px, got {int(inliers.sum())} after "
                            f"{result.iterations} samples")

    def polish(R: np.ndarray, t: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if refine:
            # Tolerance 1e-8 (scipy's default ftol, as in homography's LM): near the optimum
            # the steps are Gauss–Newton's, and a tighter one only adds an LM step that moves
            # the pose by less than 1e-6° (measured on bench/geometry_pnp.py's scenes).
            return _refine(R, t, X[keep], x[keep], K, "linear", 1.0, 20, 1e-8)[:2]
        Rb, tb, _ = _epnp_batch(X[keep][None], m[keep][None], x[keep][None], K)
        return Rb[0], tb[0]

    R, t = polish(result.model[:, :3], result.model[:, 3], inliers)
    updated = squared_residuals(np.column_stack([R, t])[None], False)[0] < threshold**2
    if not np.array_equal(updated, inliers) and updated.sum() >= sample_size:
        # once more on the inliers of the polished pose, which are then the ones returned
        inliers = updated
        R, t = polish(R, t, inliers)
    return R, t, inliers
