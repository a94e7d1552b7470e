"""Hyperparameter search against closed forms: a quadratic bowl in (log lr, momentum) whose
minimum is known, the grid's Cartesian product, the log-uniform prior's equal mass per decade,
and seeded reproducibility."""

import math

import numpy as np
import pytest

from foveal.errors import ConfigError
from foveal.report.search import plot_search
from foveal.training.search import (
    Choice,
    LogUniform,
    Uniform,
    coarse_to_fine_search,
    grid_search,
    random_search,
)

SPACE = {"lr": LogUniform(1e-5, 1.0), "momentum": Uniform(0.0, 0.99)}


def bowl(params):
    """Minimum 0 at lr = 1e-2, momentum = 0.9."""
    return (math.log10(params["lr"]) + 2) ** 2 + 10 * (params["momentum"] - 0.9) ** 2


def test_grid_search_is_the_cartesian_product():
    result = grid_search(bowl, {**SPACE, "opt": Choice(["sgd", "adamw"])}, points=3)
    assert len(result.trials) == 3 * 3 * 2
    lrs = sorted({t.params["lr"] for t in result.trials})
    np.testing.assert_allclose(lrs, [1e-5, 10 ** -2.5, 1.0])  # log-spaced
    assert {t.params["opt"] for t in result.trials} == {"sgd", "adamw"}


def test_log_uniform_gives_each_decade_equal_mass():
    rng = np.random.default_rng(0)
    dim = LogUniform(1e-6, 1.0)
    decades = np.floor(np.log10([dim.sample(rng) for _ in range(12000)]))
    counts = np.bincount((decades + 6).astype(int), minlength=6)
    assert np.all(np.abs(counts / 12000 - 1 / 6) < 0.02)


def test_random_search_is_reproducible_and_ranks_best_first():
    a = random_search(bowl, SPACE, trials=15, seed=4)
    b = random_search(bowl, SPACE, trials=15, seed=4)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    values = [t.value for t in a.ranked()]
    assert values == sorted(values) and a.best.value == values[0]
    assert a.table()[0]["value"] == values[0]


def test_coarse_to_fine_beats_random_search_with_the_same_budget():
    # averaged over seeds: one seed can get lucky either way
    fine = [coarse_to_fine_search(bowl, SPACE, rounds=4, trials_per_round=10, seed=s)
            for s in range(20)]
    plain = [random_search(bowl, SPACE, trials=40, seed=s) for s in range(20)]
    assert all(len(r.trials) == 40 for r in fine)
    assert np.median([r.best.value for r in fine]) < np.median([r.best.value for r in plain])
    assert abs(math.log10(fine[0].best.params["lr"]) + 2) < 0.3
    for t in fine[0].trials:  # every draw stays inside the original ranges
        assert 1e-5 <= t.params["lr"] <= 1.0 and 0.0 <= t.params["momentum"] <= 0.99


def test_maximize_and_non_finite_values_rank_last():
    result = random_search(lambda p: math.nan if p["x"] > 0.8 else p["x"],
                           {"x": Uniform(0, 1)}, trials=30, seed=0, maximize=True)
    ranked = result.ranked()
    assert ranked[0].value == max(t.value for t in result.trials if math.isfinite(t.value))
    assert all(math.isnan(t.value) for t in ranked[-sum(math.isnan(t.value)
                                                        for t in result.trials):])


def test_plot_search_writes_a_png(tmp_path):
    result = coarse_to_fine_search(bowl, SPACE, rounds=2, trials_per_round=5)
    path = plot_search(result, tmp_path / "search.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("make", [
    lambda: LogUniform(0.0, 1.0), lambda: Uniform(1.0, 1.0), lambda: Choice([]),
    lambda: random_search(bowl, {}, trials=3), lambda: random_search(bowl, SPACE, trials=0),
    lambda: grid_search(bowl, SPACE, points=1),
    lambda: coarse_to_fine_search(bowl, SPACE, shrink=1.5),
    lambda: random_search(bowl, {"lr": (1e-3, 1e-1)}, trials=2),
])
def test_bad_search_settings_are_config_errors(make):
    with pytest.raises(ConfigError, match="expected"):
        make()
