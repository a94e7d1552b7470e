"""The Trainer end to end on real digits: outputs, determinism, exact resumption, failures."""

import json
import os

import pytest
import torch

from foveal.errors import CheckpointError, FovealError, TrainingError
from foveal.training.checkpoint import load_checkpoint
from foveal.training.config import TrainConfig
from foveal.training.trainer import Trainer, train

FAST = dict(model="mlp", model_options={"hidden": [64], "dropout": 0.0}, epochs=3,
            batch_size=32, lr=0.05, warmup_epochs=1, device="cpu")


def weights(run_dir):
    return load_checkpoint(run_dir / "model.safetensors").model_state()


def test_run_folder_holds_metrics_plots_report_and_model(tmp_path, digits_pair):
    result = train(TrainConfig(**FAST), tmp_path / "run", train_set=digits_pair[0],
                   test_set=digits_pair[1], progress=False)
    run = tmp_path / "run"
    for name in ["config.json", "metrics.jsonl", "metrics.json", "checkpoint.safetensors",
                 "model.safetensors", "report.html", "plots/curves.png", "plots/confusion.png",
                 "plots/misclassified.png"]:
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] == result.metrics["test_accuracy"] > 0.85
    assert set(metrics["per_class_accuracy"]) == {str(i) for i in range(10)}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["step"] == 3 * (600 // 32)
    assert TrainConfig.from_json(json.loads((run / "config.json").read_text())) == \
        TrainConfig(**FAST)


def test_same_seed_gives_identical_weights(tmp_path, digits_pair):
    cfg = TrainConfig(**FAST, crop_padding=1)
    for name in ("a", "b"):
        train(cfg, tmp_path / name, train_set=digits_pair[0], test_set=digits_pair[1],
              progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_mid_epoch_checkpoint_equals_uninterrupted_run(tmp_path, digits_pair):
    cfg = TrainConfig(**FAST, crop_padding=1, checkpoint_every=7)
    train(cfg, tmp_path / "full", train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)

    class InterruptError(Exception):
        pass

    trainer = Trainer(cfg, tmp_path / "cut", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    step = trainer.train_step

    def stop_after_step_30(x, y, **kw):  # simulates a crash after step 30 (last checkpoint: 28)
        if trainer.step == 30:
            raise InterruptError
        return step(x, y, **kw)

    trainer.train_step = stop_after_step_30
    with pytest.raises(InterruptError):
        trainer.fit()
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.safetensors").state["step"] == 28

    messages = []
    resumed = Trainer(cfg, tmp_path / "cut", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False, log=messages.append)
    resumed.restore()
    assert resumed.step == 28 and "step 28" in messages[0]
    resumed.fit()
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().split("\n")
            if x]
    cut = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().split("\n")
           if x]
    assert [r["test_acc"] for r in full] == [r["test_acc"] for r in cut]


def test_nan_loss_stops_with_the_step_named(tmp_path, digits_pair):
    cfg = TrainConfig(**{**FAST, "lr": 1e6, "warmup_epochs": 0})
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at step \d+ \(epoch 1\)"):
        train(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
              progress=False)


def test_refuses_to_overwrite_an_existing_run(tmp_path, digits_pair):
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)
    with pytest.raises(FovealError, match="already holds a run"):
        train(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
              progress=False)


def test_resume_with_other_settings_is_refused(tmp_path, digits_pair):
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)
    with pytest.raises(CheckpointError, match=r"other settings: \['lr'\]"):
        train(cfg.replace(lr=0.5), tmp_path / "run", resume=True, train_set=digits_pair[0],
              test_set=digits_pair[1], progress=False)


def test_resume_with_another_model_is_refused(tmp_path, digits_pair):
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)
    other = cfg.replace(model="resnet9", model_options={"width": 4})
    with pytest.raises(CheckpointError, match="for model 'mlp', expected 'resnet9'"):
        train(other, tmp_path / "run", resume=True, train_set=digits_pair[0],
              test_set=digits_pair[1], progress=False)


def test_unwritable_output_fails_before_any_work(tmp_path, digits_pair):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FovealError, match="expected a writable directory"):
        train(TrainConfig(**FAST), blocker / "run", train_set=digits_pair[0],
              test_set=digits_pair[1], progress=False)
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimizers_and_schedules_learn(tmp_path, digits_pair, optimizer):
    cfg = TrainConfig(**{**FAST, "optimizer": optimizer, "lr": 0.05 if optimizer == "sgd" else
                         3e-3, "schedule": "step", "step_epochs": 2, "grad_clip": 1.0,
                         "label_smoothing": 0.1})
    result = train(cfg, tmp_path / optimizer, train_set=digits_pair[0], test_set=digits_pair[1],
                   progress=False)
    assert result.metrics["test_accuracy"] > 0.85


def test_resnet9_channels_last_trains(tmp_path, digits_pair):
    cfg = TrainConfig(model="resnet9", model_options={"width": 8}, epochs=3, batch_size=32,
                      lr=0.2, label_smoothing=0.1, device="cpu", channels_last=True,
                      crop_padding=1, cutout=2)
    result = train(cfg, tmp_path / "r", train_set=digits_pair[0], test_set=digits_pair[1],
                   progress=False)
    assert result.metrics["test_accuracy"] > 0.8


@pytest.mark.slow
def test_compiled_model_matches_eager_training(tmp_path, digits_pair):
    """torch.compile (opt-in) must train to the same weights as eager mode, up to fp tolerance."""
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(cfg, tmp_path / "eager", train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)
    train(cfg.replace(compile=True), tmp_path / "compiled", train_set=digits_pair[0],
          test_set=digits_pair[1], progress=False)
    a, b = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "cls", "lr"), [("adam", torch.optim.Adam, 0.002),
                                                 ("rmsprop", torch.optim.RMSprop, 0.002),
                                                 ("adagrad", torch.optim.Adagrad, 0.05)])
def test_named_optimizers_train_and_resume_bit_identically(tmp_path, digits_pair, name, cls, lr):
    # oracle: the uninterrupted run; the optimizer state must survive the checkpoint
    cfg = TrainConfig(**{**FAST, "epochs": 2, "lr": lr}, optimizer=name, checkpoint_every=5)
    full = train(cfg, tmp_path / "full", train_set=digits_pair[0], test_set=digits_pair[1],
                 progress=False)
    assert full.metrics["test_accuracy"] > 0.5

    trainer = Trainer(cfg, tmp_path / "cut", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    assert type(trainer.optimizer) is cls
    step = trainer.train_step

    def stop_after_step_12(x, y, **kw):
        if trainer.step == 12:
            raise KeyboardInterrupt
        return step(x, y, **kw)

    trainer.train_step = stop_after_step_12
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    resumed = Trainer(cfg, tmp_path / "cut", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    resumed.restore()
    resumed.fit()
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_scratch_engine_refuses_optimizers_it_lacks():
    with pytest.raises(FovealError, match="the scratch engine trains with sgd or adamw"):
        TrainConfig(**FAST, engine="scratch", optimizer="rmsprop").validate()
