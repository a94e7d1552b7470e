"""Checkpoints: a save/load round trip must continue training exactly like no interruption."""

import json

import pytest
import safetensors.torch
import torch

from foveal.errors import CheckpointError
from foveal.training.checkpoint import ModelSpec, load_checkpoint, save_checkpoint

SPEC = ModelSpec("mlp", 1, 3, 4, ["a", "b", "c"], [0.5], [0.25], {"hidden": [8], "dropout": 0.0})


def make(optimizer):
    torch.manual_seed(0)
    model = SPEC.build()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                              weight_decay=1e-3)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
    return model, opt, sched


def run(model, opt, sched, steps, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_resumed_training_equals_uninterrupted_training(tmp_path, optimizer):
    reference = make(optimizer)
    run(*reference, 5, seed=1)
    run(*reference, 5, seed=2)

    first = make(optimizer)
    run(*first, 5, seed=1)
    save_checkpoint(tmp_path / "c.safetensors", model=first[0], spec=SPEC, optimizer=first[1],
                    scheduler=first[2], state={"step": 5})
    resumed = make(optimizer)
    ckpt = load_checkpoint(tmp_path / "c.safetensors", expect_model="mlp")
    ckpt.load_model(resumed[0])
    ckpt.load_training_state(resumed[1], resumed[2])
    assert ckpt.state == {"step": 5}
    run(*resumed, 5, seed=2)
    for a, b in zip(reference[0].parameters(), resumed[0].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rng_state_is_restored(tmp_path):
    model, opt, _ = make("sgd")
    torch.manual_seed(123)
    save_checkpoint(tmp_path / "c.safetensors", model=model, spec=SPEC, optimizer=opt)
    expected = torch.rand(3)
    torch.manual_seed(999)
    load_checkpoint(tmp_path / "c.safetensors").load_training_state(opt)
    torch.testing.assert_close(torch.rand(3), expected)


def test_checkpoint_for_another_model_is_refused(tmp_path):
    model, opt, _ = make("sgd")
    save_checkpoint(tmp_path / "c.safetensors", model=model, spec=SPEC, optimizer=opt)
    with pytest.raises(CheckpointError, match="checkpoint is for model 'mlp', expected 'resnet9'"):
        load_checkpoint(tmp_path / "c.safetensors", expect_model="resnet9")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    model, _, _ = make("sgd")
    save_checkpoint(tmp_path / "m.safetensors", model=model, spec=SPEC)
    other = ModelSpec("mlp", 1, 3, 4, ["a", "b", "c"], [0.5], [0.25], {"hidden": [16]}).build()
    with pytest.raises(CheckpointError, match=r"weights do not fit model 'mlp'.*expected shape"):
        load_checkpoint(tmp_path / "m.safetensors").load_model(other)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.safetensors"
    doc = {"format": "foveal", "format_version": 99, "foveal_version": "9.0", "model": {}}
    safetensors.torch.save_file({"model/w": torch.zeros(1)}, path,
                                metadata={"foveal": json.dumps(doc)})
    with pytest.raises(CheckpointError, match="format version <= 1, got 99"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x10\x00\x00\x00"])
def test_corrupt_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_plain_safetensors_without_foveal_metadata_is_refused(tmp_path):
    safetensors.torch.save_file({"w": torch.zeros(1)}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="expected a foveal checkpoint"):
        load_checkpoint(tmp_path / "x.safetensors")


def test_exported_model_cannot_be_resumed(tmp_path):
    model, opt, _ = make("sgd")
    save_checkpoint(tmp_path / "m.safetensors", model=model, spec=SPEC)
    with pytest.raises(CheckpointError, match="expected a training checkpoint"):
        load_checkpoint(tmp_path / "m.safetensors").load_training_state(opt)


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, opt, _ = make("sgd")
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model=model, spec=SPEC, optimizer=opt, state={"step": 1})
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("foveal.atomic.os.fsync", explode)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=model, spec=SPEC, optimizer=opt, state={"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]
