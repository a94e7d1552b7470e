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
from scipy.linalg import lapack

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


def _moment_terms(z: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-point weights ``c = (1, u, v, u² + v²)`` ``(4, N)`` and outer products ``z zᵀ``
    ``(9, N)`` of ``z`` ``(3, N)``, ``u``, ``v`` ``(N,)``: the moments of :func:`_gram` are
    ``S = c @ (z zᵀ)ᵀ`` (one ``(4, N) @ (N, 9)`` product)."""
    weights = np.empty((4, len(u)))
    weights[0], weights[1], weights[2] = 1.0, u, v
    np.multiply(u, u, out=weights[3])
    weights[3] += v * v
    return weights, (z[:, None] * z[None]).reshape(9, -1)


def _gram(S: np.ndarray) -> np.ndarray:
    """9×9 ``Σᵢ (r₁ᵢ r₁ᵢᵀ + r₂ᵢ r₂ᵢᵀ)`` for rows ``r₁ = (0ᵀ, zᵀ, −v zᵀ)``, ``r₂ = (zᵀ, 0ᵀ, −u zᵀ)``.

    Both the DLT rows (HZ eq. 4.3, ``z = x̃``, ``(u, v) = x′``, up to the sign of ``r₁``) and the
    rows of the transfer-error Jacobian (``z = x̃ / w``, ``(u, v) = π(H x̃)``, see :func:`_lm`)
    have this form, so both normal matrices are assembled from four 3×3 moments
    ``S_c = Σᵢ cᵢ zᵢ zᵢᵀ``, ``S`` ``(4, 3, 3)`` for the weights ``c = 1, u, v, u² + v²``
    (:func:`_moment_terms`), without any ``2N × 9`` matrix::

        [[ S₁    0   −S_u        ]
         [ 0     S₁  −S_v        ]
         [ −S_u  −S_v  S_{u²+v²} ]]
    """
    G = np.zeros((9, 9))
    G[0:3, 0:3] = G[3:6, 3:6] = S[0]
    G[0:3, 6:9] = G[6:9, 0:3] = -S[1]
    G[3:6, 6:9] = G[6:9, 3:6] = -S[2]
    G[6:9, 6:9] = S[3]
    return G


def _dlt_normal(S: np.ndarray) -> np.ndarray | None:
    """The DLT ``H`` from the moments ``S`` of :func:`_gram`: the eigenvector of ``AᵀA`` with the
    least eigenvalue.

    Same minimiser as :func:`_dlt` (``‖A h‖² = hᵀAᵀA h``) at a fraction of the cost, but squaring
    ``A`` squares its condition number, so it is only used on Hartley-normalised points
    (LO-RANSAC refits), and returns None instead of raising when the second-smallest eigenvalue
    vanishes (a null space of dimension > 1). Eigenvalues are squared singular values, so the
    ``_RANK_RTOL`` test on them is a singular-value ratio of √1e-10 = 1e-5: stricter than
    :func:`_dlt`'s, on purpose (a refit that is nearly rank-deficient is skipped, not trusted).
    """
    # LAPACK's dsyevd (what np.linalg.eigh runs) called directly: for a 9×9 matrix the NumPy
    # wrapper costs as much as the decomposition, and LO-RANSAC runs this at every refit.
    eigenvalues, vectors, info = lapack.dsyevd(_gram(S), compute_v=1, lower=1)
    if info != 0 or eigenvalues[1] <= _RANK_RTOL * eigenvalues[8]:
        return None
    return vectors[:, 0].reshape(3, 3)


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
    cost falls by less than 10⁻⁸ relatively (scipy's default ``ftol``: near the minimum the steps
    are Gauss–Newton's, which converge quadratically, so ~10⁻¹⁶ of the cost is left to gain), the
    step is below 10⁻¹², or after ``iterations``.

    With ``(u, v, w)ᵀ = H x̃``, ``z = x̃ / w`` and ``p = (u/w, v/w)``, the Jacobian rows of
    ``p − b`` are ``∂p_u/∂h = (zᵀ, 0ᵀ, −p_u zᵀ)`` and ``∂p_v/∂h = (0ᵀ, zᵀ, −p_v zᵀ)``, so ``JᵀJ``
    is :func:`_gram` of ``(z, p)`` and ``Jᵀe = (Σ e_u z, Σ e_v z, −Σ (p_u e_u + p_v e_v) z)``:
    eight parameters, a few NumPy calls per step, no ``2N × 8`` Jacobian and far less overhead
    than a general solver (the test checks it against ``scipy.optimize.least_squares``). A
    rejected trial step costs one residual evaluation only.
    """
    H = H / np.abs(H).max()
    fixed = int(np.argmax(np.abs(H)))
    free = np.array([i for i in range(9) if i != fixed])
    free_block = np.ix_(free, free)
    xh = np.ones((3, len(a)))  # points as columns: every array below is (k, N), N contiguous
    xh[:2] = a.T
    bt = b.T

    def residuals(h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(e, p, 1/w, cost)`` for the stacked ``h`` (9,): ``e = p − b`` and ``p`` (2, N)."""
        y = h.reshape(3, 3) @ xh
        inv_w = 1.0 / y[2]
        proj = y[:2] * inv_w
        e = proj - bt
        return e, proj, inv_w, float(e.ravel() @ e.ravel())

    def normal_equations(e: np.ndarray, proj: np.ndarray, inv_w: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        z = xh * inv_w
        weights = np.empty((3, len(inv_w)))
        weights[:2] = e
        weights[2] = -(proj[0] * e[0] + proj[1] * e[1])
        Jte = (weights @ z.T).ravel()
        moment_weights, outer = _moment_terms(z, proj[0], proj[1])
        return _gram((moment_weights @ outer.T).reshape(4, 3, 3))[free_block], Jte[free]

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # points at infinity
        h = H.ravel().copy()
        e, proj, inv_w, cost = residuals(h)
        if not np.isfinite(cost):
            return H  # a point at infinity under H: nothing sensible to refine from
        damping = 1e-3
        for _ in range(iterations):
            JtJ, Jte = normal_equations(e, proj, inv_w)
            diagonal = JtJ.diagonal().copy()
            while True:
                JtJ.flat[::9] = diagonal * (1.0 + damping)
                # LAPACK's dgesv (np.linalg.solve's routine) without the wrapper, which costs
                # more than an 8 × 8 solve
                _, _, step, singular = lapack.dgesv(JtJ, -Jte)
                if not singular:
                    trial = h.copy()
                    trial[free] += step
                    e_new, proj_new, inv_w_new, cost_new = residuals(trial)
                    if np.isfinite(cost_new) and cost_new < cost:
                        break
                damping *= 10.0
                if damping > 1e12:
                    return h.reshape(3, 3)
            converged = (cost - cost_new <= 1e-8 * cost
                         or math.sqrt(step @ step) <= 1e-12 * (np.linalg.norm(h[free]) + 1e-12))
            h, e, proj, inv_w, cost = trial, e_new, proj_new, inv_w_new, cost_new
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
       ``d(x′, H x) < threshold``. Local optimisation refits with the normalised DLT, as the
       least eigenvector of the 9×9 ``AᵀA`` of the inliers, a sum of per-point terms
       (:func:`_gram`) computed once.
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
        # (The SVD, not the closed-form eigenvalue of xᵀx: that squares the conditioning and
        # leaves ~1e-8 of rounding where exactly collinear points need ~1e-15.)
        if np.linalg.svd(x, compute_uv=False)[1] <= 1e-9 * math.sqrt(len(x)):
            raise GeometryError(f"{op}: expected {name} points not all on one line, got "
                                f"{len(x)} collinear points")
    t_n = t * Tb[0, 0]  # the threshold in normalised dst units (T′ scales distances by s′)
    n = len(a)
    ab = np.vstack([a.T, b.T])  # (4, N): x, y, x′, y′
    ah = np.ones((3, n))  # homogeneous src points as columns
    ah[:2] = ab[:2]
    # Scoring runs in float32: residuals of normalised points need ~1e-7 relative precision only.
    a32 = ah.astype(np.float32)
    bx32, by32 = ab[2].astype(np.float32), ab[3].astype(np.float32)

    def fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _four_point(ab[:, samples.T])

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

    # LO refits: the moments of _gram for any subset of points are a sum of per-point terms.
    moment_weights, outer = _moment_terms(ah, ab[2], ab[3])
    per_point = (moment_weights[:, None] * outer[None]).reshape(36, n)

    def refine_dlt(idx: np.ndarray) -> np.ndarray | None:
        selected = np.zeros(n)
        selected[idx] = 1.0
        # The normal equations square the conditioning; that is harmless here because LM on
        # the final inliers follows (for inliers clustered in a small part of the image this
        # refit drifts from the SVD's by up to ~1e-7).
        return _dlt_normal((per_point @ selected).reshape(4, 3, 3))

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


# The four triangles of a 4-point sample, as (first, second, third) vertices: d₀ = det[p₁ p₂ p₃],
# d₁ = det[p₄ p₂ p₃], d₂ = det[p₁ p₄ p₃], d₃ = det[p₁ p₂ p₄].
_TRIANGLES = np.array([[0, 3, 0, 0], [1, 1, 3, 1], [2, 2, 2, 3]])


def _four_point(pq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Homographies ``q ~ H p`` from B samples of 4 correspondences ``(4, 4, B)``: coordinate
    ``(x, y, x′, y′)``, point, sample.

    Returns ``(H (K, 3, 3), kept (K,))``: the homographies of the K samples kept, scaled by an
    arbitrary factor, and the indices of those samples, ascending. A sample is dropped when three
    of its points are collinear in either set or its triangle orientations are inconsistent
    (see :func:`find_homography`). The sample axis is last throughout, so that every NumPy call
    runs over B contiguous values (and reductions over points are element-wise).
    """
    # With w = 1, det[a b c] is the 2-D cross product (b − a) × (c − a), twice the signed area.
    corners = pq[:, _TRIANGLES]  # (4, 3, 4, B): coordinate, vertex, triangle, sample
    edges = corners[:, 1:] - corners[:, :1]  # (4, 2, 4, B): b − a and c − a
    x, y = edges[0::2], edges[1::2]  # (2, 2, 4, B): image, edge, triangle, sample
    det = x[:, 0] * y[:, 1] - y[:, 0] * x[:, 1]  # (2, 4, B): the dᵢ in src, the eᵢ in dst
    orientation = det[0] * det[1]
    ok = np.abs(det).reshape(8, -1).min(axis=0) > _COLLINEAR_AREA
    ok &= (orientation.min(axis=0) > 0) | (orientation.max(axis=0) < 0)
    kept = np.flatnonzero(ok)
    pq, d, e = pq[..., kept], det[0][:, kept], det[1][:, kept]
    # c = (e₁d₂d₃, e₂d₁d₃, e₃d₁d₂) = eᵢ (d₁d₂d₃) / dᵢ, scaled to a largest entry of 1 so that
    # H stays well inside float32's range.
    c = e[1:] * ((d[1] * d[2] * d[3]) / d[1:])  # (3, K)
    c /= np.abs(c).max(axis=0)
    # rows of adj[p₁ p₂ p₃]: p₂ × p₃, p₃ × p₁, p₁ × p₂; for w = 1,
    # pⱼ × pₖ = (yⱼ − yₖ, xₖ − xⱼ, xⱼ yₖ − xₖ yⱼ)
    pj, pk = pq[:2, [1, 2, 0]], pq[:2, [2, 0, 1]]  # (2, 3, K)
    scaled_adj = np.empty((3, 3, len(kept)))  # diag(c) · adj: row, column, sample
    scaled_adj[:, 0] = pj[1] - pk[1]
    scaled_adj[:, 1] = pk[0] - pj[0]
    scaled_adj[:, 2] = pj[0] * pk[1] - pk[0] * pj[1]
    scaled_adj *= c[:, None]
    # H = [q₁ q₂ q₃] · diag(c) · adj, the qᵢ homogeneous: row 3 of H sums the rows of diag(c) adj
    H = np.empty((len(kept), 3, 3))
    Ht = H.transpose(1, 2, 0)
    Ht[:2] = (pq[2:, :3, None] * scaled_adj).sum(axis=1)
    Ht[2] = scaled_adj.sum(axis=0)
    return H, kept
