"""The training toolkit inside the Trainer, each feature against an independent oracle.

Oracles: torch's own schedulers (MultiStepLR, ReduceLROnPlateau) and weight decay, a large batch
against accumulated small ones, the uninterrupted run for every resumable state (Muon, Lookahead,
the weight average, plateau, mixing), closed forms (row norms, flip pairs, class counts).
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from foveal.data.augment import Augment, mixup
from foveal.data.dataset import ArrayDataset
from foveal.data.loader import InMemoryLoader, derive_seed
from foveal.errors import CheckpointError, ConfigError
from foveal.training.checkpoint import load_checkpoint
from foveal.training.config import TrainConfig
from foveal.training.evaluate import evaluate
from foveal.training.schedules import WarmupPlateau
from foveal.training.trainer import Trainer, planned_lr_curve, train

MLP = dict(model="mlp", model_options={"hidden": [32], "dropout": 0.0}, epochs=2,
           batch_size=32, lr=0.05, warmup_epochs=0, device="cpu")


def weights(run_dir, name="model.safetensors"):
    return load_checkpoint(run_dir / name).model_state()


def fit(cfg, path, pair):
    return train(cfg, path, train_set=pair[0], test_set=pair[1], progress=False)


def fit_until_crash(trainer, at_step):
    """Run ``trainer.fit()`` and interrupt it (Ctrl-C) when it reaches step ``at_step``."""
    step = trainer.train_step

    def crash(x, y, **kw):
        if trainer.step == at_step:
            raise KeyboardInterrupt
        return step(x, y, **kw)

    trainer.train_step = crash
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()


def interrupted_then_resumed(cfg, tmp_path, pair, at_step):
    """Run ``cfg`` uninterrupted and interrupted at ``at_step`` then resumed; both weights."""
    fit(cfg, tmp_path / "full", pair)
    fit_until_crash(Trainer(cfg, tmp_path / "cut", train_set=pair[0], test_set=pair[1],
                            progress=False), at_step)
    resumed = Trainer(cfg, tmp_path / "cut", train_set=pair[0], test_set=pair[1], progress=False)
    resumed.restore()
    resumed.fit()
    return weights(tmp_path / "full"), weights(tmp_path / "cut")


@pytest.fixture(scope="module")
def rgb_pair():
    """Small random RGB images with a learnable colour cue, 3 classes."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 192)
    images = rng.integers(0, 120, (192, 12, 12, 3)).astype(np.uint8)
    for k in range(3):
        images[labels == k, :, :, k] += 120
    classes = ["r", "g", "b"]
    return (ArrayDataset(images[:128], labels[:128], classes, "rgb/train"),
            ArrayDataset(images[128:], labels[128:], classes, "rgb/test"))


def test_accumulated_small_batches_equal_one_large_batch(tmp_path, digits_pair):
    # oracle: batch 64 in one step; the loader's order does not depend on the batch size
    base = TrainConfig(**{**MLP, "batch_size": 64, "train_subset": 576, "nesterov": False,
                          "momentum": 0.0, "weight_decay": 0.0})
    fit(base, tmp_path / "large", digits_pair)
    fit(base.replace(batch_size=16, grad_accum=4), tmp_path / "accum", digits_pair)
    a, b = weights(tmp_path / "large"), weights(tmp_path / "accum")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_l2_penalty_equals_torch_weight_decay_on_the_weights(tmp_path, digits_pair):
    # d/dW (λ/2 Σ W²) = λW: the same update as SGD's weight_decay = λ on the weights only
    common = {**MLP, "epochs": 1, "momentum": 0.0, "nesterov": False}
    fit(TrainConfig(**common, weight_decay=0.0, l2=0.01), tmp_path / "penalty", digits_pair)
    fit(TrainConfig(**common, weight_decay=0.01, decay_norm_and_bias=False), tmp_path / "wd",
        digits_pair)
    a, b = weights(tmp_path / "penalty"), weights(tmp_path / "wd")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_max_norm_bounds_every_unit_after_training(tmp_path, digits_pair):
    fit(TrainConfig(**{**MLP, "lr": 0.3}, max_norm=0.5), tmp_path / "run", digits_pair)
    for k, w in weights(tmp_path / "run").items():
        if w.ndim == 2:
            assert w.norm(dim=1).max() <= 0.5 + 1e-6, k


