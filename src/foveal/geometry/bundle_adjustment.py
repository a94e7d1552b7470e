"""Bundle adjustment: jointly refine camera poses and 3-D points on the reprojection error.

Cameras ``i = 0..C−1`` with extrinsics ``(Rᵢ, tᵢ)`` (``x_cam = Rᵢ X + tᵢ``) and fixed
intrinsics ``Kᵢ`` observe points ``Xⱼ``, ``j = 0..P−1``. The observations are three aligned
arrays: ``camera_index`` (M,), ``point_index`` (M,) and pixels ``xy`` (M, 2); the visibility
``θᵢⱼ`` of the textbook sum is 1 exactly for the listed pairs. We minimise

    E = ½ Σ_(i,j) ρ(‖rᵢⱼ‖²),    rᵢⱼ = π(Kᵢ (Rᵢ Xⱼ + tᵢ)) − x̃ᵢⱼ,    π(u, v, w) = (u/w, v/w),

with ``ρ(s) = s`` or the Huber function of the whole 2-D residual (``ρ(s) = s`` up to
``s = δ²``, ``2δ√s − δ²`` beyond; scipy's ``loss="huber"``, ``f_scale = δ``). ``E`` is
scipy's ``cost`` convention (½ the sum).

Parameters and Jacobian. Each camera has 6 parameters, a rotation increment ``δω`` applied on
the left, ``Rᵢ ← exp([δω]×) Rᵢ``, and ``δt``; each point has 3. At ``qᵢⱼ = Rᵢ Xⱼ``,
``pᵢⱼ = qᵢⱼ + tᵢ`` and ``J_π = ∂ pixel / ∂ p`` (2 × 3),

    ∂rᵢⱼ/∂δωᵢ = −J_π [qᵢⱼ]×,    ∂rᵢⱼ/∂tᵢ = J_π,    ∂rᵢⱼ/∂Xⱼ = J_π Rᵢ,

and every other derivative is zero: each observation's two rows of the ``2M × (6C + 3P)``
Jacobian have 9 non-zeros, 6 in its camera's columns and 3 in its point's
(:func:`reprojection_jacobian` returns it as a sparse matrix).

Solver: Levenberg–Marquardt with the Schur complement (Triggs et al. 2000, §6.1; HZ A6.3). The
damped normal equations split into cameras ``c`` and points ``p``,

    [ U   W ] [δc]   [−g_c]        U = Σ J_cᵀ J_c  (block diagonal, 6 × 6 per camera)
    [ Wᵀ  V ] [δp] = [−g_p],       V = Σ J_pᵀ J_p  (block diagonal, 3 × 3 per point),

so eliminating the points leaves the small dense ``6C × 6C`` *reduced camera system*

    (U − W V⁻¹ Wᵀ) δc = −g_c + W V⁻¹ g_p,     then   δp = V⁻¹ (−g_p − Wᵀ δc),

solved by Cholesky; ``V⁻¹`` is a batch of 3 × 3 inverses. Damping is Marquardt's,
``U + λ diag(U)``, ``V + λ diag(V)``, with λ adapted by Nielsen's gain-ratio rule. A robust
loss enters the blocks through per-observation 2 × 2 weights, ``Jᵀ (ρ' I + 2ρ'' r rᵀ) J``, and
the gradient ``ρ' Jᵀ r`` (Triggs et al. §4.3): for Huber beyond δ that is ``ρ' (I − r̂ r̂ᵀ)``,
no curvature along the residual, where plain reweighting (``ρ' I``) would converge slowly.

This was measured faster, and more exact per step, than
``scipy.optimize.least_squares(method="trf", tr_solver="lsmr")`` with the same analytic sparse
Jacobian (``bench/bundle_adjustment.py``).

Gauge. ``E`` is unchanged by a similarity of the whole scene (7 degrees of freedom: rotation,
translation, scale). ``fixed_cameras`` (default: camera 0) holds cameras exactly, which removes
the rotation and translation; ``fix_scale=True`` also holds one coordinate of the first free
camera's translation, the one with the largest component of its baseline to the first fixed
camera, which removes the scale. Without them LM's damping still gives a solution, at some
point of the gauge orbit.

References: B. Triggs, P. McLauchlan, R. Hartley, A. Fitzgibbon, "Bundle adjustment — a modern
synthesis", Vision Algorithms 1999 (LNCS 1883, 2000); HZ §18.1 and A6.3 (sparse LM);
K. Madsen, H. B. Nielsen, O. Tingleff, *Methods for Non-Linear Least Squares Problems*, 2004.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry.pnp import (
    Loss,
    _check_loss,
    _projection_jacobian,
    _robust_cost,
    _robust_model,
    _rotation_jacobian,
)
from foveal.geometry.rotation import exp_so3, project_to_so3
from foveal.geometry.validate import calibration_matrix, points, rotations, stack

# Bounds on Marquardt's scaling diag(JᵀJ): a parameter the data do not see (a point seen once,
# along its ray) still gets a damped, finite step (the values Ceres uses).
_MIN_DIAGONAL, _MAX_DIAGONAL = 1e-6, 1e32


@dataclass(frozen=True)
class BundleAdjustmentResult:
    """What :func:`bundle_adjust` found.

    Attributes:
        R: (C, 3, 3) rotations, world → camera; fixed cameras are returned unchanged.
        t: (C, 3) translations (``x_cam = R X + t``).
        points: (P, 3) world points.
        initial_cost, final_cost: ``½ Σ ρ(‖r‖²)`` before and after (scipy's ``cost``).
        rms_error: ``√(mean ‖r‖²)`` over the observations after, in pixels (not robustified).
        iterations: LM iterations, i.e. Jacobian evaluations.
        residuals: (M, 2) ``predicted − observed`` pixels after.
        converged: whether a tolerance was met before ``max_iterations``.
    """

    R: np.ndarray
    t: np.ndarray
    points: np.ndarray
    initial_cost: float
    final_cost: float
    rms_error: float
    iterations: int
    residuals: np.ndarray
    converged: bool


@dataclass(frozen=True)
class _Problem:
    """Validated observations and intrinsics, with per-observation K entries."""

    cam: np.ndarray  # (M,) int
    pt: np.ndarray  # (M,) int
    xy: np.ndarray  # (M, 2)
    K: np.ndarray  # (C, 3, 3)
    n_cameras: int
    n_points: int

    @property
    def fx(self) -> np.ndarray:
        return self.K[self.cam, 0, 0]

    @property
    def skew(self) -> np.ndarray:
        return self.K[self.cam, 0, 1]

    @property
    def fy(self) -> np.ndarray:
        return self.K[self.cam, 1, 1]


def _indices(value: ArrayLike, size: int, count: int | None, op: str, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise GeometryError(f"{op}: expected {name} as a 1-D integer array, got dtype "
                            f"{a.dtype} and shape {a.shape}")
    if count is not None and len(a) != count:
        raise GeometryError(f"{op}: expected {name} of length {count} like camera_index, got "
                            f"{len(a)}")
    if a.size and (a.min() < 0 or a.max() >= size):
        raise GeometryError(f"{op}: expected {name} in [0, {size}), got values in "
                            f"[{a.min()}, {a.max()}]")
    return a.astype(np.intp)


def _validate(R: ArrayLike, t: ArrayLike, X: ArrayLike, camera_index: ArrayLike,
              point_index: ArrayLike, xy: ArrayLike | None, K: ArrayLike, op: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Problem]:
    R = rotations(R, op, "R")
    if R.ndim != 3:
        raise GeometryError(f"{op}: expected R of shape (C, 3, 3), got {R.shape}")
    C = len(R)
    t = points(t, 3, op, "t", count=C)
    X = points(X, 3, op, "points", minimum=1)
    cam = _indices(camera_index, C, None, op, "camera_index")
    pt = _indices(point_index, len(X), len(cam), op, "point_index")
    if len(cam) == 0:
        raise GeometryError(f"{op}: expected at least one observation, got none")
    if xy is not None:
        xy = points(xy, 2, op, "xy", count=len(cam))
    K = stack(K, (3, 3), op, "K")
    if K.ndim == 2:
        K = np.broadcast_to(calibration_matrix(K, op), (C, 3, 3))
    elif K.shape == (C, 3, 3):
        K = np.stack([calibration_matrix(k, op, f"K[{i}]") for i, k in enumerate(K)])
    else:
        raise GeometryError(f"{op}: expected K of shape (3, 3) or ({C}, 3, 3), got {K.shape}")
    return R, t, X, _Problem(cam, pt, np.empty((len(cam), 2)) if xy is None else xy, K, C,
                             len(X))


def _evaluate(R: np.ndarray, t: np.ndarray, X: np.ndarray, prob: _Problem, jacobian: bool
              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Residuals (M, 2) and, if asked, the camera (M, 2, 6) and point (M, 2, 3) Jacobians."""
    Rc = R[prob.cam]
    q = np.einsum("mij,mj->mi", Rc, X[prob.pt])
    p = q + t[prob.cam]
    Kc = prob.K[prob.cam]
    r = np.einsum("mij,mj->mi", Kc[:, :2, :2], p[:, :2] / p[:, 2:]) + Kc[:, :2, 2] - prob.xy
    if not jacobian:
        return r, None, None
    Jpi = _projection_jacobian(p, prob.fx, prob.skew, prob.fy)
    Jc = np.concatenate([_rotation_jacobian(Jpi, q), Jpi], axis=2)
    return r, Jc, Jpi @ Rc


def reprojection_residuals(R: ArrayLike, t: ArrayLike, points: ArrayLike,
                           camera_index: ArrayLike, point_index: ArrayLike, xy: ArrayLike,
                           K: ArrayLike) -> np.ndarray:
    """``π(K_i (R_i X_j + t_i)) − x̃_ij`` (M, 2) for every observation, in pixels.

    ``R`` (C, 3, 3), ``t`` (C, 3), ``points`` (P, 3), ``camera_index``/``point_index`` (M,)
    integers, ``xy`` (M, 2), ``K`` (3, 3) shared or (C, 3, 3) per camera.
    """
    R, t, X, prob = _validate(R, t, points, camera_index, point_index, xy, K,
                              "reprojection_residuals")
    return _evaluate(R, t, X, prob, jacobian=False)[0]


def reprojection_jacobian(R: ArrayLike, t: ArrayLike, points: ArrayLike,
                          camera_index: ArrayLike, point_index: ArrayLike,
                          K: ArrayLike) -> scipy.sparse.csr_matrix:
    """The sparse Jacobian ``∂r / ∂(δω₀, δt₀, …, δω_{C−1}, δt_{C−1}, X₀, …, X_{P−1})``.

    Shape ``(2M, 6C + 3P)``; rows ``2k, 2k+1`` are observation ``k``'s ``(u, v)`` residuals
    (as in :func:`reprojection_residuals`, flattened row-major); columns ``6i..6i+5`` are camera
    ``i``'s ``(δω, t)``, with the rotation perturbed on the left, ``R ← exp([δω]×) R``, and
    columns ``6C + 3j..6C + 3j+2`` are point ``j``. Each row has 9 non-zeros.
    """
    R, t, X, prob = _validate(R, t, points, camera_index, point_index, None, K,
                              "reprojection_jacobian")
    _, Jc, Jp = _evaluate(R, t, X, prob, jacobian=True)
    M, C = len(prob.cam), prob.n_cameras
    rows = np.repeat(np.arange(2 * M), 9)
    cols = np.concatenate([6 * prob.cam[:, None] + np.arange(6),
                           6 * C + 3 * prob.pt[:, None] + np.arange(3)], axis=1)
    cols = np.repeat(cols[:, None, :], 2, axis=1).ravel()
    data = np.concatenate([Jc, Jp], axis=2).ravel()  # type: ignore[list-item]
    return scipy.sparse.csr_matrix((data, (rows, cols)), shape=(2 * M, 6 * C + 3 * prob.n_points))


class _Structure:
    """The fixed structure of a problem: which observations sum into which camera, point and
    (camera, camera) block of the reduced camera system.

    ``S_red = W V⁻¹ Wᵀ`` gets, from each point ``j``, the block ``Y_aj W_bjᵀ`` at cameras
    ``(a, b)`` for every pair of its observations (``Y = W V⁻¹``). Points are grouped by track
    length ``m``, so that one batched matmul per group forms each point's ``6m × 6m`` matrix of
    blocks, rows ``(a, i)`` and columns ``(b, k)``. Read as rows of 6 (fixed ``a, i, b``),
    these are summed straight into row ``6·cam_a + i``, columns ``6·cam_b..+6`` of ``S_red`` by
    a sparse incidence matrix, with no transposed copy. About twice as fast as the general
    sparse product ``Y Wᵀ``, which looks up the same pairs one entry at a time.
    """

    def __init__(self, prob: _Problem) -> None:
        M, C, P = len(prob.cam), prob.n_cameras, prob.n_points
        ones = np.ones(M)
        self.by_camera = scipy.sparse.csr_matrix((ones, (prob.cam, np.arange(M))), shape=(C, M))
        self.by_point = scipy.sparse.csr_matrix((ones, (prob.pt, np.arange(M))), shape=(P, M))
        order = np.argsort(prob.pt, kind="stable")
        counts = np.bincount(prob.pt, minlength=P)
        starts = np.concatenate([[0], np.cumsum(counts)])
        self.groups = []  # (observations (n, m), incidence (6C·C, n·6m²)) per track length m
        for m in np.unique(counts[counts > 0]):
            members = np.flatnonzero(counts == m)
            obs = order[starts[members][:, None] + np.arange(m)]
            c = prob.cam[obs]
            row = (6 * c[:, :, None, None] + np.arange(6)[:, None]) * C + c[:, None, None, :]
            row = row.ravel()  # (point, a, i, b) → (6·cam_a + i)·C + cam_b
            self.groups.append((obs, scipy.sparse.csr_matrix(
                (np.ones(len(row)), (row, np.arange(len(row)))), shape=(6 * C * C, len(row)))))

    def reduced(self, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
        """``Σⱼ Σ_(a,b) Y_aj W_bjᵀ`` as a dense (6C × 6C) matrix, from (M, 6, 3) blocks."""
        C = self.by_camera.shape[0]
        S = np.zeros((6 * C * C, 6))
        for obs, incidence in self.groups:
            n, m = obs.shape
            blocks = Y[obs].reshape(n, 6 * m, 3) @ W[obs].reshape(n, 6 * m, 3).transpose(0, 2, 1)
            S += incidence @ blocks.reshape(-1, 6)
        return S.reshape(6 * C, 6 * C)


def _damped(H: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``H + λ D`` and ``D = clip(diag H)`` for a stack of (n, k, k) blocks."""
    D = np.clip(np.diagonal(H, axis1=1, axis2=2), _MIN_DIAGONAL, _MAX_DIAGONAL)
    Hd = H.copy()
    k = H.shape[1]
    Hd[:, np.arange(k), np.arange(k)] += lam * D
    return Hd, D


def _free_parameters(R: np.ndarray, t: np.ndarray, fixed_cameras: Sequence[int],
                     fix_scale: bool, op: str) -> np.ndarray:
    """(C, 6) mask of the camera parameters that move (see the module docstring, "Gauge")."""
    C = len(R)
    fixed = sorted({int(i) for i in fixed_cameras})
    if fixed and (fixed[0] < 0 or fixed[-1] >= C):
        raise GeometryError(f"{op}: expected fixed_cameras in [0, {C}), got {fixed}")
    free = np.ones((C, 6), dtype=bool)
    free[fixed] = False
    if fix_scale:
        moving = [i for i in range(C) if i not in fixed]
        if not fixed or not moving:
            raise GeometryError(f"{op}: expected fix_scale with at least one fixed and one "
                                f"free camera, got fixed_cameras={fixed} of {C}")
        f, c = fixed[0], moving[0]
        # Camera c in camera f's frame: x_c = R_c R_fᵀ x_f + t_rel; scaling the scene about
        # camera f scales t_rel, so hold the component of t_c that t_rel moves most.
        t_rel = t[c] - R[c] @ R[f].T @ t[f]
        k = int(np.argmax(np.abs(t_rel)))
        if np.abs(t_rel[k]) <= 1e-12 * max(np.abs(t).max(), 1e-300):
            raise GeometryError(f"{op}: expected cameras {f} and {c} at distinct centres to fix "
                                "the scale, got a zero baseline")
        free[c, 3 + k] = False
    return free


def bundle_adjust(R: ArrayLike, t: ArrayLike, points: ArrayLike, camera_index: ArrayLike,
                  point_index: ArrayLike, xy: ArrayLike, K: ArrayLike, *,
                  loss: Loss = "linear", huber_delta: float = 1.0,
                  fixed_cameras: Sequence[int] = (0,), fix_scale: bool = False,
                  max_iterations: int = 100, tolerance: float = 1e-10,
                  ) -> BundleAdjustmentResult:
    """Refine poses ``(R, t)`` and ``points`` to minimise the (robust) reprojection error.

    Args:
        R: (C, 3, 3) initial rotations, world → camera.
        t: (C, 3) initial translations, ``x_cam = R X + t``.
        points: (P, 3) initial world points.
        camera_index, point_index: (M,) integers: observation ``k`` is point
            ``point_index[k]`` seen by camera ``camera_index[k]``, at most once per pair.
        xy: (M, 2) observed pixels.
        K: (3, 3) intrinsics shared by all cameras, or (C, 3, 3) one per camera; held fixed.
        loss: ``"linear"`` (least squares) or ``"huber"`` on the 2-D residual norm, with
            threshold ``huber_delta`` pixels.
        fixed_cameras: cameras held exactly (the gauge; default the first).
        fix_scale: also hold one translation coordinate of the first free camera (the scale).
        max_iterations: LM iterations (Jacobian evaluations) at most.
        tolerance: stop when an accepted step lowers the cost by less than this fraction, or
            moves every parameter by less than this (relative), or the gradient's largest
            entry is below this times the cost.

    Returns a :class:`BundleAdjustmentResult`. See the module docstring for the objective, the
    Jacobian and the Schur-complement solver.
    """
    op = "bundle_adjust"
    R, t, X, prob = _validate(R, t, points, camera_index, point_index, xy, K, op)
    delta = _check_loss(loss, huber_delta, op)
    pairs = prob.cam.astype(np.int64) * prob.n_points + prob.pt
    if len(np.unique(pairs)) != len(pairs):
        raise GeometryError(f"{op}: expected each (camera, point) pair observed at most once, "
                            f"got {len(pairs) - len(np.unique(pairs))} repeated pair(s)")
    free = _free_parameters(R, t, fixed_cameras, fix_scale, op)
    moving = free.any(1)
    R0, t0 = R, t
    structure = _Structure(prob)
    C, P = prob.n_cameras, prob.n_points
    mask = free[prob.cam].astype(np.float64)[:, None, :]  # zeroes fixed columns of J_c

    def cost_of(R: np.ndarray, t: np.ndarray, X: np.ndarray) -> float:
        r = _evaluate(R, t, X, prob, jacobian=False)[0]
        return 0.5 * float(_robust_cost((r * r).sum(1), loss, delta).sum())

    cost = initial_cost = cost_of(R, t, X)
    lam, nu = 1e-4, 2.0
    iterations, converged = 0, False
    while iterations < max_iterations and not converged:
        iterations += 1
        r, Jc, Jp = _evaluate(R, t, X, prob, jacobian=True)
        Jc = Jc * mask  # type: ignore[operator]
        w, Wr = _robust_model(r, loss, delta)
        JcT, JpT = np.swapaxes(Jc, 1, 2), np.swapaxes(Jp, 1, 2)  # type: ignore[arg-type]
        JcW, JpW = (JcT, JpT) if Wr is None else (JcT @ Wr, JpT @ Wr)
        U = (structure.by_camera @ (JcW @ Jc).reshape(-1, 36)).reshape(C, 6, 6)
        V = (structure.by_point @ (JpW @ Jp).reshape(-1, 9)).reshape(P, 3, 3)
        W_obs = JcW @ Jp  # (M, 6, 3): the blocks of W
        rw = (r if w is None else w[:, None] * r)[:, :, None]  # gradient ρ' Jᵀ r
        g_c = structure.by_camera @ (JcT @ rw)[:, :, 0]  # (C, 6)
        g_p = structure.by_point @ (JpT @ rw)[:, :, 0]  # (P, 3)
        if max(np.abs(g_c).max(), np.abs(g_p).max()) <= tolerance * cost:
            converged = True
            break
        while True:  # LM inner loop: raise λ until a step lowers the cost
            Ud, Dc = _damped(U, lam)
            Vd, Dp = _damped(V, lam)
            V_inv = np.linalg.inv(Vd)
            Y_obs = W_obs @ V_inv[prob.pt]  # the blocks of Y = W V⁻¹
            S = scipy.linalg.block_diag(*Ud) - structure.reduced(Y_obs, W_obs)
            Y_gp = structure.by_camera @ (Y_obs @ g_p[prob.pt][:, :, None])[:, :, 0]
            b = (Y_gp - g_c).ravel()  # −g_c + W V⁻¹ g_p
            fixed = ~free.ravel()
            S[fixed, :] = 0.0
            S[:, fixed] = 0.0
            S[fixed, fixed] = 1.0
            b[fixed] = 0.0
            try:
                dc = scipy.linalg.cho_solve(scipy.linalg.cho_factor(S), b)
            except np.linalg.LinAlgError:
                lam, nu = lam * nu, 2.0 * nu
                continue
            dc = dc.reshape(C, 6)
            Wt_dc = structure.by_point @ (np.swapaxes(W_obs, 1, 2) @ dc[prob.cam][:, :, None])[
                :, :, 0]
            dp = (V_inv @ (-g_p - Wt_dc)[:, :, None])[:, :, 0]
            R_new = R.copy()
            R_new[moving] = exp_so3(dc[moving, :3]) @ R[moving]
            t_new, X_new = t + dc[:, 3:], X + dp
            cost_new = cost_of(R_new, t_new, X_new)
            # ½ δᵀ(λDδ − g): the decrease the damped quadratic model predicts.
            predicted = 0.5 * (np.sum(dc * (lam * Dc * dc - g_c))
                               + np.sum(dp * (lam * Dp * dp - g_p)))
            gain = (cost - cost_new) / predicted if predicted > 0 else -1.0
            if gain > 0 and np.isfinite(cost_new):
                lam *= max(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3)
                nu = 2.0
                step = max(np.abs(dc).max(), np.abs(dp).max())
                scale = max(np.abs(t).max(), np.abs(X).max(), 1.0)
                converged = cost - cost_new <= tolerance * cost or step <= tolerance * scale
                R, t, X, cost = R_new, t_new, X_new, cost_new
                break
            lam, nu = lam * nu, 2.0 * nu
            if lam > 1e32:  # no descent direction left at double precision
                converged = True
                break

    R = R.copy()
    R[moving] = project_to_so3(R[moving])
    R[~moving], t = R0[~moving], np.where(free[:, 3:], t, t0)
    r = _evaluate(R, t, X, prob, jacobian=False)[0]
    return BundleAdjustmentResult(
        R=R, t=t, points=X, initial_cost=initial_cost, final_cost=cost_of(R, t, X),
        rms_error=float(np.sqrt((r * r).sum(1).mean())), iterations=iterations, residuals=r,
        converged=converged)
