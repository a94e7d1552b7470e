"""Named training recipes: every preset is a valid config, and the CIFAR-10 recipes carry the
schedules of their sources.

Oracles: the published settings quoted in :mod:`foveal.training.presets` (He et al. 2016, §4.2:
64k iterations, ÷10 at 32k and 48k; airbench94's decoupled hyper-parameters, converted by closed
form), the schedule multipliers of :func:`foveal.training.schedules.lr_multiplier`, and the
models' own output shapes.
"""

import numpy as np
import pytest
import torch

import foveal.models  # noqa: F401  (fills the registry)
from foveal.data.dataset import ArrayDataset
from foveal.errors import ConfigError
from foveal.models.airbench import patch_whitening_weights
from foveal.models.registry import build_model
from foveal.training.config import TrainConfig
from foveal.training.presets import CIFAR10_RECIPES, PRESETS, preset
from foveal.training.schedules import lr_multiplier

CIFAR_TRAIN = 50_000


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_config_that_round_trips(name):
    config = preset(name)
    assert isinstance(config, TrainConfig)
    config.validate()
    assert TrainConfig.from_json(config.to_json()) == config


def test_preset_returns_a_copy():
    config = preset("cifar10-vit")
    config.model_options["depth"] = 1
    assert PRESETS["cifar10-vit"].model_options["depth"] == 7


def test_unknown_preset_lists_the_names():
    with pytest.raises(ConfigError, match="unknown preset 'cifar10-vgg': expected one of demo"):
        preset("cifar10-vgg")


def test_the_five_cifar10_recipes_are_registered():
    assert set(CIFAR10_RECIPES) <= set(PRESETS)
    assert {preset(n).model for n in CIFAR10_RECIPES} == {
        "resnet18_cifar", "resnet56", "vit_cifar", "convnext_cifar", "airbench"}
    assert all(preset(n).dataset == "cifar10" for n in CIFAR10_RECIPES)


@pytest.mark.parametrize("name", CIFAR10_RECIPES)
def test_recipe_model_builds_at_32x32(name):
    config = preset(name)
    torch.manual_seed(0)
    model = build_model(config.model, in_channels=3, num_classes=10, image_size=32,
                        **config.model_options).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_vit_recipe_is_the_6_3m_model_of_its_source():
    # omihub777/ViT-CIFAR README: D 384, 7 layers, 12 heads, MLP 384, "6.3 M" parameters.
    config = preset("cifar10-vit")
    with torch.device("meta"):
        model = build_model(config.model, in_channels=3, num_classes=10, image_size=32,
                            **config.model_options)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 6.3


def test_resnet56_recipe_is_64k_iterations_divided_by_10_at_32k_and_48k():
    config = preset("cifar10-resnet56")
    steps_per_epoch = CIFAR_TRAIN // config.batch_size  # the trainer drops the last batch
    total = config.epochs * steps_per_epoch
    assert abs(total - 64_000) / 64_000 < 0.005
    f = lr_multiplier(config.schedule, total, milestones=config.milestones, gamma=config.gamma)
    lr = [config.lr * f(t) for t in (0, 31_900, 32_100, 47_900, 48_100, total - 1)]
    np.testing.assert_allclose(lr, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-9)
    assert (config.momentum, config.weight_decay, config.nesterov) == (0.9, 1e-4, False)


def test_airbench_recipe_matches_the_reference_hyperparameters():
    config = preset("cifar10-airbench")
    # airbench94: lr 11.5 and weight decay 0.0153 "per 1024 examples", Nesterov μ = 0.85, loss
    # summed over the batch; for a mean loss the rate is 11.5 / (1 + 1/(1 − μ)) and the weights
    # shrink by 0.0153 / (1 + 1/(1 − μ)) per step.
    scale = 1 + 1 / (1 - 0.85)
    assert config.batch_size == 1024 and config.momentum == 0.85 and config.nesterov
    assert config.lr == pytest.approx(11.5 / scale, rel=0.01)
    assert config.lr * config.weight_decay == pytest.approx(0.0153 / scale, rel=0.01)
    assert config.label_smoothing == 0.2 and config.crop_padding == 2
    assert config.alternating_flip and not config.flip and config.tta_flip
    assert config.lookahead_k == 0  # fixed-α Lookahead is not airbench's rising-decay EMA
    # triangular schedule: peak at 23% of the run, 7% of the peak at the end
    assert config.warmup_epochs / config.epochs == pytest.approx(0.23)
    assert config.final_lr_fraction == 0.07


def tiny_split(n: int, seed: int) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return ArrayDataset(images, np.arange(n) % 10, [str(i) for i in range(10)], "synthetic")


@pytest.fixture
def no_report(monkeypatch):
    """Skip the run report's plots (seconds of matplotlib); the recipes are under test here."""
    import foveal.report.classification
    import foveal.report.schedules

    monkeypatch.setattr(foveal.report.classification, "write_classification_report",
                        lambda run_dir, *, metrics, **_: metrics)
    monkeypatch.setattr(foveal.report.schedules, "plot_lr_schedule", lambda lrs, path, **_: path)


# Narrow models so one epoch of each recipe takes about a second on one thread.
SMOKE_OPTIONS = {
    "cifar10-resnet18": None,  # no width option: the full network (slow)
    "cifar10-resnet56": {},
    "cifar10-vit": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 32},
    "cifar10-convnext": {"drop_path_rate": 0.1},
    "cifar10-airbench": {"widths": [8, 16, 16]},
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if SMOKE_OPTIONS[n] is None else n for n in CIFAR10_RECIPES])
def test_recipe_trains_one_epoch_with_every_setting(name, tmp_path, no_report):
    from foveal.training.trainer import train

    changes = dict(epochs=1, batch_size=16, eval_batch_size=16, device="cpu", bf16=False,
                   warmup_epochs=min(preset(name).warmup_epochs, 1))
    if SMOKE_OPTIONS[name]:
        changes["model_options"] = SMOKE_OPTIONS[name]
    config = preset(name).replace(**changes)
    result = train(config, tmp_path / "run", train_set=tiny_split(48, 0),
                   test_set=tiny_split(20, 1), progress=False)
    assert 0 <= result.metrics["test_accuracy"] <= 1
    assert np.isfinite(result.metrics["train_loss"])


def test_trainer_whitens_airbench_from_the_first_normalised_training_images(tmp_path,
                                                                          no_report):
    """The trainer calls ``data_init`` on fresh runs, with the first min(5000, N) normalised,
    unaugmented training images; the stem's filters are frozen, so they are still the
    whitening filters of those images after training."""
    from foveal.training.trainer import Trainer

    train_set = tiny_split(48, 0)
    config = preset("cifar10-airbench").replace(
        epochs=1, batch_size=16, eval_batch_size=16, device="cpu", bf16=False, warmup_epochs=1,
        model_options={"widths": [8, 16, 16]}, channels_last=False)
    trainer = Trainer(config, tmp_path / "run", train_set=train_set, test_set=tiny_split(20, 1),
                      progress=False, log=lambda _: None)
    trainer.fit()
    mean, std = train_set.channel_stats()
    x = torch.from_numpy(train_set.images).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(trainer.model.whiten.weight, patch_whitening_weights(x), atol=1e-4)