def test_multistep_schedule_equals_torch_multisteplr(tmp_path, digits_pair):
    cfg = TrainConfig(**{**MLP, "epochs": 4}, schedule="multistep", milestones=[0.5, 0.75],
                      gamma=0.2)
    trainer = Trainer(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    seen = []  # the rate each optimizer step uses
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    trainer.fit()
    total = trainer.total_steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    ref = torch.optim.lr_scheduler.MultiStepLR(opt, [round(0.5 * total), round(0.75 * total)],
                                               gamma=0.2)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    np.testing.assert_allclose(seen, expected, rtol=1e-12)
    np.testing.assert_allclose(planned_lr_curve(cfg, trainer.optimizer_steps_per_epoch), expected,
                               rtol=1e-12)
    assert (tmp_path / "run" / "plots" / "lr.png").is_file()


def test_warmup_plateau_equals_torch_reducelronplateau_after_warmup():
    losses = [1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.5, 0.6, 0.7, 0.8]
    p = torch.zeros(1, requires_grad=True)
    ours_opt = torch.optim.SGD([p], lr=0.1)
    ours = WarmupPlateau(ours_opt, 4, factor=0.5, patience=1)
    ref_opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=0.5, patience=1)
    ramp = []
    for _ in range(4):  # one epoch of warmup: the rate climbs to its base value
        ramp.append(ours_opt.param_groups[0]["lr"])
        ours_opt.step()
        ours.step()
    np.testing.assert_allclose(ramp, [0.025, 0.05, 0.075, 0.1])
    for loss in losses:
        ours.step_epoch(loss)
        ref.step(loss)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])


@pytest.mark.parametrize("changes", [
    {"optimizer": "muon", "lr": 0.02, "adamw_lr": 0.003, "weight_decay": 0.01},
    {"optimizer": "adamw", "lr": 0.003, "lookahead_k": 3, "ema_decay": 0.9},
    {"schedule": "plateau", "warmup_epochs": 1, "plateau_patience": 0, "gamma": 0.5},
    {"mixup": 0.4, "cutmix": 1.0, "mix_prob": 0.8, "crop_padding": 1, "grad_accum": 2},
], ids=["muon", "lookahead-ema", "plateau", "mixing-accum"])
def test_toolkit_state_resumes_bit_identically(tmp_path, digits_pair, changes):
    # oracle: the uninterrupted run; every piece of state must survive the checkpoint
    cfg = TrainConfig(**{**MLP, "epochs": 3, "checkpoint_every": 4, **changes})
    a, b = interrupted_then_resumed(cfg, tmp_path, digits_pair, at_step=26)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weight_average_is_evaluated_and_exported(tmp_path, digits_pair):
    cfg = TrainConfig(**MLP, ema_decay=0.8)
    trainer = Trainer(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    result = trainer.fit()
    exported = weights(tmp_path / "run")
    for k, v in trainer.ema.module.state_dict().items():
        assert torch.equal(exported[k], v)
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "test_acc_raw" in rows[-1]
    assert result.metrics["test_accuracy"] == rows[-1]["test_acc"]
    raw = dict(trainer.model.named_parameters())
    assert any(not torch.equal(raw[k], v) for k, v in trainer.ema.module.named_parameters())


def test_mix_equals_mixup_with_the_batch_generator(tmp_path, digits_pair):
    cfg = TrainConfig(**MLP, mixup=0.4)
    trainer = Trainer(cfg, tmp_path / "run", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    x, y = next(trainer.train_loader.batches(1, 3))
    got_x, got_t = trainer.mix(x, y, 1, 3)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, 1, 3, 2))
    want_x, want_t = mixup(x, y, 0.4, g, 10)
    assert torch.equal(got_x, want_x) and torch.equal(got_t, want_t)
    torch.testing.assert_close(got_t.sum(1), torch.ones(len(y)))


def test_photometric_augmentation_trains_on_rgb_and_resumes(tmp_path, rgb_pair):
    cfg = TrainConfig(**{**MLP, "batch_size": 16, "epochs": 2, "checkpoint_every": 3},
                      color_jitter=[0.4, 0.4, 0.4, 0.1], rand_augment_ops=2, alternating_flip=True)
    a, b = interrupted_then_resumed(cfg, tmp_path, rgb_pair, at_step=11)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_photometric_augmentation_on_grey_images_is_refused(tmp_path, digits_pair):
    with pytest.raises(ConfigError, match="need RGB images, got 1 channel"):
        Trainer(TrainConfig(**MLP, rand_augment_ops=1), tmp_path, train_set=digits_pair[0],
                test_set=digits_pair[1], progress=False)


