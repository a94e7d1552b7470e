"""Hyper-parameter tuning of training runs: :mod:`foveal.training.search` over ``TrainConfig``.

:mod:`foveal.training.search` searches any objective; here the objective of a trial is one
training run: the base :class:`~foveal.training.config.TrainConfig` with the trial's values
applied (``TrainConfig.replace``), trained by :func:`foveal.training.trainer.train` in
``out_dir/trial-XXX``, scored by its final test accuracy (maximised) or test loss (minimised).
A run that stops with a :class:`~foveal.errors.TrainingError` (a loss that became NaN at a high
learning rate) scores NaN and is ranked last instead of ending the search.

Search spaces can also be written as text, the form ``foveal search --space`` takes:

- ``lr=log:1e-3:1``: :class:`~foveal.training.search.LogUniform` on ``[1e-3, 1]``;
- ``label_smoothing=uniform:0:0.2``: :class:`~foveal.training.search.Uniform`;
- ``optimizer=choice:sgd,adamw``: :class:`~foveal.training.search.Choice`; each value is read as
  JSON (``0.1``, ``true``) or else taken as a plain word (``sgd``).

and fixed settings as ``KEY=JSON_VALUE`` (``epochs=2``, ``model_options={"width": 16}``; a plain
word such as ``model=mlp`` is taken as a string).

Reference: Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 13
(2012), for why random search with log-uniform rates is the default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foveal.atomic import atomic_write_json
from foveal.data.dataset import ArrayDataset
from foveal.errors import ConfigError, TrainingError
from foveal.training.config import TrainConfig
from foveal.training.search import (
    Choice,
    Dimension,
    LogUniform,
    SearchResult,
    Uniform,
    coarse_to_fine_search,
    grid_search,
    random_search,
)

__all__ = [
    "OBJECTIVES", "SEARCH_METHODS", "TuningResult", "format_dimension", "parse_dimension",
    "parse_setting", "parse_space", "run_search", "trial_dir", "write_search_report",
]

SEARCH_METHODS: tuple[str, ...] = ("random", "grid", "coarse-to-fine")
#: objective name → whether it is maximised
OBJECTIVES: dict[str, bool] = {"test_accuracy": True, "test_loss": False}
RESULTS_FILE = "results.json"
_PLAIN_WORD = re.compile(r"[A-Za-z_][\w.\-/:]*")
_DATA_FIELDS = ("dataset", "data_root", "download", "skip_corrupt")


# --------------------------------------------------------------------------- text forms


def _json_or_word(text: str) -> Any:
    """``text`` as JSON, or as a string when it is a plain word (``sgd``, ``resnet9``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if _PLAIN_WORD.fullmatch(text):
            return text
        raise


def parse_setting(text: str, flag: str = "--set") -> tuple[str, Any]:
    """``"KEY=JSON_VALUE"`` → ``(key, value)``; a value that is not JSON but a plain word is
    a string (``model=mlp``). Raises a one-line :class:`ConfigError` naming ``flag`` and the text.
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ConfigError(f"{flag} {text!r}: expected KEY=JSON_VALUE such as lr=0.1 or "
                          f"model_options={{\"width\": 16}}")
    try:
        return key, _json_or_word(value.strip())
    except json.JSONDecodeError:
        raise ConfigError(f"{flag} {text!r}: expected KEY=JSON_VALUE, got a value that is "
                          f"neither JSON nor a plain word: {value!r}") from None


def parse_dimension(text: str) -> tuple[str, Dimension]:
    """``"lr=log:1e-3:1"``, ``"x=uniform:0:0.2"`` or ``"optimizer=choice:sgd,adamw"`` →
    ``(name, dimension)``; a one-line :class:`ConfigError` naming the text otherwise."""
    expected = ("expected NAME=log:LOW:HIGH, NAME=uniform:LOW:HIGH or NAME=choice:A,B,... "
                "such as lr=log:1e-3:1")
    name, sep, spec = text.partition("=")
    name = name.strip()
    kind, _, rest = spec.partition(":")
    if not sep or not name.isidentifier() or kind not in ("log", "uniform", "choice") or not rest:
        raise ConfigError(f"--space {text!r}: {expected}")
    try:
        if kind == "choice":
            values = [_json_or_word(v.strip()) for v in rest.split(",")]
            if any(v == "" for v in values):
                raise ValueError
            return name, Choice(values)
        low_text, high_text = rest.split(":")
        low, high = float(low_text), float(high_text)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"--space {text!r}: {expected}") from None
    try:
        return name, (LogUniform if kind == "log" else Uniform)(low, high)
    except ConfigError as error:
        raise ConfigError(f"--space {text!r}: {error}") from None


def format_dimension(dimension: Dimension) -> str:
    """The text form of ``dimension`` after ``NAME=`` (inverse of :func:`parse_dimension`)."""
    if isinstance(dimension, Choice):
        return "choice:" + ",".join(
            v if isinstance(v, str) else json.dumps(v) for v in dimension.values
        )
    kind = "log" if isinstance(dimension, LogUniform) else "uniform"
    return f"{kind}:{dimension.low!r}:{dimension.high!r}"


def parse_space(texts: Iterable[str]) -> dict[str, Dimension]:
    """Each ``--space`` text through :func:`parse_dimension`; a name given twice is an error."""
    space: dict[str, Dimension] = {}
    for text in texts:
        name, dimension = parse_dimension(text)
        if name in space:
            raise ConfigError(f"--space {text!r}: {name!r} is already searched, expected each "
                              "setting once")
        space[name] = dimension
    return space


def _check_space(space: Mapping[str, Dimension]) -> None:
    """Every searched name is a TrainConfig field; continuous ranges only for float fields."""
    types = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    for name, dimension in space.items():
        if name not in types:
            raise ConfigError(f"cannot search {name!r}: expected a TrainConfig setting, one of "
                              f"{', '.join(sorted(types))}")
        if not isinstance(dimension, Choice) and not types[name].startswith("float"):
            raise ConfigError(f"cannot search {name!r} over a continuous range: it takes "
                              f"{types[name]} values, use choice:A,B,...")


# --------------------------------------------------------------------------- the search


@dataclass
class TuningResult:
    """A finished search over training runs.

    Attributes:
        search: the trials as :mod:`foveal.training.search` returns them; ``trial.value`` is
            the objective (NaN for a run that failed).
        runs: per trial, in run order: ``run_dir``, the run's final ``metrics`` (``None`` when
            it failed) and ``error`` (the failure's message, or ``None``).
        base: the configuration every trial starts from.
        space: the searched dimensions.
        objective: a key of :data:`OBJECTIVES`.
        method: one of :data:`SEARCH_METHODS`.
        out_dir: the search folder.
        settings: the search's own settings for the record (``seed``, ``points``, ...).
    """

    search: SearchResult
    runs: list[dict[str, Any]]
    base: TrainConfig
    space: dict[str, Dimension]
    objective: str
    method: str
    out_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def best_config(self) -> TrainConfig:
        """The base configuration with the best trial's values."""
        return self.base.replace(**self.search.best.params)

    def to_json(self) -> dict[str, Any]:
        """``results.json``: the search settings, the ranked table and every trial."""
        best = self.search.best if any(math.isfinite(t.value) for t in self.search.trials) \
            else None
        return {
            "method": self.method, "objective": self.objective,
            "maximize": OBJECTIVES[self.objective], **self.settings,
            "space": {n: format_dimension(d) for n, d in self.space.items()},
            "base_config": self.base.to_json(),
            "ranked": [{"trial": t.index, "round": t.round, **t.params,
                        self.objective: t.value} for t in self.search.ranked()],
            "trials": [{"trial": t.index, "round": t.round, "params": t.params,
                        self.objective: t.value, **self.runs[t.index]}
                       for t in self.search.trials],
            "best": None if best is None else {"trial": best.index, "params": best.params,
                                               self.objective: best.value},
        }


def trial_dir(out_dir: str | os.PathLike[str], index: int) -> Path:
    """The run folder of trial ``index``: ``out_dir/trial-XXX``."""
    return Path(out_dir) / f"trial-{index:03d}"


def run_search(
    base: TrainConfig,
    space: Mapping[str, Dimension],
    out_dir: str | os.PathLike[str],
    *,
    method: str = "random",
    trials: int = 10,
    points: int = 3,
    rounds: int = 3,
    shrink: float = 0.3,
    seed: int = 0,
    objective: str = "test_accuracy",
    train_set: ArrayDataset | None = None,
    test_set: ArrayDataset | None = None,
    progress: bool = False,
    on_trial: Callable[[int, dict[str, Any], float], None] | None = None,
) -> TuningResult:
    """Search ``space`` around ``base``, one training run per trial, and write the report.

    Args:
        base: the settings every trial starts from; each trial is
            ``base.replace(**trial_values)``, trained with ``base.seed`` (same initialisation
            and batches for every trial, so differences come from the searched values).
        space: ``{TrainConfig field: Uniform | LogUniform | Choice}`` (continuous ranges only
            for float fields).
        out_dir: a new folder; trial ``i`` trains in ``out_dir/trial-{i:03d}``.
        method: ``random`` (``trials`` draws), ``grid`` (every combination, ``points`` values
            per continuous range; ``trials`` unused) or ``coarse-to-fine`` (``rounds`` rounds of
            ``trials / rounds`` draws, ranges shrunk to ``shrink`` around the best).
        seed: seeds the draws of the search (not the training runs: set ``base.seed``).
        objective: ``test_accuracy`` (maximised) or ``test_loss`` (minimised), the run's final
            value.
        train_set, test_set: datasets shared by all trials (loaded once from ``base`` when
            omitted and the space does not search the data settings).
        progress: progress bars of each run.
        on_trial: called after each trial with ``(index, values, objective)``.

    Returns:
        The :class:`TuningResult`; ``out_dir`` then holds ``results.json``,
        ``plots/search.png`` and ``report.html`` (:func:`write_search_report`).
    """
    from foveal.training.trainer import train

    if method not in SEARCH_METHODS:
        raise ConfigError(f"unknown search method {method!r}: expected one of "
                          f"{', '.join(SEARCH_METHODS)}")
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}: expected one of "
                          f"{', '.join(OBJECTIVES)}")
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"expected trials >= 1, got {trials!r}")
    if method == "coarse-to-fine" and (rounds < 1 or trials % rounds):
        raise ConfigError(f"expected trials a multiple of rounds={rounds} for coarse-to-fine, "
                          f"got {trials}")
    space = dict(space)
    _check_space(space)
    out = Path(out_dir)
    if (out / RESULTS_FILE).exists() or any(out.glob("trial-*")):
        raise ConfigError(f"{str(out)!r} already holds a search: expected a new folder")
    if (train_set is None or test_set is None) and not set(space) & set(_DATA_FIELDS):
        from foveal.data.datasets import load_dataset

        opts = dict(root=base.data_root, download=base.download,
                    skip_corrupt=base.skip_corrupt, progress=progress)
        train_set = train_set or load_dataset(base.dataset, "train", **opts)
        test_set = test_set or load_dataset(base.dataset, "test", **opts)
    maximize = OBJECTIVES[objective]
    runs: list[dict[str, Any]] = []

    def evaluate(values: dict[str, Any]) -> float:
        index = len(runs)
        run_dir = trial_dir(out, index)
        record: dict[str, Any] = {"run_dir": str(run_dir), "metrics": None, "error": None}
        runs.append(record)
        try:  # a point of the space the config refuses, or a diverging run, scores NaN
            config = base.replace(**values)
            result = train(config, run_dir, train_set=train_set, test_set=test_set,
                           progress=progress, report=False)
        except (TrainingError, ConfigError) as error:
            record["error"] = str(error)
            value = math.nan
        else:
            record["metrics"] = result.metrics
            value = float(result.metrics[objective])
        if on_trial is not None:
            on_trial(index, values, value)
        return value

    if method == "grid":
        search = grid_search(evaluate, space, points=points, maximize=maximize)
    elif method == "random":
        search = random_search(evaluate, space, trials=trials, seed=seed, maximize=maximize)
    else:
        search = coarse_to_fine_search(evaluate, space, rounds=rounds,
                                       trials_per_round=trials // rounds, shrink=shrink,
                                       seed=seed, maximize=maximize)
    settings = {"seed": seed} | ({"points": points} if method == "grid" else {}) | (
        {"rounds": rounds, "shrink": shrink} if method == "coarse-to-fine" else {})
    result = TuningResult(search, runs, base, space, objective, method, out, settings)
    write_search_report(result)
    return result


def write_search_report(result: TuningResult) -> Path:
    """Write ``results.json``, ``plots/search.png`` and ``report.html`` into ``result.out_dir``;
    returns the report's path."""
    from foveal.report.html import Table, write_report
    from foveal.report.search import plot_search

    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    doc = result.to_json()
    atomic_write_json(out / RESULTS_FILE, doc)
    plot = plot_search(result.search, out / "plots" / "search.png")
    names = list(result.space)
    rows = [[t.index, t.round, *(_cell(t.params[n]) for n in names), t.value,
             result.runs[t.index]["error"] or ""] for t in result.search.ranked()]
    best = doc["best"]
    metrics: dict[str, Any] = {"method": result.method, "trials": len(result.search.trials)}
    if best is not None:
        metrics |= {f"best_{result.objective}": best[result.objective],
                    "best_trial": best["trial"]}
    return write_report(
        out / "report.html", title=f"hyper-parameter search ({result.method})",
        metrics=metrics,
        figures=[("objective against each searched value (best circled)", plot)],
        tables=[Table("trials, best first", ["trial", "round", *names, result.objective,
                                             "error"], rows)],
        config={"space": doc["space"], "base_config": doc["base_config"]},
    )


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)
