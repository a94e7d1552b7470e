"""Training with the scratch engine: overfitting, the run folder, resumption, torch interchange.

Oracles: the torch twin of each scratch model (same state-dict keys, same outputs), 100%
accuracy when overfitting one small batch, and bit-identical weights after a resumed run.
"""

import json

import numpy as np
import pytest
import torch

from foveal.errors import ConfigError, TrainingError
from foveal.models import build_model
from foveal.models.classifier import Classifier
from foveal.scratch import Tensor
from foveal.scratch.models import build_scratch_model
from foveal.scratch.optim import SGD, Adam
from foveal.scratch.solver import Solver, load_state
from foveal.training.config import TrainConfig
from foveal.training.trainer import resume_config, train

FAST = dict(dataset="digits", engine="scratch", model="mlp", epochs=2, batch_size=32, lr=0.05,
            warmup_epochs=0.5, eval_batch_size=100, model_options={"hidden": [64]})


@pytest.mark.parametrize(("name", "size", "options"), [
    ("small_cnn", 32, {}), ("small_cnn", 28, {}), ("mlp", 8, {"hidden": [16, 8]}),
])
def test_scratch_models_equal_their_torch_twins(name, size, options):
    ours = build_scratch_model(name, in_channels=3, num_classes=10, image_size=size, **options)
    theirs = build_model(name, in_channels=3, num_classes=10, image_size=size, **options)
    theirs = theirs.double().eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.to(np.float64).load_state_dict(theirs.state_dict())
    ours.eval()
    x = np.random.default_rng(0).standard_normal((4, 3, size, size))
    out = ours(Tensor(x))
    ref = theirs(torch.as_tensor(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_overfits_one_small_batch_to_100_percent():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    model = build_scratch_model("small_cnn", in_channels=1, num_classes=10, image_size=16)
    solver = Solver(model, Adam(model.parameters(), lr=3e-3))
    for _ in range(150):
        loss, correct = solver.train_step(x, y)
    assert correct == 20 and loss < 0.05


def test_scratch_run_writes_the_same_run_folder(tmp_path, digits_pair):
    result = train(TrainConfig(**FAST), tmp_path / "run", train_set=digits_pair[0],
                   test_set=digits_pair[1], progress=False)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "metrics.json", "report.html",
                 "model.safetensors", "checkpoint.safetensors", "plots/curves.png",
                 "plots/confusion.png", "plots/misclassified.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["engine"] == "scratch" and metrics["test_accuracy"] > 0.85
    assert len(result.history) == 2
    # the exported model is an ordinary foveal model: the torch twin predicts the same labels
    clf = Classifier.from_file(run / "model.safetensors", device="cpu")
    pred = clf.predict(digits_pair[1].images).argmax(1)
    np.testing.assert_array_equal(pred, result.evaluation.predictions)


def test_resumed_scratch_run_equals_uninterrupted_run(tmp_path, digits_pair, monkeypatch):
    cfg = TrainConfig(**FAST, checkpoint_every=7)
    data = dict(train_set=digits_pair[0], test_set=digits_pair[1], progress=False)
    train(cfg, tmp_path / "full", **data)

    class InterruptError(Exception):
        pass

    step = Solver.train_step

    def crash_after_step_30(self, x, y):
        if self.step == 30:
            raise InterruptError
        return step(self, x, y)

    monkeypatch.setattr(Solver, "train_step", crash_after_step_30)
    with pytest.raises(InterruptError):
        train(cfg, tmp_path / "cut", **data)
    assert load_state(tmp_path / "cut" / "checkpoint.safetensors")["solver"]["step"] == 28
    monkeypatch.setattr(Solver, "train_step", step)
    assert resume_config(tmp_path / "cut") == cfg
    train(cfg, tmp_path / "cut", resume=True, **data)
    a = load_state(tmp_path / "full" / "checkpoint.safetensors")["solver"]["model"]
    b = load_state(tmp_path / "cut" / "checkpoint.safetensors")["solver"]["model"]
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_nan_loss_names_the_step():
    model = build_scratch_model("mlp", in_channels=1, num_classes=3, image_size=2)
    solver = Solver(model, SGD(model.parameters(), lr=0.1))
    x = np.full((4, 1, 2, 2), np.nan, dtype=np.float32)
    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        solver.train_step(x, np.zeros(4, dtype=np.int64))


def test_scratch_engine_rejects_models_it_does_not_have():
    with pytest.raises(ConfigError, match="scratch engine has no model 'resnet9'"):
        TrainConfig(engine="scratch", model="resnet9")
    with pytest.raises(ConfigError, match="unknown engine 'jax'"):
        TrainConfig(engine="jax")
