"""The RANSAC engine against closed forms (HZ eq. 4.18 and Table 4.3, the MSAC sum, a known
line), scikit-learn's RANSACRegressor and a chi-square uniformity test from scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from foveal.errors import GeometryError
from foveal.geometry.ransac import (
    RansacResult,
    draw_samples,
    fit_line_ransac,
    ransac,
    ransac_batched,
    ransac_iterations,
)

# HZ Table 4.3 (p = 0.99): rows s = 2..8, columns ε = 5%, 10%, 20%, 25%, 30%, 40%, 50% outliers.
HZ_TABLE_4_3 = {
    2: [2, 3, 5, 6, 7, 11, 17],
    3: [3, 4, 7, 9, 11, 19, 35],
    4: [3, 5, 9, 13, 17, 34, 72],
    5: [4, 6, 12, 17, 26, 57, 146],
    6: [4, 7, 16, 24, 37, 97, 293],
    7: [4, 8, 20, 33, 54, 163, 588],
    8: [5, 9, 26, 44, 78, 272, 1177],
}
OUTLIER_RATIOS = [0.05, 0.10, 0.20, 0.25, 0.30, 0.40, 0.50]


def noisy_line(n=200, outlier_ratio=0.5, seed=0, slope=0.5, intercept=3.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, n)
    pts = np.column_stack([x, slope * x + intercept + rng.normal(0, 0.3, n)])
    outlier = rng.random(n) < outlier_ratio
    pts[outlier] = rng.uniform(0, 100, (outlier.sum(), 2))
    return pts, outlier


def line_callbacks(pts):
    """Per-sample line fit / residual / TLS refit for the generic engine."""
    def fit(sample):
        p, q = pts[sample]
        normal = np.array([p[1] - q[1], q[0] - p[0]])
        length = np.hypot(*normal)
        return [] if length == 0 else [np.append(normal / length, -normal @ p / length)]

    def residuals(line):
        return np.abs(pts @ line[:2] + line[2])

    def refine(idx):
        c = pts[idx].mean(axis=0)
        normal = np.linalg.svd(pts[idx] - c)[2][-1]
        return np.append(normal, -normal @ c)

    return fit, residuals, refine


def test_ransac_iterations_match_hz_table_4_3():
    """Published numbers: HZ Table 4.3 (p = 0.99)."""
    for s, row in HZ_TABLE_4_3.items():
        got = [ransac_iterations(1 - eps, s, 0.99) for eps in OUTLIER_RATIOS]
        assert got == row, s


def test_ransac_iterations_closed_form_and_guards():
    """Closed form N = ⌈log(1 − p) / log(1 − wˢ)⌉ (HZ eq. 4.18); w = 0, w = 1, p = 0, p = 1."""
    for w, s, p in [(0.3, 4, 0.999), (0.7, 7, 0.95), (0.9, 2, 0.5)]:
        assert ransac_iterations(w, s, p) == math.ceil(math.log(1 - p) / math.log(1 - w**s))
    assert ransac_iterations(0.0, 4, 0.99) == math.inf
    assert ransac_iterations(0.5, 4, 1.0) == math.inf
    assert ransac_iterations(1.0, 4, 0.99) == 1
    assert ransac_iterations(0.5, 4, 0.0) == 0
    with pytest.raises(GeometryError, match="inlier_ratio in"):
        ransac_iterations(1.5, 4, 0.99)


def test_iterations_use_log1p_for_tiny_inlier_probabilities():
    """Pitfall: with wˢ = 10⁻¹⁸, 1 − wˢ rounds to 1 and log(1 − wˢ) = 0 divides by zero."""
    w, s, p = 0.01, 9, 0.99
    with pytest.raises(ZeroDivisionError):
        math.log(1 - p) / math.log(1 - w**s)  # the textbook formula, evaluated naively
    n = ransac_iterations(w, s, p)
    assert n == pytest.approx(-math.log(1 - p) / w**s, rel=1e-6)  # log(1 − x) ≈ −x


def test_draw_samples_are_distinct_and_uniform_chi_square():
    """No index twice in a sample; each index equally likely (scipy chi-square test)."""
    samples = draw_samples(10, 4, 20_000, np.random.default_rng(0))
    assert samples.shape == (20_000, 4)
    assert np.all(np.diff(np.sort(samples, axis=1), axis=1) > 0)
    assert stats.chisquare(np.bincount(samples.ravel(), minlength=10)).pvalue > 1e-3
    # and every 4-subset of 6 points (15 of them) equally likely
    subsets = np.sort(draw_samples(6, 4, 15_000, np.random.default_rng(1)), axis=1)
    _, counts = np.unique(subsets, axis=0, return_counts=True)
    assert len(counts) == 15 and stats.chisquare(counts).pvalue > 1e-3


def test_draw_samples_keep_the_stream_of_one_generator_call_per_column():
    """Oracle: the per-column draws ``rng.integers(0, n − j, count)`` that one broadcast call
    replaces (seeded results elsewhere depend on this stream), then stepped past the taken
    indices."""
    for n, s, count in ((6, 4, 50), (1000, 4, 32), (500, 5, 40), (200, 8, 7)):
        got = draw_samples(n, s, count, np.random.default_rng(5))
        rng = np.random.default_rng(5)
        draws = [rng.integers(0, n - j, size=count) for j in range(s)]
        for row, sample in enumerate(got):
            taken: list[int] = []
            for j in range(s):
                r = int(draws[j][row])
                for t in sorted(taken):  # step past the taken ones, in ascending order
                    r += r >= t
                assert sample[j] == r
                taken.append(r)


def test_fit_line_ransac_recovers_the_true_line_with_50_percent_outliers():
    """Closed form: the points were drawn on y = 0.5 x + 3 (σ = 0.3) plus 50% uniform outliers."""
    pts, outlier = noisy_line()
    line, inliers = fit_line_ransac(pts, 1.0)
    assert np.hypot(line[0], line[1]) == pytest.approx(1.0)
    slope, intercept = -line[0] / line[1], -line[2] / line[1]
    assert slope == pytest.approx(0.5, abs=5e-3) and intercept == pytest.approx(3.0, abs=0.2)
    assert np.mean(inliers == ~outlier) > 0.97


def test_fit_line_ransac_agrees_with_sklearn_ransac_regressor():
    """scikit-learn's RANSACRegressor (vertical residuals |y − f(x)|) finds the same line and
    inliers when its threshold is ours scaled by √(1 + m²) (vertical vs perpendicular)."""
    from sklearn.linear_model import RANSACRegressor

    pts, _ = noisy_line(seed=3)
    t = 1.0
    line, inliers = fit_line_ransac(pts, t)
    reg = RANSACRegressor(residual_threshold=t * math.sqrt(1 + 0.5**2), random_state=0,
                          max_trials=1000).fit(pts[:, :1], pts[:, 1])
    slope, intercept = -line[0] / line[1], -line[2] / line[1]
    assert slope == pytest.approx(reg.estimator_.coef_[0], abs=5e-3)
    assert intercept == pytest.approx(reg.estimator_.intercept_, abs=0.2)
    assert np.mean(inliers == reg.inlier_mask_) > 0.97


def test_fit_line_ransac_handles_vertical_lines():
    """Pitfall: a regression y = m x + q cannot represent x = 5; the TLS line can (closed form)."""
    rng = np.random.default_rng(4)
    pts = np.column_stack([5 + rng.normal(0, 0.1, 60), rng.uniform(0, 50, 60)])
    pts[:20] = rng.uniform(0, 50, (20, 2))
    line, inliers = fit_line_ransac(pts, 0.5)
    np.testing.assert_allclose(np.abs(line[:2]), [1, 0], atol=5e-3)
    assert abs(line @ [5.0, 25.0, 1.0]) < 0.05  # passes through (5, 25), mid-height
    assert inliers[20:].all()


def test_fit_line_ransac_refuses_coincident_points_and_bad_input():
    with pytest.raises(GeometryError, match="two distinct points"):
        fit_line_ransac(np.ones((5, 2)), 1.0)
    with pytest.raises(GeometryError, match="at least 2 points"):
        fit_line_ransac(np.ones((1, 2)), 1.0)
    with pytest.raises(GeometryError, match="finite points"):
        fit_line_ransac([[0, 0], [1, np.nan], [2, 2]], 1.0)
    with pytest.raises(GeometryError, match="threshold > 0"):
        fit_line_ransac(np.eye(2), 0.0)


def test_ransac_raises_when_fewer_points_than_the_sample_size():
    fit, residuals, _ = line_callbacks(np.zeros((1, 2)))
    with pytest.raises(GeometryError, match="at least sample_size = 2 data points, got 1"):
        ransac(1, 2, fit, residuals, 1.0)
    with pytest.raises(GeometryError, match="confidence in"):
        ransac(5, 2, fit, residuals, 1.0, confidence=1.5)
    with pytest.raises(GeometryError, match="min_iterations"):
        ransac(5, 2, fit, residuals, 1.0, max_iterations=10, min_iterations=20)


def test_same_seed_gives_the_same_result():
    pts, _ = noisy_line(outlier_ratio=0.6)
    fit, residuals, refine = line_callbacks(pts)
    runs = [ransac(len(pts), 2, fit, residuals, 1.0, refine=refine, seed=7) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].model, runs[1].model)
    assert runs[0].iterations == runs[1].iterations
    from_generator = ransac(len(pts), 2, fit, residuals, 1.0, refine=refine,
                            seed=np.random.default_rng(7))
    np.testing.assert_array_equal(from_generator.model, runs[0].model)


def test_score_is_the_msac_cost_of_the_returned_model():
    """Closed form: score = Σ min(rᵢ², t²), inliers = r < t, for the model returned."""
    pts, _ = noisy_line()
    fit, residuals, refine = line_callbacks(pts)
    result = ransac(len(pts), 2, fit, residuals, 1.0, refine=refine)
    assert isinstance(result, RansacResult)
    r = residuals(result.model)
    assert result.score == pytest.approx(np.minimum(r**2, 1.0).sum())
    np.testing.assert_array_equal(result.inliers, r < 1.0)


def test_adaptive_stopping_and_iteration_bounds():
    """Outlier-free data: w = 1 so N = 1 (closed form); min_iterations and p = 1 override it."""
    pts, _ = noisy_line(outlier_ratio=0.0)
    fit, residuals, _ = line_callbacks(pts)
    assert ransac(len(pts), 2, fit, residuals, 5.0).iterations == 1
    assert ransac(len(pts), 2, fit, residuals, 5.0, min_iterations=50).iterations == 50
    noisy, _ = noisy_line(outlier_ratio=0.5)
    fit, residuals, _ = line_callbacks(noisy)
    full = ransac(len(noisy), 2, fit, residuals, 1.0, confidence=1.0, max_iterations=300)
    assert full.iterations == 300
    adaptive = ransac(len(noisy), 2, fit, residuals, 1.0)
    w = adaptive.inliers.mean()
    assert adaptive.iterations <= ransac_iterations(w, 2, 0.999)


def test_local_optimisation_never_scores_worse_than_plain_msac():
    """Same samples (p = 1, fixed budget): LO only ever replaces a model by a cheaper one."""
    pts, _ = noisy_line(outlier_ratio=0.7, seed=5)
    fit, residuals, refine = line_callbacks(pts)
    plain = ransac(len(pts), 2, fit, residuals, 1.0, confidence=1.0, max_iterations=200)
    lo = ransac(len(pts), 2, fit, residuals, 1.0, refine=refine, confidence=1.0,
                max_iterations=200)
    assert lo.score <= plain.score
    assert lo.inliers.sum() >= plain.inliers.sum() - 2


def test_degenerate_samples_are_skipped_and_not_counted():
    pts, _ = noisy_line()
    fit, residuals, _ = line_callbacks(pts)
    seen = []

    def fit_spy(sample):
        seen.append(sample.copy())
        return fit(sample)

    result = ransac(len(pts), 2, fit_spy, residuals, 1.0, confidence=1.0, max_iterations=100,
                    degenerate=lambda sample: bool(np.any(sample < 100)))
    assert result.iterations == 100 and len(seen) >= 100  # a block may overshoot a little
    assert all(np.all(s >= 100) for s in seen)


def test_hopeless_data_ends_with_no_model():
    result = ransac(10, 2, lambda sample: [], lambda m: np.zeros(10), 1.0, max_iterations=50)
    assert result.model is None and result.iterations == 0 and result.score == math.inf
    assert not result.inliers.any()


def test_several_models_per_sample_and_nan_residuals_count_as_outliers():
    """Like the 7-point F (up to 3 solutions): the engine keeps the right one; NaN = outlier."""
    pts, _ = noisy_line(outlier_ratio=0.3)
    fit, residuals, _ = line_callbacks(pts)
    bogus = np.array([1.0, 0.0, -1e6])

    def fit_three(sample):
        return [bogus, *fit(sample), np.array([np.nan, 0.0, 0.0])]

    result = ransac(len(pts), 2, fit_three, residuals, 1.0)
    assert result.model is not bogus and np.isfinite(result.model).all()
    assert result.inliers.mean() > 0.6


def test_residuals_of_the_wrong_shape_are_refused():
    with pytest.raises(GeometryError, match=r"return shape \(10,\), got \(9,\)"):
        ransac(10, 2, lambda s: [0], lambda m: np.zeros(9), 1.0)


def test_ransac_batched_gives_the_same_result_as_ransac():
    """The two front doors share one loop: same seed and samples → the same model."""
    pts, _ = noisy_line(outlier_ratio=0.6, seed=2)
    fit, residuals, refine = line_callbacks(pts)

    def fit_block(samples):
        models, owners = [], []
        for b, sample in enumerate(samples):
            for m in fit(sample):
                models.append(m)
                owners.append(b)
        return models, np.array(owners, dtype=int)

    def squared_block(models):
        return np.stack([residuals(m) ** 2 for m in models])

    one = ransac(len(pts), 2, fit, residuals, 1.0, refine=refine, seed=3)
    many = ransac_batched(len(pts), 2, fit_block, squared_block, 1.0, refine=refine, seed=3)
    np.testing.assert_allclose(many.model, one.model, rtol=0, atol=1e-12)
    assert many.iterations == one.iterations and many.score == pytest.approx(one.score)


def test_first_block_sets_the_samples_of_the_first_block_and_is_validated():
    """A solver with a high cost per block (batched EPnP) asks for a first block that covers its
    whole run. Closed form: confidence 1 runs exactly max_iterations = 60 samples, as blocks of
    32 and 28 by default, as one block with first_block = 60."""
    pts, _ = noisy_line(seed=4)
    fit, residuals, _ = line_callbacks(pts)
    blocks = []

    def fit_block(samples):
        blocks.append(len(samples))
        return [fit(s)[0] for s in samples], np.arange(len(samples))

    def squared_block(models):
        return np.stack([residuals(m) ** 2 for m in models])

    for first_block, expected in ((None, [32, 28]), (60, [60])):
        blocks.clear()
        kw = {} if first_block is None else {"first_block": first_block}
        result = ransac_batched(len(pts), 2, fit_block, squared_block, 1.0, confidence=1.0,
                                max_iterations=60, **kw)
        assert result.iterations == 60 and blocks == expected
    with pytest.raises(GeometryError, match="expected first_block ≥ 1, got 0"):
        ransac_batched(len(pts), 2, fit_block, squared_block, 1.0, first_block=0)


def test_confidence_one_scores_exactly_max_iterations_productive_samples():
    """Closed form: with p = 1 the limit is max_iterations from the start, so the samples past it
    are never scored, even when degenerate samples make the engine draw extra ones."""
    pts, _ = noisy_line(seed=5)
    fit, residuals, _ = line_callbacks(pts)
    scored, drawn = [], []

    def fit_block(samples):
        drawn.append(len(samples))
        keep = [b for b, sample in enumerate(samples) if sample[0] % 3]  # a third degenerate
        return [fit(samples[b])[0] for b in keep], np.array(keep, dtype=int)

    def squared_block(models):
        scored.append(len(models))
        return np.stack([residuals(m) ** 2 for m in models])

    result = ransac_batched(len(pts), 2, fit_block, squared_block, 1.0, confidence=1.0,
                            max_iterations=150)
    assert result.iterations == 150 and sum(scored) == 150
    assert sum(drawn) > 150 and len(drawn) <= 3


def test_local_optimisation_skips_a_refit_on_the_inliers_it_was_fitted_on():
    """Pitfall: refitting on the same inlier set gives the same model again. Closed form: inliers
    within 0.3 of y = x / 2, outliers more than 10 away, t = 1: after the first refit the masks at
    2t, 1.5t and t are the one it was fitted on, so LO refits once and reports that mask."""
    from foveal.geometry.ransac import _local_optimisation

    rng = np.random.default_rng(6)
    x = rng.uniform(0, 100, 80)
    pts = np.column_stack([x, 0.5 * x + rng.uniform(-0.3, 0.3, 80)])
    pts[60:, 1] += rng.choice([-1, 1], 20) * rng.uniform(10, 30, 20)
    _, residuals, refine = line_callbacks(pts)
    calls = []

    def refine_spy(idx):
        calls.append(idx.copy())
        return refine(idx)

    def squared_one(line):
        return residuals(line) ** 2

    p, q = pts[0], pts[1]  # two inliers: a noisy minimal model
    normal = np.array([p[1] - q[1], q[0] - p[0]]) / np.hypot(p[1] - q[1], q[0] - p[0])
    model = np.append(normal, -normal @ p)
    r2 = squared_one(model)
    cost = float(np.minimum(r2, 1.0).sum())
    _, best_r2, best_cost, fitted_on = _local_optimisation(model, r2, cost, refine_spy,
                                                           squared_one, 2, 1.0)
    assert len(calls) == 1 and best_cost < cost
    np.testing.assert_array_equal(fitted_on, np.arange(80) < 60)
    np.testing.assert_array_equal(best_r2 < 1.0, fitted_on)
