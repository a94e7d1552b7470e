"""Checkpoints: a save/load round trip must continue training exactly like no interruption."""

import json

import pytest
import safetensors.torch
import torch

from foveal.errors import CheckpointError
from foveal.training.checkpoint import (
    ModelSpec,
    decode_tree,
    encode_tree,
    load_checkpoint,
    save_checkpoint,
)
from foveal.training.optimizers import build_optimizer
from foveal.training.regularization import WeightEMA

SPEC = ModelSpec("mlp", 1, 3, 4, ["a", "b", "c"], [0.5], [0.25], {"hidden": [8], "dropout": 0.0})


def make(optimizer):
    torch.manual_seed(0)
    model = SPEC.build()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                              weight_decay=1e-3)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    else:  # nested states: Lookahead around Muon + AdamW, with a list of slow weights
        opt = build_optimizer("muon", model, lr=0.02, weight_decay=0.01, lookahead_k=3)
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


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "lookahead-muon"])
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
    with pytest.raises(CheckpointError, match="format version <= 2, got 99"):
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


def test_state_tree_round_trip_keeps_integer_keys_and_tensors():
    tree = {"state": {0: {"step": torch.tensor(3.0), "buf": torch.ones(2)}},
            "groups": [{"lr": 0.1, "betas": (0.9, 0.99), "name": None}], "flag": True}
    tensors: dict = {}
    encoded = encode_tree(tree, "optim", tensors)
    back = decode_tree(json.loads(json.dumps(encoded)), tensors)
    assert set(tensors) == {"optim/state/0/step", "optim/state/0/buf"}
    assert list(back["state"]) == [0]
    torch.testing.assert_close(back["state"][0]["buf"], torch.ones(2))
    assert back["groups"][0]["betas"] == [0.9, 0.99] and back["flag"] is True


def test_version_1_flat_optimizer_state_is_still_read(tmp_path):
    model, opt, _ = make("sgd")
    run(model, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0), 2, seed=1)
    state = opt.state_dict()
    tensors = {f"model/{k}": v.contiguous() for k, v in model.state_dict().items()}
    for i, entries in state["state"].items():
        tensors.update({f"optim/{i}/{k}": v for k, v in entries.items()})
    doc = {"format": "foveal", "format_version": 1, "foveal_version": "0.1", "kind": "checkpoint",
           "model": SPEC.to_json(), "state": {},
           "optimizer": {"param_groups": state["param_groups"], "scalars": {}}}
    path = tmp_path / "v1.safetensors"
    safetensors.torch.save_file(tensors, path, metadata={"foveal": json.dumps(doc)})
    _, fresh, _ = make("sgd")
    load_checkpoint(path).load_training_state(fresh)
    torch.testing.assert_close(fresh.state_dict()["state"][0]["momentum_buffer"],
                               state["state"][0]["momentum_buffer"])


def test_weight_average_round_trips(tmp_path):
    model, opt, sched = make("sgd")
    ema = WeightEMA(model, decay=0.9)
    run(model, opt, sched, 3, seed=1)
    ema.update_parameters(model)
    save_checkpoint(tmp_path / "c.safetensors", model=model, spec=SPEC, optimizer=opt, ema=ema)
    fresh = WeightEMA(make("sgd")[0], decay=0.9)
    load_checkpoint(tmp_path / "c.safetensors").load_ema(fresh)
    for a, b in zip(ema.state_dict().values(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="expected a weight average"):
        save_checkpoint(tmp_path / "n.safetensors", model=model, spec=SPEC, optimizer=opt)
        load_checkpoint(tmp_path / "n.safetensors").load_ema(fresh)
