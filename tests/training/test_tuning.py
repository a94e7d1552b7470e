"""Hyper-parameter tuning of training runs (foveal.training.tuning).

Oracles: foveal.training.search itself (random_search / grid_search with a recording objective
give the points each run must be trained with, for the same seed); the dataclasses Uniform,
LogUniform and Choice for the parsed text forms; a stand-in ``train`` that returns known
metrics, so the ranking and the NaN rule are checked against values chosen here. One real
(tiny) training run checks the glue end to end.
"""

import json
import math
from pathlib import Path

import pytest

import foveal.training.trainer as trainer
from foveal.errors import ConfigError, TrainingError
from foveal.training.config import TrainConfig
from foveal.training.search import Choice, LogUniform, Uniform, grid_search, random_search
from foveal.training.tuning import (
    format_dimension,
    parse_dimension,
    parse_setting,
    parse_space,
    run_search,
    trial_dir,
)

BASE = TrainConfig(model="mlp", model_options={"hidden": [16], "dropout": 0.0}, epochs=1,
                   batch_size=128, device="cpu")


class FakeRun:
    def __init__(self, run_dir, metrics):
        self.run_dir, self.metrics = Path(run_dir), metrics


@pytest.fixture
def fake_train(monkeypatch):
    """``train`` replaced by: accuracy = 1 − |log10 lr + 1| / 10, loss = 1 − accuracy;
    lr > 1 raises TrainingError. Records each call's config and folder."""
    calls = []

    def train(config, run_dir, **kwargs):
        calls.append((config, Path(run_dir)))
        if config.lr > 1:
            raise TrainingError(f"loss became nan at step 3 (lr {config.lr})")
        accuracy = 1 - abs(math.log10(config.lr) + 1) / 10
        return FakeRun(run_dir, {"test_accuracy": accuracy, "test_loss": 1 - accuracy})

    monkeypatch.setattr(trainer, "train", train)
    return calls


# --------------------------------------------------------------------------- text forms


@pytest.mark.parametrize("text, name, dimension", [
    ("lr=log:1e-3:1", "lr", LogUniform(1e-3, 1.0)),
    ("label_smoothing=uniform:0:0.2", "label_smoothing", Uniform(0.0, 0.2)),
    ("optimizer=choice:sgd,adamw", "optimizer", Choice(["sgd", "adamw"])),
    ("batch_size=choice:32,64", "batch_size", Choice([32, 64])),
    ("flip=choice:true,false", "flip", Choice([True, False])),
])
def test_parse_dimension_matches_the_search_dataclasses(text, name, dimension):
    assert parse_dimension(text) == (name, dimension)
    assert parse_dimension(f"{name}={format_dimension(dimension)}") == (name, dimension)


@pytest.mark.parametrize("text", ["lr", "lr=", "lr=log", "lr=log:1", "lr=log:a:b",
                                  "lr=cubic:1:2", "lr=log:1:2:3", "=log:1:2", "lr=choice:",
                                  "lr=choice:a,,b"])
def test_parse_dimension_rejects_malformed_text_naming_it(text):
    with pytest.raises(ConfigError, match="expected NAME=log:LOW:HIGH") as info:
        parse_dimension(text)
    assert repr(text) in str(info.value) and "\n" not in str(info.value)


def test_parse_dimension_rejects_empty_or_non_positive_ranges():
    with pytest.raises(ConfigError, match=r"--space 'lr=log:0:1': expected LogUniform"):
        parse_dimension("lr=log:0:1")
    with pytest.raises(ConfigError, match=r"--space 'x=uniform:2:1': expected Uniform"):
        parse_dimension("x=uniform:2:1")
    with pytest.raises(ConfigError, match="'lr' is already searched"):
        parse_space(["lr=log:1e-3:1", "lr=log:1e-2:1"])


def test_parse_setting_reads_json_or_a_plain_word():
    assert parse_setting("epochs=2") == ("epochs", 2)
    assert parse_setting('model_options={"width": 16}') == ("model_options", {"width": 16})
    assert parse_setting("model=mlp") == ("model", "mlp")
    assert parse_setting('model="mlp"') == ("model", "mlp")
    assert parse_setting("grad_clip=null") == ("grad_clip", None)
    for bad in ("epochs", "=2", "two words=1", "model_options={width: 16}"):
        with pytest.raises(ConfigError, match="expected KEY=JSON_VALUE"):
            parse_setting(bad)


# --------------------------------------------------------------------------- the search


