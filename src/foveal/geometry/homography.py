"""Plane-to-plane homographies: normalised DLT, transfer errors, LM refinement and robust fitting.

A homography ``H`` (3×3, defined up to scale, 8 degrees of freedom) maps ``src`` pixels to
``dst`` pixels, ``x′ ~ H x`` with ``x = (x, y, 1)ᵀ`` (HZ §2.3). It relates two images of a plane,
or two images taken by a camera rotating about its centre.

**DLT (HZ §4.1, Algorithm 4.1).** ``x′ × H x = 0`` gives two independent linear equations in the
nine entries ``h`` of ``H`` per correspondence (HZ eq. 4.3, with ``w = w′ = 1``)::

    [  0ᵀ    −xᵀ    y′ xᵀ ] h = 0
    [  xᵀ     0ᵀ   −x′ xᵀ ]

Stacked for ``N ≥ 4`` points into ``A h = 0`` (``A`` is 2N×9), ``h`` is the right singular vector
of ``A`` with the smallest singular value (minimising ``‖A h‖`` subject to ``‖h‖ = 1``).

**Normalisation (HZ §4.4.4, Algorithm 4.2).** Pixel coordinates (~10³) next to the 1s make ``A``
badly conditioned: its entries span six orders of magnitude, and the solution is not invariant to
the choice of image origin and scale. Hartley normalisation moves each point set's centroid to
the origin and scales it to a mean distance of √2 (``x̂ = T x``, ``x̂′ = T′ x′``); DLT on the
normalised points gives ``Ĥ``, and ``H = T′⁻¹ Ĥ T``.

**Errors.** The one-way transfer error of a correspondence is ``d(x′, H x)`` (HZ eq. 4.6); the
symmetric one ``√(d(x, H⁻¹ x′)² + d(x′, H x)²)`` (HZ eq. 4.7, as a distance in pixels).
:func:`refine_homography` minimises ``Σᵢ d(x′ᵢ, H xᵢ)²`` over the 8 free entries with
Levenberg–Marquardt (HZ §4.2.2 and §A6.2), as OpenCV's ``findHomography`` does.

**Robust fitting.** :func:`find_homography` runs MSAC with local optimisation
(:func:`foveal.geometry.ransac.ransac_batched`) over 4-point samples, solved in closed form for
many samples at once, then refines the result on its inliers with LM.

Conventions: points are ``(N, 2)`` float64 pixel rows; ``H`` is returned with ``H[2, 2] = 1``
where that entry is not (near) zero, otherwise with unit Frobenius norm.

Reference: HZ §2.3, §4.1–4.2, §4.4.4, §4.7; E. Marquez-Neila et al., *Speeding-up homography
estimation in mobile devices*, J. Real-Time Image Processing 2016 (the orientation test).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry import validate
from foveal.geometry.ransac import ransac_batched

# Relative size below which a singular value, a determinant or a scale counts as zero.
_RANK_RTOL = 1e-10
# Twice the area of a triangle of normalised points (mean distance √2 from the centroid) below
# which the triangle counts as collinear.
_COLLINEAR_AREA = 1e-8


def normalise_points(points: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Hartley normalisation: centroid to the origin, mean distance from it √2 (HZ §4.4.4).

    ``T = [[s, 0, −s x̄], [0, s, −s ȳ], [0, 0, 1]]`` with ``s = √2 / mean‖xᵢ − x̄‖``.

    Args:
        points: ``(N, 2)`` pixels, ``N ≥ 1``.

    Returns:
        ``(points_n, T)``: the normalised ``(N, 2)`` points (``x̂ = T x`` in homogeneous form)
        and the 3×3 similarity ``T``.

    Raises:
        GeometryError: the points all coincide (no scale can be defined).
    """
    x = validate.points(points, 2, "normalise_points", minimum=1)
    return _normalise(x, "normalise_points")