def test_alternating_flip_shows_each_image_once_each_way_over_two_epochs(rgb_pair):
    loader = InMemoryLoader(rgb_pair[0], 16, shuffle=False, augment=Augment(alternating_flip=True))
    x0 = torch.cat([x for x, _ in loader.batches(0)])
    x1 = torch.cat([x for x, _ in loader.batches(1)])
    plain = torch.cat([x for x, _ in InMemoryLoader(rgb_pair[0], 16).batches(0)])
    flipped0 = ~(x0 == plain).flatten(1).all(1)
    assert torch.equal(x1, torch.where(flipped0[:, None, None, None], plain, plain.flip(-1)))
    assert 0 < int(flipped0.sum()) < len(plain)


def test_flip_tta_averages_the_logits_of_image_and_mirror(digits_pair):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    loader = InMemoryLoader(digits_pair[1], 50)
    result = evaluate(model, loader, tta_flip=True)
    x = torch.cat([x for x, _ in loader.batches(0)])
    with torch.no_grad():
        expected = (0.5 * (model(x) + model(x.flip(-1)))).softmax(1)
    np.testing.assert_allclose(result.probabilities, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_transfer_learning_keeps_the_backbone_and_trains_a_new_head(tmp_path, digits_pair):
    fit(TrainConfig(**MLP), tmp_path / "source", digits_pair)
    source = weights(tmp_path / "source")
    cfg = TrainConfig(**MLP, init_from=str(tmp_path / "source"), freeze_backbone=True)
    trainer = Trainer(cfg, tmp_path / "probe", train_set=digits_pair[0],
                      test_set=digits_pair[1], progress=False)
    head = trainer.model.state_dict()
    assert [n for n, p in trainer.model.named_parameters() if p.requires_grad] == \
        ["net.4.weight", "net.4.bias"]
    assert not torch.equal(head["net.4.weight"], source["net.4.weight"])  # a new head
    trainer.fit()
    probe = weights(tmp_path / "probe")
    for k in source:
        same = torch.equal(probe[k], source[k])
        assert same == (not k.startswith("net.4.")), k


def test_fine_tuning_gives_the_backbone_a_scaled_rate(tmp_path, digits_pair):
    cfg = TrainConfig(**MLP, backbone_lr_scale=0.1, head=["net.4"])
    trainer = Trainer(cfg, tmp_path / "ft", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert groups["backbone"]["lr"] == pytest.approx(0.1 * groups["head"]["lr"])


def test_init_from_a_different_architecture_is_refused(tmp_path, digits_pair):
    fit(TrainConfig(**{**MLP, "epochs": 1}), tmp_path / "source", digits_pair)
    cfg = TrainConfig(**{**MLP, "model_options": {"hidden": [16], "dropout": 0.0}},
                      init_from=str(tmp_path / "source"))
    with pytest.raises(CheckpointError, match="expected weights matching the backbone"):
        Trainer(cfg, tmp_path / "t", train_set=digits_pair[0], test_set=digits_pair[1],
                progress=False)


def test_init_schemes_and_zero_init_residual_are_applied(tmp_path, digits_pair):
    cfg = TrainConfig(**{**MLP, "model": "resnet20", "model_options": {}},
                      init="xavier_uniform", zero_init_residual=True)
    trainer = Trainer(cfg, tmp_path / "r", train_set=digits_pair[0], test_set=digits_pair[1],
                      progress=False)
    blocks = [m for m in trainer.model.modules() if getattr(m, "last_bn", None) is not None]
    assert blocks and all(torch.all(b.last_bn.weight == 0) for b in blocks)
    fc = trainer.model.fc
    bound = (6 / (fc.in_features + fc.out_features)) ** 0.5  # Glorot & Bengio's uniform limit
    assert fc.weight.abs().max() <= bound and torch.all(fc.bias == 0)


def test_train_subset_is_class_balanced(digits_pair):
    sub = digits_pair[0].balanced_subset(95, seed=3)
    counts = np.bincount(sub.labels, minlength=10)
    assert len(sub) == 95 and counts.max() - counts.min() <= 1
    assert np.array_equal(sub.labels, digits_pair[0].balanced_subset(95, seed=3).labels)


@pytest.mark.parametrize(("changes", "message"), [
    ({"flip": True, "alternating_flip": True}, "choose one"),
    ({"schedule": "one_cycle", "warmup_epochs": 1}, "expected warmup_epochs=0"),
    ({"schedule": "inverse_sqrt"}, "expected warmup_epochs > 0"),
    ({"schedule": "exponential"}, "must be > 0"),
    ({"optimizer": "muon", "freeze_backbone": True}, "freeze_backbone with optimizer 'muon'"),
    ({"adamw_lr": 0.01}, "applies to optimizer 'muon' only"),
    ({"freeze_backbone": True, "backbone_lr_scale": 0.1}, "has no effect"),
    ({"milestones": [0.8, 0.4]}, "increasing fractions"),
    ({"color_jitter": [0.4, 0.4]}, r"\[brightness, contrast, saturation, hue\]"),
    ({"grad_accum": 2, "checkpoint_every": 3}, "multiple of grad_accum"),
    ({"optimizer": "muon", "decay_norm_and_bias": False}, "decays all its parameters alike"),
    ({"engine": "scratch", "model": "small_cnn", "backbone_lr_scale": 0.5},
     "scratch engine does not"),
    ({"engine": "scratch", "model": "small_cnn", "mixup": 0.2}, "scratch engine does not"),
])
def test_incompatible_settings_are_refused_with_a_reason(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{**MLP, **changes})


def test_resume_does_not_need_the_transfer_source(tmp_path, digits_pair):
    # the checkpoint holds every weight: a moved or deleted --init-from source must not matter
    fit(TrainConfig(**{**MLP, "epochs": 1}), tmp_path / "source", digits_pair)
    cfg = TrainConfig(**{**MLP, "epochs": 2, "checkpoint_every": 4},
                      init_from=str(tmp_path / "source"))
    fit_until_crash(Trainer(cfg, tmp_path / "run", train_set=digits_pair[0],
                            test_set=digits_pair[1], progress=False), 9)
    (tmp_path / "source" / "model.safetensors").unlink()
    (tmp_path / "source" / "checkpoint.safetensors").unlink()
    train(cfg, tmp_path / "run", resume=True, train_set=digits_pair[0], test_set=digits_pair[1],
          progress=False)


def test_a_head_name_that_is_not_a_module_is_refused(tmp_path, digits_pair):
    fit(TrainConfig(**{**MLP, "epochs": 1}), tmp_path / "source", digits_pair)
    for head in (["classifier"], ["net.4.weight"]):
        cfg = TrainConfig(**MLP, init_from=str(tmp_path / "source"), head=head)
        with pytest.raises(ConfigError, match="to name a module with parameters"):
            Trainer(cfg, tmp_path / "t", train_set=digits_pair[0], test_set=digits_pair[1],
                    progress=False)


def test_plateau_checkpoint_header_is_strict_json(tmp_path, digits_pair):
    cfg = TrainConfig(**MLP, schedule="plateau")
    fit(cfg, tmp_path / "run", digits_pair)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    json.loads(json.dumps(ckpt.doc), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))


def test_flip_tta_is_kept_by_the_exported_classifier(tmp_path, digits_pair):
    from foveal.models.classifier import Classifier
    from foveal.training.evaluate import evaluate_classifier

    result = fit(TrainConfig(**{**MLP, "epochs": 1}, tta_flip=True), tmp_path / "run",
                 digits_pair)
    classifier = Classifier.from_file(tmp_path / "run", device="cpu")
    assert classifier.tta_flip
    metrics, _ = evaluate_classifier(classifier, digits_pair[1])
    assert metrics["test_accuracy"] == result.metrics["test_accuracy"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"train_subset": 600}, "smaller than the training set"),
    ({"grad_accum": 50}, "at most the 18 batches"),
])
def test_settings_that_do_not_fit_the_data_are_refused(tmp_path, digits_pair, changes, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(TrainConfig(**MLP, **changes), tmp_path, train_set=digits_pair[0],
                test_set=digits_pair[1], progress=False)
