"""Hyperparameter search: grid, random (uniform, log-uniform, choice) and coarse-to-fine.

A search space maps names to dimensions; a trial is one dict of values; the objective is any
callable ``objective(params) -> float`` (a validation error or loss, smaller is better, unless
``maximize=True``), so the same search drives a closed-form function in a test or a training
run from the CLI. Trials run in sequence; a non-finite result is recorded and ranked last.

- Grid search evaluates the Cartesian product of each dimension's grid (``Choice`` values, or
  ``points`` evenly spaced values — log-spaced for ``LogUniform``).
- Random search draws each value independently: ``Uniform(a, b)`` as ``a + (b − a) U``,
  ``LogUniform(a, b)`` as ``exp(log a + (log b − log a) U)`` (so each decade is equally likely,
  the right prior for learning rates and weight decay), ``Choice`` uniformly.
- Coarse-to-fine runs random search, then shrinks every continuous range around the best trial
  (to ``shrink`` of its width, in log space for ``LogUniform``, clipped to the original range)
  and searches again, ``rounds`` times.

Reference: J. Bergstra and Y. Bengio, "Random Search for Hyper-Parameter Optimization", JMLR
13 (2012): with few important dimensions, random search covers each of them with as many
distinct values as there are trials, where a grid gives only its side length.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from foveal.errors import ConfigError

__all__ = ["Choice", "LogUniform", "SearchResult", "Trial", "Uniform", "coarse_to_fine_search",
           "grid_search", "random_search"]


@dataclass(frozen=True)
class Uniform:
    """A real value uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"expected Uniform(low, high) with finite low < high, got "
                              f"({self.low}, {self.high})")

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.low + (self.high - self.low) * rng.random())

    def grid(self, points: int) -> list[float]:
        return [float(v) for v in np.linspace(self.low, self.high, points)]

    def around(self, centre: float, shrink: float, bounds: Uniform) -> Uniform:
        half = 0.5 * shrink * (self.high - self.low)
        low, high = max(bounds.low, centre - half), min(bounds.high, centre + half)
        return Uniform(low, high) if low < high else self


@dataclass(frozen=True)
class LogUniform:
    """A positive real value whose logarithm is uniform on ``[log low, log high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high < math.inf):
            raise ConfigError(f"expected LogUniform(low, high) with 0 < low < high, got "
                              f"({self.low}, {self.high})")

    def sample(self, rng: np.random.Generator) -> float:
        a, b = math.log(self.low), math.log(self.high)
        return float(math.exp(a + (b - a) * rng.random()))

    def grid(self, points: int) -> list[float]:
        return [float(v) for v in np.geomspace(self.low, self.high, points)]

    def around(self, centre: float, shrink: float, bounds: LogUniform) -> LogUniform:
        half = 0.5 * shrink * (math.log(self.high) - math.log(self.low))
        low = max(bounds.low, math.exp(math.log(centre) - half))
        high = min(bounds.high, math.exp(math.log(centre) + half))
        return LogUniform(low, high) if low < high else self


@dataclass(frozen=True)
class Choice:
    """One of a finite list of values (numbers, strings, booleans)."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        if len(values) == 0:
            raise ConfigError("expected Choice with at least one value, got none")
        object.__setattr__(self, "values", tuple(values))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, points: int) -> list[Any]:
        return list(self.values)

    def around(self, centre: Any, shrink: float, bounds: Choice) -> Choice:
        return self


Dimension = Uniform | LogUniform | Choice
Space = Mapping[str, Dimension]


@dataclass(frozen=True)
class Trial:
    """One evaluated point: its index, parameters, objective value and search round."""

    index: int
    params: dict[str, Any]
    value: float
    round: int = 0


@dataclass
class SearchResult:
    """All trials in the order run; ``best`` is the best finite one."""

    trials: list[Trial] = field(default_factory=list)
    maximize: bool = False

    def ranked(self) -> list[Trial]:
        """Trials from best to worst; non-finite values last."""
        sign = -1.0 if self.maximize else 1.0
        return sorted(self.trials, key=lambda t: (not math.isfinite(t.value),
                                                  sign * t.value if math.isfinite(t.value) else 0.0,
                                                  t.index))

    @property
    def best(self) -> Trial:
        ranked = self.ranked()
        if not ranked or not math.isfinite(ranked[0].value):
            raise ConfigError("the search has no trial with a finite objective value")
        return ranked[0]

    def table(self) -> list[dict[str, Any]]:
        """Rows ``{"trial", "round", <params>, "value"}`` from best to worst (for a report)."""
        return [{"trial": t.index, "round": t.round, **t.params, "value": t.value}
                for t in self.ranked()]


def _check_space(space: Space) -> None:
    if not space:
        raise ConfigError("expected a search space with at least one dimension, got none")
    for name, dim in space.items():
        if not isinstance(dim, Uniform | LogUniform | Choice):
            raise ConfigError(f"search dimension {name!r}: expected Uniform, LogUniform or "
                              f"Choice, got {type(dim).__name__}")


def _run(objective: Callable[[dict[str, Any]], float], points: list[dict[str, Any]],
         result: SearchResult, round_: int) -> None:
    for params in points:
        value = float(objective(dict(params)))
        result.trials.append(Trial(len(result.trials), dict(params), value, round_))


def grid_search(objective: Callable[[dict[str, Any]], float], space: Space, *,
                points: int = 3, maximize: bool = False) -> SearchResult:
    """Evaluate every combination of the dimensions' grids (``points`` values per range)."""
    _check_space(space)
    if points < 2:
        raise ConfigError(f"expected at least 2 grid points per range, got {points}")
    names = list(space)
    grids = [space[n].grid(points) for n in names]
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grids)]
    result = SearchResult(maximize=maximize)
    _run(objective, combos, result, 0)
    return result


def random_search(objective: Callable[[dict[str, Any]], float], space: Space, *,
                  trials: int = 20, seed: int = 0, maximize: bool = False) -> SearchResult:
    """Evaluate ``trials`` independent draws from the space (reproducible from ``seed``)."""
    _check_space(space)
    if trials < 1:
        raise ConfigError(f"expected at least 1 trial, got {trials}")
    rng = np.random.default_rng(seed)
    draws = [{n: d.sample(rng) for n, d in space.items()} for _ in range(trials)]
    result = SearchResult(maximize=maximize)
    _run(objective, draws, result, 0)
    return result


def coarse_to_fine_search(objective: Callable[[dict[str, Any]], float], space: Space, *,
                          rounds: int = 3, trials_per_round: int = 10, shrink: float = 0.3,
                          seed: int = 0, maximize: bool = False) -> SearchResult:
    """Random search in ``rounds``, each in ranges shrunk around the best trial so far."""
    _check_space(space)
    if rounds < 1 or trials_per_round < 1:
        raise ConfigError(f"expected rounds >= 1 and trials_per_round >= 1, got {rounds} and "
                          f"{trials_per_round}")
    if not 0 < shrink < 1:
        raise ConfigError(f"expected shrink in (0, 1), got {shrink}")
    rng = np.random.default_rng(seed)
    result = SearchResult(maximize=maximize)
    current: dict[str, Dimension] = dict(space)
    for round_ in range(rounds):
        draws = [{n: d.sample(rng) for n, d in current.items()} for _ in range(trials_per_round)]
        _run(objective, draws, result, round_)
        best = result.best.params
        current = {n: d.around(best[n], shrink, space[n])  # type: ignore[arg-type]
                   for n, d in current.items()}
    return result
