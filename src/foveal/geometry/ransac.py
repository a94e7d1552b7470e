"""RANSAC: robust model fitting by hypothesise-and-verify, with MSAC scoring and local optimisation.

Given ``n`` data points of which an unknown fraction are outliers, RANSAC (Fischler & Bolles
1981; HZ §4.7) repeats:

1. draw a minimal sample of ``s`` distinct points uniformly, without replacement;
2. fit the candidate model(s) to it (a 7-point fundamental matrix gives up to 3);
3. score each candidate on all points and keep the best.

**Scoring (MSAC, Torr & Zisserman 2000).** Instead of counting inliers, each model gets the
truncated quadratic cost ``C = Σᵢ min(rᵢ², t²)`` (lower is better): inliers are ranked by how
well they fit, outliers pay a constant ``t²``. A point is an inlier when ``rᵢ < t``.

**Adaptive stopping (HZ §4.7.1, eq. 4.18).** If a fraction ``w`` of the points are inliers, a
sample is all-inlier with probability ``wˢ``; to draw at least one such sample with probability
``p`` one needs ``N = log(1 − p) / log(1 − wˢ)`` samples. ``w`` is the inlier ratio of the best
model so far, so ``N`` shrinks as better models turn up. ``w = 0`` gives ``N = ∞`` (run to
``max_iterations``), ``w = 1`` gives ``N = 1``.

**Local optimisation (LO-RANSAC, Chum, Matas & Kittler 2003; Lebeda, Matas & Chum 2012).** A
minimal sample is noisy, so a model fitted to it underestimates the inliers, and plain RANSAC
runs longer than ``N`` predicts. Whenever a new best model turns up, it is refitted by least
squares (``refine``) on its inliers, iteratively with a threshold shrinking from ``3t`` to ``t``
for as long as each refit lowers the cost. At the end the best model is refitted on all
its inliers once more.

An iteration is a sample that gave at least one model: samples that are degenerate, or whose
solver finds no model, are drawn again without counting (as OpenCV does).

Two front doors share one loop: :func:`ransac` takes per-sample callbacks (any model), and
:func:`ransac_batched` takes callbacks that fit and score a whole block of samples at once, for
models whose minimal solver vectorises (homographies, see :mod:`foveal.geometry.homography`).
Samples are drawn, fitted and scored in blocks: the first of 32 samples (or ``first_block``),
then blocks aiming at twice as many productive samples each, up to 256 (straight to 256 when
``p = 1``, where the limit falls only once every point is an inlier), with enough extra draws
that degenerate samples rarely force a further block. Only the samples that can still count are
scored, and new bests are taken in sample order with ``N`` updated at each, so the result and
the iteration count are those of a one-sample-at-a-time loop; a block may fit a few samples
past the stop (and score some when a new best lowers ``N`` within it), which do not count. Both
front doors give the same result for the same seed.

Reference: HZ §4.7; M. Fischler and R. Bolles, *Random sample consensus*, CACM 1981; P. Torr and
A. Zisserman, *MLESAC*, CVIU 2000; O. Chum, J. Matas and J. Kittler, *Locally optimized RANSAC*,
DAGM 2003.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry import validate

M = TypeVar("M")

# LO: iterative least squares with the inlier threshold shrinking from 3t to t (Lebeda et al.
# 2012 use the same multiplier); a wide first pass lets the refit pull in inliers that the noisy
# minimal model just missed.
_LO_MULTIPLIERS = (3.0, 2.0, 1.5, 1.0)
# Samples per block: start small so that easy problems (N of a few dozen) waste little, grow
# so that hard ones amortise the per-block overhead, but keep a block's (K, n) residuals to a
# few MB (after the first block, the sizes count productive samples: those scored).
_FIRST_BLOCK, _MAX_BLOCK, _MAX_BLOCK_RESIDUALS = 32, 256, 1 << 20
# Give up after this many draws per allowed iteration when samples keep giving no model.
_MAX_DRAWS_PER_ITERATION = 10


@dataclass(frozen=True)
class RansacResult(Generic[M]):
    """What :func:`ransac` found.

    Attributes:
        model: the final model, refitted on all its inliers when ``refine`` was given;
            ``None`` if no sample produced a model.
        inliers: ``(n,)`` bool, ``residual < threshold`` under ``model`` (all False if None).
        iterations: hypotheses tried: minimal samples that gave at least one model.
        score: MSAC cost of ``model``, ``Σᵢ min(rᵢ², t²)`` (lower is better; ``inf`` if None).
    """

    model: M | None
    inliers: np.ndarray
    iterations: int
    score: float


def ransac_iterations(inlier_ratio: float, sample_size: int, confidence: float = 0.99) -> float:
    """Samples needed to draw one all-inlier minimal sample with probability ``confidence``.

    ``N = ⌈log(1 − p) / log(1 − wˢ)⌉`` (HZ eq. 4.18; HZ Table 4.3 lists it for p = 0.99).
    Returned as a float because the answer can be ``inf``: when ``w = 0``, or when ``p = 1``
    and ``w < 1``. ``w = 1`` needs a single sample; ``p = 0`` needs none.

    Both logarithms are computed as ``log1p(−x)``: for a small ``wˢ`` (say ``w = 0.01``,
    ``s = 8``: ``wˢ = 10⁻¹⁶``) ``1 − wˢ`` rounds to 1 and the naive formula divides by zero.

    Args:
        inlier_ratio: ``w`` in ``[0, 1]``.
        sample_size: ``s ≥ 1``, the minimal sample size.
        confidence: ``p`` in ``[0, 1]``.
    """
    w, s, p = float(inlier_ratio), int(sample_size), float(confidence)
    if not 0.0 <= w <= 1.0:
        raise GeometryError(f"ransac_iterations: expected inlier_ratio in [0, 1], got {w}")
    if s < 1:
        raise GeometryError(f"ransac_iterations: expected sample_size ≥ 1, got {s}")
    if not 0.0 <= p <= 1.0:
        raise GeometryError(f"ransac_iterations: expected confidence in [0, 1], got {p}")
    if p == 0.0:
        return 0.0
    good = w**s  # probability that one sample is all inliers
    if good >= 1.0:
        return 1.0
    if good <= 0.0 or p >= 1.0:
        return math.inf
    return float(math.ceil(math.log1p(-p) / math.log1p(-good)))


def draw_samples(n: int, sample_size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, s)`` minimal samples, each ``s = sample_size`` distinct indices in ``[0, n)``.

    Each row is uniform over the ``s``-subsets (in random order): its ``j``-th entry is a uniform
    draw ``r`` from the ``n − j`` indices not yet taken, found by stepping ``r`` past the taken
    ones in ascending order. All ``s · count`` draws come from one ``Generator.integers`` call
    (column ``j`` bounded by ``n − j``: the same stream as one call per column, at a fraction of
    the per-call cost). Vectorised over rows, so a block costs ``O(s²)`` array operations: the
    taken indices are kept sorted column by column, each new one inserted with
    ``minimum``/``maximum`` (cheaper than sorting many rows of a few entries).
    """
    draws = rng.integers(0, np.arange(n, n - sample_size, -1)[:, None], size=(sample_size, count))
    idx = np.empty((count, sample_size), dtype=np.intp)
    taken: list[np.ndarray] = []  # taken[i]: the (i+1)-th smallest index of each row so far
    for j, r in enumerate(draws):
        for smaller in taken:
            r += r >= smaller
        idx[:, j] = r
        if j == sample_size - 1:
            break  # no column left to step past this one
        for i, column in enumerate(taken):  # insert r, keeping the columns sorted
            taken[i], r = np.minimum(column, r), np.maximum(column, r)
        taken.append(r)
    return idx