def test_random_search_trains_the_points_random_search_draws(tmp_path, fake_train):
    space = {"lr": LogUniform(1e-3, 1.0), "label_smoothing": Uniform(0.0, 0.2)}
    result = run_search(BASE, space, tmp_path / "s", method="random", trials=4, seed=7)
    expected = random_search(lambda p: 0.0, space, trials=4, seed=7)
    assert [t.params for t in result.search.trials] == [t.params for t in expected.trials]
    for (config, run_dir), trial in zip(fake_train, result.search.trials, strict=True):
        assert config == BASE.replace(**trial.params)
        assert run_dir == trial_dir(tmp_path / "s", trial.index)
        assert trial.value == 1 - abs(math.log10(trial.params["lr"]) + 1) / 10
    assert result.search.maximize and result.search.best.value == max(
        t.value for t in result.search.trials)
    assert result.best_config == BASE.replace(**result.search.best.params)


def test_grid_search_runs_every_combination_once(tmp_path, fake_train):
    space = {"optimizer": Choice(["sgd", "adamw"]), "lr": LogUniform(0.01, 0.1)}
    result = run_search(BASE, space, tmp_path / "s", method="grid", points=2)
    expected = grid_search(lambda p: 0.0, space, points=2)
    assert [t.params for t in result.search.trials] == [t.params for t in expected.trials]
    assert len(result.search.trials) == 4


def test_failed_run_scores_nan_and_is_ranked_last(tmp_path, fake_train):
    space = {"lr": Choice([0.1, 10.0, 0.01])}
    result = run_search(BASE, space, tmp_path / "s", method="grid")
    assert [t.params["lr"] for t in result.search.ranked()] == [0.1, 0.01, 10.0]
    assert math.isnan(result.search.trials[1].value)
    doc = json.loads((tmp_path / "s" / "results.json").read_text())
    assert "loss became nan" in doc["trials"][1]["error"] and doc["trials"][1]["metrics"] is None
    assert doc["best"] == {"trial": 0, "params": {"lr": 0.1}, "test_accuracy": 1.0}
    assert [row["trial"] for row in doc["ranked"]] == [0, 2, 1]
    assert (tmp_path / "s" / "plots" / "search.png").exists()
    assert (tmp_path / "s" / "report.html").exists()


def test_test_loss_objective_is_minimised(tmp_path, fake_train):
    result = run_search(BASE, {"lr": Choice([1.0, 0.1, 0.001])}, tmp_path / "s",
                        method="grid", objective="test_loss")
    assert not result.search.maximize and result.search.best.params == {"lr": 0.1}
    assert json.loads((tmp_path / "s" / "results.json").read_text())["maximize"] is False


def test_coarse_to_fine_splits_the_trials_over_the_rounds(tmp_path, fake_train):
    result = run_search(BASE, {"lr": LogUniform(1e-3, 1.0)}, tmp_path / "s",
                        method="coarse-to-fine", trials=6, rounds=3)
    assert [t.round for t in result.search.trials] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ConfigError, match="multiple of rounds=3"):
        run_search(BASE, {"lr": LogUniform(1e-3, 1.0)}, tmp_path / "t",
                   method="coarse-to-fine", trials=4, rounds=3)


@pytest.mark.parametrize("space, message", [
    ({"learning_rate": LogUniform(1e-3, 1.0)}, "cannot search 'learning_rate'"),
    ({"batch_size": Uniform(8, 64)}, "cannot search 'batch_size' over a continuous range"),
    ({"epochs": LogUniform(1, 4)}, "it takes int values, use choice"),
])
def test_space_must_name_train_settings_with_fitting_kinds(space, message, tmp_path,
                                                          fake_train):
    with pytest.raises(ConfigError, match=message):
        run_search(BASE, space, tmp_path / "s")
    assert fake_train == []


def test_a_folder_holding_a_search_is_not_overwritten(tmp_path, fake_train):
    run_search(BASE, {"lr": Choice([0.1])}, tmp_path, method="grid")
    with pytest.raises(ConfigError, match="already holds a search"):
        run_search(BASE, {"lr": Choice([0.1])}, tmp_path, method="grid")


def test_real_training_runs_score_their_final_test_accuracy(tmp_path):
    result = run_search(BASE, {"lr": Choice([0.05])}, tmp_path, method="grid")
    metrics = json.loads((tmp_path / "trial-000" / "metrics.json").read_text())
    assert result.search.trials[0].value == pytest.approx(metrics["test_accuracy"])
    config = json.loads((tmp_path / "trial-000" / "config.json").read_text())
    assert config == BASE.replace(lr=0.05).to_json()
