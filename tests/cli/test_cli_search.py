"""`foveal search`, run in-process on a parser built here with ``search.register``.

Oracles: the Cartesian product of the grid (a 2×2 grid is exactly 4 trials with the expected
settings); each trial's own run folder (its config.json and metrics.json, written by
foveal.training.trainer.train) for the settings it was trained with and its objective; the
search's ranking rule (best test accuracy first).
"""

import itertools
import json

import numpy as np
import pytest

import foveal.report.classification as classification
from foveal.atomic import atomic_write_png
from foveal.cli.main import main
from foveal.training.config import TrainConfig

FIXED = ["--set", "model=mlp", "--set", 'model_options={"hidden": [16], "dropout": 0.0}',
         "--set", "batch_size=128", "--set", "device=cpu", "--epochs", "1"]


@pytest.fixture
def quick_run_plots(monkeypatch):
    """Each trial's own run report draws three figures (~5 s a run); they are not under test
    here, so they are written as 1×1 PNGs."""
    def blank(*args):
        return atomic_write_png(args[-1], np.zeros((1, 1, 3), np.uint8))

    for name in ("plot_training_curves", "plot_confusion_matrix", "plot_image_grid"):
        monkeypatch.setattr(classification, name, blank)


def run_cli(argv, capsys):
    """``foveal search ARGV`` through the real entry point: (exit status, stdout, stderr)."""
    code = main(["search", *(str(a) for a in argv)])
    return (code, *capsys.readouterr())


def test_grid_of_2x2_trains_exactly_4_trials_with_the_expected_settings(tmp_path, capsys,
                                                                       quick_run_plots):
    code, out, _ = run_cli(["--method", "grid", "--space", "optimizer=choice:sgd,adamw",
                            "--space", "lr=log:0.01:0.1", "--points", "2", *FIXED,
                            "--out", tmp_path], capsys)
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    expected = [{"optimizer": o, "lr": lr}
                for o, lr in itertools.product(["sgd", "adamw"], [0.01, 0.1])]
    assert [t["params"]["optimizer"] for t in doc["trials"]] == [e["optimizer"] for e in expected]
    assert [t["params"]["lr"] for t in doc["trials"]] == pytest.approx([e["lr"] for e in expected])
    assert sorted(p.name for p in tmp_path.glob("trial-*")) == [f"trial-00{i}" for i in range(4)]
    base = TrainConfig(model="mlp", model_options={"hidden": [16], "dropout": 0.0},
                       batch_size=128, device="cpu", epochs=1)
    for i, trial in enumerate(doc["trials"]):
        run = tmp_path / f"trial-00{i}"
        config = json.loads((run / "config.json").read_text())
        assert config == base.replace(**trial["params"]).to_json()
        metrics = json.loads((run / "metrics.json").read_text())
        assert trial["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    ranked = [row["test_accuracy"] for row in doc["ranked"]]
    assert ranked == sorted(ranked, reverse=True) and len(ranked) == 4
    best = doc["ranked"][0]
    assert f"best      trial {best['trial']}: optimizer={best['optimizer']}" in out
    table = out.splitlines()
    assert table[0].split() == ["trial", "round", "optimizer", "lr", "test_accuracy"]
    assert [int(line.split()[0]) for line in table[1:5]] == [r["trial"] for r in doc["ranked"]]
    assert (tmp_path / "plots" / "search.png").exists()
    assert "hyper-parameter search (grid)" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("space", ["lr", "lr=log:1", "lr=log:a:b", "lr=cubic:1:2",
                                   "lr=log:0:1", "lr=choice:"])
def test_bad_space_text_is_rejected_with_exit_2(space, tmp_path, capsys):
    code, _, err = run_cli(["--space", space, *FIXED, "--out", tmp_path / "s"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and f"--space {space!r}" in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv, message", [
    (["--set", "epochs"], "--set 'epochs': expected KEY=JSON_VALUE"),
    (["--set", "colour=1"], "unknown config key(s) ['colour']"),
    (["--space", "batch_size=uniform:8:64"], "cannot search 'batch_size' over a continuous"),
    (["--method", "grid", "--trials", "3"], "--trials does not apply to --method grid"),
    (["--method", "coarse-to-fine", "--trials", "4"], "multiple of rounds=3"),
    (["--preset", "nope"], "nope"),
])
def test_bad_settings_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code, _, err = run_cli(["--space", "lr=log:1e-3:1", *FIXED, *argv,
                            "--out", tmp_path / "s"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "s").exists()


def test_no_space_is_an_error(tmp_path, capsys):
    code, _, err = run_cli([*FIXED, "--out", tmp_path], capsys)
    assert code == 2 and "expected at least one --space" in err
