"""L-BFGS for full-batch problems: two-loop recursion plus a strong Wolfe line search.

``fun(x) -> (f, grad)`` is evaluated on a 1-D float64 vector. Each iteration::

    d_k     = -H_k g_k                  (two-loop recursion over the last m pairs (s_i, y_i))
    α_k     = strong Wolfe step along d_k
    x_{k+1} = x_k + α_k d_k
    s_k = x_{k+1} - x_k,   y_k = g_{k+1} - g_k      (stored only if s_kᵀ y_k > 0)

Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.4 and 7.5 (L-BFGS),
Alg. 3.5 and 3.6 (line search, zoom), eq. 3.59 (cubic interpolation), eq. 7.20 (H_k^0).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class LBFGSResult:
    """Outcome of :func:`lbfgs`.

    Attributes:
        x: the final iterate.
        f: objective value at ``x``.
        grad_norm: Euclidean norm of the gradient at ``x``.
        iterations: number of accepted steps.
        converged: whether ``grad_norm <= tol`` was reached.
    """

    x: np.ndarray
    f: float
    grad_norm: float
    iterations: int
    converged: bool


def lbfgs_direction(
    grad: np.ndarray, s_history: Sequence[np.ndarray], y_history: Sequence[np.ndarray]
) -> np.ndarray:
    r"""The L-BFGS search direction d = -H g by the two-loop recursion.

    Args:
        grad: ``(n,)`` current gradient g.
        s_history: steps s_i = x_{i+1} - x_i, oldest first, each with s_iᵀ y_i > 0.
        y_history: gradient changes y_i = g_{i+1} - g_i, same length and order.

    Returns:
        ``(n,)`` direction -H g, where H is the BFGS inverse-Hessian approximation obtained by
        applying the updates H <- (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ, ρ = 1 / (yᵀ s), for the
        stored pairs in order, starting from H^0 = γ I with γ = s_{k-1}ᵀ y_{k-1} / y_{k-1}ᵀ y_{k-1}
        (steepest descent, γ = 1, when the history is empty)::

            q = g
            for i = k-1, ..., k-m:   α_i = ρ_i s_iᵀ q;   q <- q - α_i y_i
            r = γ q
            for i = k-m, ..., k-1:   β = ρ_i y_iᵀ r;     r <- r + (α_i - β) s_i
            return -r

    Costs O(m n) instead of the O(n²) of the dense matrix (Nocedal & Wright, Alg. 7.4).
    """
    q = np.array(grad, dtype=np.float64)
    rhos = [1.0 / float(y @ s) for s, y in zip(s_history, y_history, strict=True)]
    alphas = []
    for s, y, rho in zip(reversed(s_history), reversed(y_history), reversed(rhos), strict=True):
        alpha = rho * float(s @ q)
        q -= alpha * y
        alphas.append(alpha)
    if s_history:
        s, y = s_history[-1], y_history[-1]
        q *= float(s @ y) / float(y @ y)
    for s, y, rho, alpha in zip(s_history, y_history, rhos, reversed(alphas), strict=True):
        beta = rho * float(y @ q)
        q += (alpha - beta) * s
    return -q


def _cubic_minimiser(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float:
    """Minimiser of the cubic interpolating φ and φ' at a and b (Nocedal & Wright, eq. 3.59).

    Falls back to bisection when the cubic has no minimiser safely inside the interval.
    """
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    lo, hi = min(a, b), max(a, b)
    if disc >= 0.0:
        d2 = math.copysign(math.sqrt(disc), b - a)
        denom = db - da + 2.0 * d2
        if denom != 0.0:
            c = b - (b - a) * (db + d2 - d1) / denom
            margin = 0.1 * (hi - lo)  # keep away from the ends so the bracket shrinks
            if lo + margin <= c <= hi - margin:
                return c
    return 0.5 * (a + b)


def strong_wolfe_line_search(
    fun: Objective,
    x: np.ndarray,
    f: float,
    g: np.ndarray,
    d: np.ndarray,
    alpha0: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = 25,
    f_noise: float = 1e-10,
) -> tuple[float, float, np.ndarray] | None:
    r"""A step α along the descent direction d that satisfies the strong Wolfe conditions.

    With φ(α) = f(x + α d)::

        φ(α) <= φ(0) + c1 α φ'(0)          (sufficient decrease, Armijo)
        |φ'(α)| <= c2 |φ'(0)|              (strong curvature)

    Bracketing phase (Nocedal & Wright, Alg. 3.5): double α until the bracket contains a
    point satisfying both; then ``zoom`` (Alg. 3.6) shrinks the bracket with safeguarded cubic
    interpolation. With 0 < c1 < c2 < 1 the accepted step gives sᵀy > 0, keeping H positive
    definite.

    Near a minimum the decrease c1 α φ'(0) falls below the rounding error of f itself and
    Armijo can no longer be checked on f. When φ(α) is within ``f_noise |φ(0)|`` of φ(0), the
    *approximate* Armijo condition φ'(α) <= (2 c1 - 1) φ'(0) is accepted instead: it is Armijo
    applied to the quadratic that interpolates φ'(0) and φ'(α), and uses derivatives only
    (Hager & Zhang, "A new conjugate gradient method with guaranteed descent and an efficient
    line search", SIAM J. Optim. 16 (2005), Sec. 4).

    Returns:
        ``(alpha, f(x + alpha d), grad(x + alpha d))``, or ``None`` when ``max_evals``
        evaluations found no acceptable step (or d is not a descent direction).
    """
    dphi0 = float(g @ d)
    if not dphi0 < 0.0:
        return None
    noise = f_noise * abs(f)
    evals = 0

    def phi(alpha: float) -> tuple[float, float, float, np.ndarray]:
        nonlocal evals
        evals += 1
        fa, ga = fun(x + alpha * d)
        return alpha, float(fa), float(ga @ d), ga

    def sufficient_decrease(alpha: float, fa: float, da: float) -> bool:
        armijo = fa <= f + c1 * alpha * dphi0
        approximate_armijo = fa <= f + noise and da <= (2.0 * c1 - 1.0) * dphi0
        return armijo or approximate_armijo

    def curvature(da: float) -> bool:
        return abs(da) <= -c2 * dphi0

    # Points are (α, φ(α), φ'(α), grad). zoom's invariant: lo has sufficient decrease and the
    # lowest φ so far, and φ'(lo) (hi - lo) < 0, so [lo, hi] holds an acceptable step.
    def zoom(lo, hi):
        while evals < max_evals:
            alpha, fa, da, ga = new = phi(_cubic_minimiser(*lo[:3], *hi[:3]))
            if not sufficient_decrease(alpha, fa, da) or fa >= lo[1] + noise:
                hi = new
            else:
                if curvature(da):
                    return alpha, fa, ga
                if da * (hi[0] - lo[0]) >= 0.0:
                    hi = lo
                lo = new
        return None

    prev = (0.0, f, dphi0, g)
    alpha = alpha0
    while evals < max_evals:
        alpha, fa, da, ga = new = phi(alpha)
        if not math.isfinite(fa):  # overshot into inf/nan: shrink instead of interpolating
            alpha = 0.5 * (prev[0] + alpha)
            continue
        if not sufficient_decrease(alpha, fa, da) or (prev[0] > 0.0 and fa >= prev[1] + noise):
            return zoom(prev, new)
        if curvature(da):
            return alpha, fa, ga
        if da >= 0.0:
            return zoom(new, prev)
        prev = new
        alpha *= 2.0
    return None


def lbfgs(
    fun: Objective,
    x0: np.ndarray,
    *,
    history: int = 10,
    max_iter: int = 500,
    tol: float = 1e-8,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_linesearch: int = 25,
) -> LBFGSResult:
    r"""Minimise a smooth function with limited-memory BFGS.

    Args:
        fun: ``fun(x) -> (f, grad)`` for a ``(n,)`` float64 ``x``; ``grad`` has shape ``(n,)``.
        x0: ``(n,)`` starting point (copied, converted to float64).
        history: number m of (s, y) pairs kept.
        max_iter: maximum number of accepted steps.
        tol: stop when ‖grad‖₂ <= tol (``converged=True``).
        c1, c2: strong Wolfe constants, 0 < c1 < c2 < 1.
        max_linesearch: function evaluations allowed per line search.

    Returns:
        :class:`LBFGSResult`. ``converged`` is False when ``max_iter`` was reached or when no
        step satisfying the Wolfe conditions exists along steepest descent (typically the
        gradient is below what float64 can resolve).

    Each iteration takes d = -H g from :func:`lbfgs_direction`, a strong Wolfe step
    (:func:`strong_wolfe_line_search`, first tried at α = 1, or at min(1, 1 / ‖g‖) while the
    history is empty and H = I carries no scale), and stores (s, y) only when sᵀy > 0 so H stays
    positive definite. If a line search fails the memory is dropped and steepest descent is
    retried once before giving up.

    Reference: Liu & Nocedal, "On the limited memory BFGS method for large scale
    optimization", Math. Programming 45 (1989); Nocedal & Wright, Alg. 7.5.
    """
    x = np.array(x0, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"lbfgs: x0 must be a 1-D array, got shape {x.shape}")
    if history < 1:
        raise ValueError(f"lbfgs: history must be >= 1, got {history!r}")
    if not 0.0 < c1 < c2 < 1.0:
        raise ValueError(f"lbfgs: need 0 < c1 < c2 < 1, got c1={c1!r}, c2={c2!r}")
    f, g = fun(x)
    f, g = float(f), np.asarray(g, dtype=np.float64)
    if g.shape != x.shape:
        raise ValueError(f"lbfgs: fun returned a gradient of shape {g.shape}, x is {x.shape}")
    s_hist: deque[np.ndarray] = deque(maxlen=history)
    y_hist: deque[np.ndarray] = deque(maxlen=history)
    iterations = 0
    while iterations < max_iter and np.linalg.norm(g) > tol:
        d = lbfgs_direction(g, s_hist, y_hist)
        alpha0 = 1.0 if s_hist else min(1.0, 1.0 / float(np.linalg.norm(g)))
        found = strong_wolfe_line_search(fun, x, f, g, d, alpha0, c1, c2, max_linesearch)
        if found is None and s_hist:
            s_hist.clear()
            y_hist.clear()
            continue
        if found is None:
            break
        alpha, f, g_new = found
        g_new = np.asarray(g_new, dtype=np.float64)
        s, y = alpha * d, g_new - g
        x = x + s
        g = g_new
        if float(s @ y) > 0.0:
            s_hist.append(s)
            y_hist.append(y)
        iterations += 1
    grad_norm = float(np.linalg.norm(g))
    return LBFGSResult(x, f, grad_norm, iterations, converged=grad_norm <= tol)
