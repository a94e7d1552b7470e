"""`foveal diagnose`, run in-process on a parser built here with ``diagnose.register``.

Oracles: the library functions of foveal.training.diagnostics called on the same batch with a
model built from the same seed (metrics.json must equal their results); the closed form
``log 10`` for the initial loss of a model whose final layer is zero; hand-computed geometric
means for the vanishing/exploding flags.
"""

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

import foveal.models
from foveal.cli.main import main
from foveal.data.datasets import load_dataset
from foveal.data.loader import InMemoryLoader
from foveal.errors import ConfigError
from foveal.training import diagnostics as dg
from foveal.training.diagnostics import LayerStats, flag_gradient_layers

FAST = ["--model", "mlp", "--model-option", "hidden=[32]", "--model-option", "dropout=0.0",
        "--batch-size", "16", "--overfit-steps", "150", "--steps", "20", "--device", "cpu"]


def run_cli(argv, capsys):
    """``foveal diagnose ARGV`` through the real entry point: (exit status, stdout, stderr)."""
    code = main(["diagnose", *(str(a) for a in argv)])
    return (code, *capsys.readouterr())


def library_inputs(seed=0, batch_size=16):
    dataset = load_dataset("digits", "train")
    mean, std = dataset.channel_stats()
    loader = InMemoryLoader(dataset, batch_size, mean=mean, std=std, shuffle=True,
                            drop_last=True, seed=seed)

    def model():
        torch.manual_seed(seed)
        return foveal.models.build_model("mlp", in_channels=1, num_classes=10, image_size=8,
                                         hidden=[32], dropout=0.0)

    return loader, next(loader.batches(0)), model


def test_metrics_json_equals_the_library_results_for_the_same_seed(tmp_path, capsys):
    code, out, _ = run_cli(["all", *FAST, "--seed", "3", "--out", tmp_path], capsys)
    assert code == 0
    record = json.loads((tmp_path / "metrics.json").read_text())
    loader, batch, model = library_inputs(seed=3)

    init = dg.initial_loss_check(model(), batch, 10)
    assert record["initial_loss"] == pytest.approx(dataclasses.asdict(init))
    net = model()
    fit = dg.overfit_one_batch(net, batch, steps=150, lr=1e-2, optimizer="adam")
    assert record["overfit"]["losses"] == pytest.approx(fit.losses)
    assert record["overfit"]["reached"] == fit.reached and fit.reached
    assert record["overfit"]["accuracy"] == pytest.approx(
        float((net.eval()(batch[0]).argmax(1) == batch[1]).float().mean()))
    lr = dg.lr_range_test(model(), loader, steps=20)
    assert record["lr_range"]["lrs"] == pytest.approx(lr.lrs)
    assert record["lr_range"]["losses"] == pytest.approx(lr.losses)
    assert record["lr_range"]["suggested_lr"] == pytest.approx(lr.suggested_lr)
    stats = dg.layer_statistics(model(), batch)
    assert record["layers"]["stats"] == [pytest.approx(dataclasses.asdict(s)) for s in stats]
    assert record["layers"]["dead_relu_fraction"] == pytest.approx(
        dg.dead_relu_fraction(model(), batch))
    assert record["passed"] and record["failures"] == []

    for name in ("report.html", "overfit.png", "lr_range.png", "layers.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert f"initial loss   {init.loss:.4f} vs log C {math.log(10):.4f}" in out
    assert f"suggested {lr.suggested_lr:.3g}" in out
    assert "dead ReLUs     net.2" in out


def test_initial_loss_of_a_zero_initialised_head_is_log_10(tmp_path, capsys, monkeypatch):
    build = foveal.models.build_model

    def zero_head(*args, **kwargs):
        model = build(*args, **kwargs)
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        return model

    monkeypatch.setattr(foveal.models, "build_model", zero_head)
    code, out, _ = run_cli(["initial-loss", *FAST, "--json", "--out", tmp_path], capsys)
    assert code == 0
    record = json.loads(out)
    assert record["initial_loss"]["loss"] == pytest.approx(math.log(10), abs=1e-6)
    assert record["initial_loss"]["logit_std"] == 0
    assert record["checks"] == ["initial-loss"] and "overfit" not in record


def test_a_failed_check_exits_2_after_writing_the_folder(tmp_path, capsys):
    code, out, err = run_cli(["overfit", *FAST, "--overfit-steps", "1", "--out", tmp_path],
                             capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "one batch not overfitted" in err and "after 1 steps" in err
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert not record["passed"] and record["overfit"]["steps_taken"] == 1
    assert "overfit batch" in out and "FAIL" in out
    assert (tmp_path / "report.html").exists() and (tmp_path / "overfit.png").exists()


def test_layers_tool_writes_the_layer_plot_and_flags(tmp_path, capsys):
    code, out, _ = run_cli(["layers", *FAST, "--out", tmp_path], capsys)
    assert code == 0
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert [s["kind"] for s in record["layers"]["stats"]] == ["Flatten", "Linear", "ReLU",
                                                             "Dropout", "Linear"]
    assert record["layers"]["vanishing"] == [] and record["layers"]["exploding"] == []
    assert (tmp_path / "layers.png").exists() and not (tmp_path / "lr_range.png").exists()
    assert "gradients      vanishing: none; exploding: none" in out


@pytest.mark.parametrize("argv, message", [
    (["--model-option", "hidden"], "--model-option 'hidden': expected KEY=JSON_VALUE"),
    (["--model-option", "width=16"], "unknown option(s) ['width'] for model 'mlp'"),
    (["--model", "nonet"], "unknown model 'nonet'"),
    (["--data", "no/such/folder"], "no/such/folder"),
    (["--batch-size", "0"], "--batch-size: expected at least 1, got 0"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code, _, err = run_cli(["all", *FAST, *argv, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def stats(stds):
    return [LayerStats(f"l{i}", "Linear", 0.0, 1.0, None if s is None else 1.0, s, None)
            for i, s in enumerate(stds)]


def test_gradient_flags_against_the_geometric_mean():
    # finite positive scales 1e-4, 1, 1, 1e4: geometric mean 1; ratio 100 → (1e-2, 1e2)
    vanishing, exploding = flag_gradient_layers(
        stats([1e-4, 1.0, None, 1.0, 1e4, 0.0, math.inf]), ratio=100.0)
    assert vanishing == ["l0", "l5"] and exploding == ["l4", "l6"]
    assert flag_gradient_layers(stats([1e-4, 1.0, 1e4]), ratio=1e5) == ([], [])
    with pytest.raises(ConfigError, match="ratio > 1"):
        flag_gradient_layers(stats([1.0]), ratio=1.0)