def ransac(
    n: int,
    sample_size: int,
    fit: Callable[[np.ndarray], Sequence[M]],
    residuals: Callable[[M], np.ndarray],
    threshold: float,
    *,
    refine: Callable[[np.ndarray], M | None] | None = None,
    confidence: float = 0.999,
    max_iterations: int = 10_000,
    min_iterations: int = 0,
    degenerate: Callable[[np.ndarray], bool] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> RansacResult[M]:
    """Fit a model robustly: RANSAC with MSAC scoring, adaptive stopping and LO (see the module).

    The engine only sees indices: the callbacks close over the data. An iteration is one
    minimal sample that gave at least one model; samples that ``degenerate`` rejects or that
    ``fit`` turns into no model are drawn again without counting (up to
    ``10 · max_iterations`` draws in all, so that hopeless data still ends).

    Args:
        n: number of data points (e.g. correspondences).
        sample_size: ``s``, the minimal sample size (4 for a homography, 7 or 8 for F).
        fit: sample indices ``(s,)`` → candidate models (a sequence of 0, 1 or several).
        residuals: model → ``(n,)`` residuals in the units of ``threshold`` (e.g. pixels);
            NaN counts as an outlier.
        threshold: ``t``; point ``i`` is an inlier when ``rᵢ < t``.
        refine: inlier indices ``(k,)`` → a least-squares model (or None when it cannot fit);
            used for local optimisation and the final refit. Without it, the best minimal-sample
            model is returned as is.
        confidence: ``p``, the probability of having drawn one all-inlier sample at the stop;
            ``p = 1`` runs all ``max_iterations``.
        max_iterations: cap on the hypotheses tried.
        min_iterations: hypotheses tried at least, whatever the adaptive ``N`` says.
        degenerate: sample indices → True to skip this sample.
        seed: an int, a ``np.random.Generator`` or None; the same seed gives the same result.

    Raises:
        GeometryError: ``n < sample_size`` or an out-of-range setting.
    """
    def fit_block(samples: np.ndarray) -> tuple[list[M], np.ndarray]:
        models: list[M] = []
        owners: list[int] = []
        for b, sample in enumerate(samples):
            if degenerate is not None and degenerate(sample):
                continue
            for model in fit(sample):
                models.append(model)
                owners.append(b)
        return models, np.asarray(owners, dtype=np.intp)

    def squared(model: M) -> np.ndarray:
        r = np.asarray(residuals(model), dtype=np.float64)
        if r.shape != (n,):
            raise GeometryError(f"ransac: expected the residuals callback to return shape "
                                f"({n},), got {r.shape}")
        return r * r

    return _run("ransac", n, sample_size, fit_block,
                lambda models: np.stack([squared(m) for m in models]), squared, threshold,
                refine=refine, confidence=confidence, max_iterations=max_iterations,
                min_iterations=min_iterations, seed=seed)


def ransac_batched(
    n: int,
    sample_size: int,
    fit: Callable[[np.ndarray], tuple[Sequence[M], np.ndarray]],
    squared_residuals: Callable[[Sequence[M]], np.ndarray],
    threshold: float,
    *,
    refine: Callable[[np.ndarray], M | None] | None = None,
    confidence: float = 0.999,
    max_iterations: int = 10_000,
    min_iterations: int = 0,
    seed: int | np.random.Generator | None = 0,
    first_block: int = _FIRST_BLOCK,
) -> RansacResult[M]:
    """:func:`ransac` for models whose minimal solver and residuals vectorise over samples.

    Same loop, same random samples and same result as :func:`ransac` given the per-sample
    equivalents of the callbacks (the degeneracy test moves into ``fit``):

    Args:
        fit: samples ``(B, s)`` → ``(models, owners)``: ``K`` candidate models (a sequence, e.g.
            a ``(K, 3, 3)`` array) and ``owners`` ``(K,)`` ascending, the row of the sample each
            came from. Degenerate samples are simply left without a model.
        squared_residuals: ``K`` models → ``(K, n)`` squared residuals ``rᵢ²`` in any float
            dtype (float32 halves the memory traffic of scoring). Squared, because MSAC needs
            only ``r²``: no square root per point and hypothesis.
        first_block: samples drawn in the first block. Raise it for a solver whose fixed cost
            per block is high (batched EPnP: that of ~15 samples), so that a run rarely needs a
            second block for a handful of samples.

    Everything else is as in :func:`ransac`.
    """
    def squared_one(model: M) -> np.ndarray:
        batch = model[None] if isinstance(model, np.ndarray) else [model]
        return np.asarray(squared_residuals(batch)[0], dtype=np.float64)

    return _run("ransac_batched", n, sample_size, fit, squared_residuals, squared_one, threshold,
                refine=refine, confidence=confidence, max_iterations=max_iterations,
                min_iterations=min_iterations, seed=seed, first_block=first_block)


def _msac(r2: np.ndarray, t2: float) -> np.ndarray:
    """``Σᵢ min(rᵢ², t²)`` over the last axis; ``fmin`` makes a NaN residual cost ``t²``."""
    return np.fmin(r2, t2).sum(axis=-1, dtype=np.float64)


def _run(
    op: str,
    n: int,
    s: int,
    fit_block: Callable[[np.ndarray], tuple[Sequence[M], np.ndarray]],
    squared_block: Callable[[Sequence[M]], np.ndarray],
    squared_one: Callable[[M], np.ndarray],
    threshold: float,
    *,
    refine: Callable[[np.ndarray], M | None] | None,
    confidence: float,
    max_iterations: int,
    min_iterations: int,
    seed: int | np.random.Generator | None,
    first_block: int = _FIRST_BLOCK,
) -> RansacResult[M]:
    n, s = int(n), int(s)
    if s < 1:
        raise GeometryError(f"{op}: expected sample_size ≥ 1, got {s}")
    if n < s:
        raise GeometryError(f"{op}: expected at least sample_size = {s} data points, got {n}")
    t = validate.positive(threshold, op, "threshold")
    t2 = t * t
    if not 0.0 < float(confidence) <= 1.0:
        raise GeometryError(f"{op}: expected confidence in (0, 1], got {confidence}")
    if int(max_iterations) < 1 or not 0 <= int(min_iterations) <= int(max_iterations):
        raise GeometryError(f"{op}: expected max_iterations ≥ 1 and 0 ≤ min_iterations ≤ "
                            f"max_iterations, got {max_iterations} and {min_iterations}")
    max_iterations, min_iterations = int(max_iterations), int(min_iterations)
    rng = np.random.default_rng(seed)

    best_model: M | None = None
    best_cost = math.inf
    best_r2 = np.full(n, np.inf)
    fitted_on: np.ndarray | None = None  # the inlier mask best_model was refitted on, if any
    limit = max_iterations  # max(adaptive N, min_iterations), capped
    tried = drawn = productive_so_far = 0
    max_block = max(1, min(_MAX_BLOCK, _MAX_BLOCK_RESIDUALS // n))
    if int(first_block) < 1:
        raise GeometryError(f"{op}: expected first_block ≥ 1, got {first_block}")
    first_block = min(int(first_block), max_block)
    block = first_block
    while tried < limit and drawn < _MAX_DRAWS_PER_ITERATION * max_iterations:
        # A block aims at `wanted` productive samples (those that give a model), given the share
        # of the draws so far that did: the draws this needs are negative binomial, with mean
        # wanted / rate and standard deviation √(wanted (1 − rate)) / rate. Two of those on top
        # make a further block for a handful of samples rare; the extra samples are fitted but
        # not scored.
        need = limit - tried
        wanted = min(block, need)
        # With p = 1 the limit stays at max_iterations unless every point is an inlier: no need
        # to grow slowly.
        block = min(2 * block, max_block) if confidence < 1.0 else max_block
        rate = max(productive_so_far / drawn, 0.05) if drawn else 1.0
        count = math.ceil((wanted + 2.0 * math.sqrt(wanted * (1.0 - rate))) / rate)
        samples = draw_samples(n, s, count, rng)
        drawn += count
        models, owners = fit_block(samples)
        owners = np.asarray(owners)
        # rows of the samples that gave a model (owners ascending: the first of each run)
        productive = owners[np.flatnonzero(np.diff(owners, prepend=-1))]
        productive_so_far += len(productive)
        if len(productive) == 0:
            continue
        take = min(len(productive), need)  # of those, how many count
        # Score only the models of the samples that can count (the first `take`; should a new
        # best raise the limit within the block, the next block draws the samples it adds).
        scored = int(np.searchsorted(owners, productive[take - 1], side="right"))
        r2 = squared_block(models if scored == len(owners) else models[:scored])
        costs = _msac(r2, t2)
        # New bests in sample order, exactly as a one-sample-at-a-time loop would meet them. Only
        # models cheaper than the best so far and than all before them in the block can be one
        # (local optimisation only lowers the bar further), so the loop visits just those.
        bar = np.minimum.accumulate(np.concatenate(([best_cost], costs[:-1])))
        for k in np.flatnonzero(costs < bar):
            rank = int(np.searchsorted(productive, owners[k]))
            if rank >= take:
                break
            if costs[k] >= best_cost:
                continue
            best_model = models[k]
            best_r2 = np.array(r2[k], dtype=np.float64)  # whatever the block's dtype
            best_cost = float(_msac(best_r2, t2))
            if refine is not None:
                best_model, best_r2, best_cost, fitted_on = _local_optimisation(
                    best_model, best_r2, best_cost, refine, squared_one, s, t2)
            w = np.count_nonzero(best_r2 < t2) / n
            needed = min(ransac_iterations(w, s, confidence), max_iterations)
            limit = max(int(needed), min_iterations)
            take = max(min(take, limit - tried), rank + 1)
        tried += take

    if best_model is None:
        return RansacResult(None, np.zeros(n, dtype=bool), tried, math.inf)
    final = best_r2 < t2
    if refine is not None and (fitted_on is None or not np.array_equal(final, fitted_on)):
        refit = _refit(refine, final, s, squared_one, t2)
        if refit is not None and refit[2] <= best_cost:
            best_model, best_r2, best_cost = refit
    return RansacResult(best_model, best_r2 < t2, tried, best_cost)


def _refit(refine: Callable[[np.ndarray], M | None], mask: np.ndarray, s: int,
           squared_one: Callable[[M], np.ndarray], t2: float
           ) -> tuple[M, np.ndarray, float] | None:
    idx = np.flatnonzero(mask)
    if len(idx) < s:
        return None
    model = refine(idx)
    if model is None:
        return None
    r2 = squared_one(model)
    return model, r2, float(_msac(r2, t2))


def _local_optimisation(model: M, r2: np.ndarray, cost: float,
                        refine: Callable[[np.ndarray], M | None],
                        squared_one: Callable[[M], np.ndarray], s: int, t2: float
                        ) -> tuple[M, np.ndarray, float, np.ndarray | None]:
    """Iterative least squares on the inliers at thresholds 3t, 2t, 1.5t, t, while the MSAC cost
    falls; returns the cheapest model, its squared residuals and cost, and the inlier mask it was
    refitted on (None if no refit helped). Stopping at the first step that does not help skips
    most of the work on the poor models that early samples give; a step whose mask is the one
    the current model was fitted on is not run (``refine`` is deterministic: it would return the
    same model, at the same cost)."""
    best, fitted_on = (model, r2, cost), None
    for multiplier in _LO_MULTIPLIERS:
        mask = best[1] < multiplier**2 * t2
        if fitted_on is not None and np.array_equal(mask, fitted_on):
            break  # the refit would give the current model again, at the same cost
        refit = _refit(refine, mask, s, squared_one, t2)
        if refit is None or refit[2] >= best[2]:
            break
        best, fitted_on = refit, mask
    return *best, fitted_on


def fit_line_ransac(points: ArrayLike, threshold: float, *, confidence: float = 0.999,
                    max_iterations: int = 1000, seed: int | np.random.Generator | None = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Robust 2D line ``a x + b y + c = 0`` (``a² + b² = 1``) through ``(N, 2)`` points.

    Minimal sample: 2 points, line ``l = p × q`` (HZ §2.2.1). Residual: the perpendicular
    distance ``|a x + b y + c|``. Refit: total least squares, the line through the centroid
    ``x̄`` along the principal direction of the inliers (its normal ``(a, b)`` is the right
    singular vector of ``X − x̄`` with the smallest singular value), which unlike a regression
    ``y = m x + q`` also handles vertical lines.

    Returns:
        ``(line, inliers)``: the line ``(3,)`` with ``a² + b² = 1`` and ``(N,)`` bool inliers.

    Raises:
        GeometryError: fewer than 2 points, or no two distinct points.
    """
    op = "fit_line_ransac"
    x = validate.points(points, 2, op, minimum=2)
    t = validate.positive(threshold, op, "threshold")
    if np.all(x == x[0]):
        raise GeometryError(f"{op}: expected at least two distinct points, got {len(x)} "
                            f"copies of {x[0].tolist()}")

    def fit(sample: np.ndarray) -> list[np.ndarray]:
        p, q = x[sample]
        normal = np.array([p[1] - q[1], q[0] - p[0]])  # (p × q)'s first two terms
        length = np.hypot(*normal)
        if length == 0.0:
            return []
        normal /= length
        return [np.array([normal[0], normal[1], -normal @ p])]

    def residuals(line: np.ndarray) -> np.ndarray:
        return np.abs(x @ line[:2] + line[2])

    def refine(idx: np.ndarray) -> np.ndarray:
        centroid = x[idx].mean(axis=0)
        normal = np.linalg.svd(x[idx] - centroid)[2][-1]
        return np.array([normal[0], normal[1], -normal @ centroid])

    result = ransac(len(x), 2, fit, residuals, t, refine=refine, confidence=confidence,
                    max_iterations=max_iterations, seed=seed)
    if result.model is None:  # only when nearly every pair coincides
        raise GeometryError(f"{op}: expected at least two distinct points, got no distinct "
                            f"pair in {result.iterations} samples")
    return result.model, result.inliers