def _normalise(x: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(x)
    centroid = np.ones(n) @ x / n  # a BLAS product: faster than an axis-0 reduction on (N, 2)
    centred = x - centroid
    spread = np.sqrt(np.einsum("ij,ij->i", centred, centred)).sum() / n
    if spread <= _RANK_RTOL * (1.0 + np.abs(centroid).max()):
        raise GeometryError(f"{op}: expected points that are not all equal, got {len(x)} "
                            f"copies of {centroid.tolist()}")
    s = math.sqrt(2.0) / spread
    T = np.array([[s, 0.0, -s * centroid[0]], [0.0, s, -s * centroid[1]], [0.0, 0.0, 1.0]])
    centred *= s
    return centred, T


def homography_dlt(src: ArrayLike, dst: ArrayLike, *, normalise: bool = True) -> np.ndarray:
    """The homography ``H`` with ``dst ~ H src`` by the (normalised) DLT, HZ Algorithms 4.1/4.2.

    Exact for 4 points in general position, algebraic least squares for more.

    Args:
        src, dst: ``(N, 2)`` matched pixels, ``N ≥ 4``.
        normalise: Hartley-normalise both point sets first (strongly recommended; without it the
            result depends on the image origin and degrades under noise).

    Returns:
        ``H`` (3×3) with ``H[2, 2] = 1`` where possible.

    Raises:
        GeometryError: fewer than 4 points, or a degenerate configuration (e.g. 3 of 4 points
            collinear, all points collinear) that does not determine ``H``.
    """
    a, b = validate.correspondences(src, dst, "homography_dlt", minimum=4)
    if normalise:
        a, Ta = _normalise(a, "homography_dlt")
        b, Tb = _normalise(b, "homography_dlt")
    else:
        Ta = Tb = np.eye(3)
    Hn = _dlt(a, b, "homography_dlt")
    return _scaled(np.linalg.solve(Tb, Hn @ Ta))


def _dlt(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    """Unit-norm ``h`` minimising ``‖A h‖`` (HZ eq. 4.3), refusing a null space of dimension > 1."""
    n = len(a)
    A = np.zeros((max(2 * n, 9), 9))  # a zero row for N = 4 so that SVD returns all of V
    x, y = a[:, :1], a[:, 1:]
    ones = np.ones((n, 1))
    xh = np.hstack([x, y, ones])
    A[0:2 * n:2, 3:6] = -xh
    A[0:2 * n:2, 6:9] = b[:, 1:] * xh
    A[1:2 * n:2, 0:3] = xh
    A[1:2 * n:2, 6:9] = -b[:, :1] * xh
    _, sv, vt = np.linalg.svd(A, full_matrices=False)
    if sv[7] <= _RANK_RTOL * sv[0]:
        raise GeometryError(f"{op}: expected points in general position, got a degenerate "
                            f"configuration of {n} correspondences (e.g. three of four "
                            f"collinear) that does not determine H")
    return vt[8].reshape(3, 3)


def _scaled(H: np.ndarray) -> np.ndarray:
    """``H / H[2, 2]`` where that entry is not (relatively) zero, else ``H / ‖H‖_F``."""
    norm = np.linalg.norm(H)
    if abs(H[2, 2]) > _RANK_RTOL * norm:
        return H / H[2, 2]
    return H / norm


def _transfer(H: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``π(H x)`` for (N, 2) points; a point sent to infinity (w = 0) becomes inf or NaN."""
    y = x @ H[:, :2].T + H[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return y[:, :2] / y[:, 2:]


def homography_residuals(H: ArrayLike, src: ArrayLike, dst: ArrayLike, *,
                         symmetric: bool = False) -> np.ndarray:
    """Per-correspondence transfer error in pixels, ``(N,)``.

    One-way (HZ eq. 4.6): ``eᵢ = d(x′ᵢ, H xᵢ) = ‖x′ᵢ − π(H xᵢ)‖``, with ``π(x, y, w) = (x/w, y/w)``.
    Symmetric (HZ eq. 4.7): ``eᵢ = √(d(xᵢ, H⁻¹ x′ᵢ)² + d(x′ᵢ, H xᵢ)²)``.

    A point that ``H`` sends to infinity has error ``inf`` (or NaN), which RANSAC counts as an
    outlier.

    Raises:
        GeometryError: bad shapes or NaN; ``symmetric`` with a singular ``H``.
    """
    op = "homography_residuals"
    H = validate.matrix(H, (3, 3), op, "H")
    a, b = validate.correspondences(src, dst, op, minimum=0)
    forward = np.linalg.norm(b - _transfer(H, a), axis=1)
    if not symmetric:
        return forward
    sv = np.linalg.svd(H, compute_uv=False)
    if sv[2] <= _RANK_RTOL * sv[0]:
        raise GeometryError(f"{op}: expected an invertible H for the symmetric error, got "
                            f"singular values {sv.tolist()}")
    backward = np.linalg.norm(a - _transfer(np.linalg.inv(H), b), axis=1)
    return np.hypot(forward, backward)


def refine_homography(H: ArrayLike, src: ArrayLike, dst: ArrayLike) -> np.ndarray:
    """Levenberg–Marquardt refinement of ``H`` on the one-way transfer error (HZ §4.2.2).

    Minimises ``Σᵢ ‖x′ᵢ − π(H xᵢ)‖²`` over the 8 degrees of freedom of ``H`` (the entry of
    largest magnitude is held fixed, which unlike fixing ``H[2, 2] = 1`` works for every ``H``),
    with Marquardt-damped Gauss–Newton steps and the analytic Jacobian. The problem is solved in
    Hartley-normalised coordinates for conditioning; since ``T′`` is a similarity this only
    rescales the cost.

    Args:
        H: 3×3 initial estimate (e.g. from :func:`homography_dlt` on the inliers).
        src, dst: ``(N, 2)`` correspondences, ``N ≥ 4``, all assumed inliers.

    Returns:
        The refined ``H`` with ``H[2, 2] = 1`` where possible.
    """
    op = "refine_homography"
    H = validate.matrix(H, (3, 3), op, "H")
    a, b = validate.correspondences(src, dst, op, minimum=4)
    a, Ta = _normalise(a, op)
    b, Tb = _normalise(b, op)
    Hn = _lm(Tb @ H @ np.linalg.inv(Ta), a, b)
    return _scaled(np.linalg.solve(Tb, Hn @ Ta))


def _lm(H: np.ndarray, a: np.ndarray, b: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Levenberg–Marquardt on ``Σ‖π(H a) − b‖²`` with the largest entry of ``H`` fixed.

    Marquardt's damping (HZ §A6.2): solve ``(JᵀJ + λ diag(JᵀJ)) δ = −Jᵀe``; a step that lowers
    the cost is kept and ``λ`` divided by 10, otherwise ``λ`` is multiplied by 10. Stops when the
    cost falls by less than 10⁻¹⁰ relatively, the step is below 10⁻¹², or after ``iterations``.
    Eight parameters and a closed-form Jacobian: a few NumPy calls per step, far less overhead
    than a general solver (the test checks it against ``scipy.optimize.least_squares``).
    """
    H = H / np.abs(H).max()
    fixed = int(np.argmax(np.abs(H)))
    free = np.delete(np.arange(9), fixed)
    xh = np.column_stack([a, np.ones(len(a))])

    def residuals_and_jacobian(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # u = h₀·x̃, v = h₁·x̃, w = h₂·x̃ (rows hⱼ of H, x̃ = (x, y, 1)):
        # ∂(u/w)/∂h₀ = x̃/w, ∂(u/w)/∂h₂ = −(u/w) x̃/w, and likewise for v.
        y = xh @ h.reshape(3, 3).T
        proj = y[:, :2] / y[:, 2:]
        xw = xh / y[:, 2:]
        J = np.zeros((len(a), 2, 9))
        J[:, 0, 0:3] = xw
        J[:, 1, 3:6] = xw
        J[:, 0, 6:9] = -proj[:, :1] * xw
        J[:, 1, 6:9] = -proj[:, 1:] * xw
        return (proj - b).ravel(), J.reshape(-1, 9)[:, free]

    h = H.ravel().copy()
    e, J = residuals_and_jacobian(h)
    cost = e @ e
    if not np.isfinite(cost):
        return H  # a point at infinity under H: nothing sensible to refine from
    damping = 1e-3
    for _ in range(iterations):
        JtJ, Jte = J.T @ J, J.T @ e
        while True:
            try:
                step = np.linalg.solve(JtJ + damping * np.diag(np.diag(JtJ)), -Jte)
            except np.linalg.LinAlgError:
                step = None
            if step is not None:
                trial = h.copy()
                trial[free] += step
                e_new, J_new = residuals_and_jacobian(trial)
                cost_new = e_new @ e_new
                if np.isfinite(cost_new) and cost_new < cost:
                    break
            damping *= 10.0
            if damping > 1e12:
                return h.reshape(3, 3)
        converged = (cost - cost_new <= 1e-10 * cost
                     or np.linalg.norm(step) <= 1e-12 * (np.linalg.norm(h[free]) + 1e-12))
        h, e, J, cost = trial, e_new, J_new, cost_new
        damping = max(damping / 10.0, 1e-12)
        if converged:
            break
    return h.reshape(3, 3)


def find_homography(
    src: ArrayLike,
    dst: ArrayLike,
    threshold: float = 3.0,
    *,
    confidence: float = 0.999,
    max_iterations: int = 2000,
    refine: bool = True,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust homography ``dst ~ H src`` from correspondences with outliers.

    1. Hartley-normalise both point sets once (HZ §4.4.4).
    2. MSAC with LO (:func:`~foveal.geometry.ransac.ransac_batched`): 4-point samples solved in
       closed form, a block of samples at once. A sample is skipped when three of its points are
       collinear in either image, or when its four triangles do not all keep (or all flip) their
       orientation from ``src`` to ``dst``: a homography of a plane seen from the front cannot
       fold it (Marquez-Neila et al.). Scoring uses the one-way transfer error
       ``d(x′, H x) < threshold``. Local optimisation refits with the normalised DLT.
    3. Levenberg–Marquardt on the inliers' transfer error (:func:`refine_homography`); the
       inliers are those of the final ``H``.

    The 4-point solution maps the canonical projective basis to each point set (HZ §2.3,
    exercise): with ``d₀ = det[p₁ p₂ p₃]`` and ``dᵢ`` the same determinant with ``pᵢ`` replaced by
    ``p₄`` (``eᵢ`` likewise for the ``qᵢ`` in ``dst``),
    ``H ∝ [q₁ q₂ q₃] · diag(e₁d₂d₃, e₂d₁d₃, e₃d₁d₂) · adj[p₁ p₂ p₃]``, whose rows of
    ``adj`` are ``p₂×p₃``, ``p₃×p₁``, ``p₁×p₂``: a few products per sample, no SVD.

    Args:
        src, dst: ``(N, 2)`` matched pixels, ``N ≥ 4``.
        threshold: inlier threshold on the transfer error, in ``dst`` pixels.
        confidence: RANSAC confidence ``p`` (1.0 runs all ``max_iterations``).
        max_iterations: cap on the 4-point hypotheses tried.
        refine: run the final Levenberg–Marquardt step.
        seed: RNG seed or generator; the same seed gives the same result.

    Returns:
        ``(H, inliers)``: 3×3 with ``H[2, 2] = 1`` where possible, and ``(N,)`` bool.

    Raises:
        GeometryError: bad input, fewer than 4 points, all points collinear in either image, or
            no non-degenerate sample found.
    """
    op = "find_homography"
    a, b = validate.correspondences(src, dst, op, minimum=4)
    t = validate.positive(threshold, op, "threshold")
    a, Ta = _normalise(a, op)
    b, Tb = _normalise(b, op)
    for name, x in (("src", a), ("dst", b)):
        # Normalised points have RMS radius ~√2: a vanishing second singular value means a line.
        if np.linalg.svd(x, compute_uv=False)[1] <= 1e-9 * math.sqrt(len(x)):
            raise GeometryError(f"{op}: expected {name} points not all on one line, got "
                                f"{len(x)} collinear points")
    t_n = t * Tb[0, 0]  # the threshold in normalised dst units (T′ scales distances by s′)
    n = len(a)
    ah, bh = np.column_stack([a, np.ones(n)]), np.column_stack([b, np.ones(n)])
    # Scoring runs in float32: residuals of normalised points need ~1e-7 relative precision only.
    a32 = np.ascontiguousarray(ah.T, dtype=np.float32)
    bx32, by32 = b[:, 0].astype(np.float32), b[:, 1].astype(np.float32)

    def fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Hs, ok = _four_point(ah[samples], bh[samples])
        return Hs[ok], np.flatnonzero(ok)

    def squared_residuals(Hs: np.ndarray) -> np.ndarray:
        k = len(Hs)
        y = (Hs.astype(np.float32).reshape(3 * k, 3) @ a32).reshape(k, 3, n)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inv_w = np.reciprocal(y[:, 2])
            du = y[:, 0]
            du *= inv_w
            du -= bx32
            dv = y[:, 1]
            dv *= inv_w
            dv -= by32
            du *= du
            dv *= dv
            du += dv
        return du

    def refine_dlt(idx: np.ndarray) -> np.ndarray | None:
        try:  # the inliers of normalised points are well enough conditioned as they are
            return _dlt(a[idx], b[idx], op)
        except GeometryError:
            return None

    result = ransac_batched(n, 4, fit, squared_residuals, t_n, refine=refine_dlt,
                            confidence=confidence, max_iterations=max_iterations, seed=seed)
    if result.model is None:
        raise GeometryError(f"{op}: expected correspondences with four points in general "
                            f"position, got no non-degenerate 4-point sample among {n}")
    Hn = np.asarray(result.model)
    inliers = result.inliers
    if refine and np.count_nonzero(inliers) >= 4:
        Hn = _lm(Hn, a[inliers], b[inliers])
        inliers = np.linalg.norm(b - _transfer(Hn, a), axis=1) < t_n
    return _scaled(np.linalg.solve(Tb, Hn @ Ta)), inliers


def _four_point(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Homographies ``q ~ H p`` from B samples of 4 homogeneous points ``(B, 4, 3)`` (w = 1).

    Returns ``(H (B, 3, 3), ok (B,))``; ``ok`` is False for samples with three collinear points
    in either set or with inconsistent triangle orientations (see :func:`find_homography`).
    """
    # The four triangles, as (first, second, third) vertex: d₀ = det[p₁ p₂ p₃],
    # d₁ = det[p₄ p₂ p₃], d₂ = det[p₁ p₄ p₃], d₃ = det[p₁ p₂ p₄]. With w = 1, det[a b c] is the
    # 2-D cross product (b − a) × (c − a), twice the signed area.
    first, second, third = [0, 3, 0, 0], [1, 1, 3, 1], [2, 2, 2, 3]

    def dets(pts: np.ndarray) -> np.ndarray:
        ab = pts[:, second, :2] - pts[:, first, :2]
        ac = pts[:, third, :2] - pts[:, first, :2]
        return ab[..., 0] * ac[..., 1] - ab[..., 1] * ac[..., 0]  # (B, 4)

    d, e = dets(p), dets(q)
    orientation = d * e > 0
    ok = (np.abs(d).min(axis=1) > _COLLINEAR_AREA) & (np.abs(e).min(axis=1) > _COLLINEAR_AREA)
    ok &= orientation.all(axis=1) | ~orientation.any(axis=1)
    # rows of adj[p₁ p₂ p₃]: p₂ × p₃, p₃ × p₁, p₁ × p₂
    adj = np.cross(p[:, [1, 2, 0]], p[:, [2, 0, 1]])
    c = np.stack([e[:, 1] * d[:, 2] * d[:, 3], e[:, 2] * d[:, 1] * d[:, 3],
                  e[:, 3] * d[:, 1] * d[:, 2]], axis=1)
    H = np.einsum("bij,bi,bik->bjk", q[:, :3], c, adj)
    H /= np.linalg.norm(H.reshape(-1, 9), axis=1)[:, None, None] + 1e-300
    return H, ok
