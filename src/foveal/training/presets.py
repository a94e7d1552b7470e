"""Named training recipes: ``foveal train --preset NAME``.

- ``demo``: a narrow ResNet-9 on the built-in 8×8 digits; the README's main job.
- ``cifar10``: ResNet-9 on CIFAR-10 with the DAWNBench recipe (Page, 2018): SGD-Nesterov,
  batch 512, label smoothing 0.2, crop with 4-pixel reflect padding, flip and 8×8 cutout.
- ``classic``: the PyTorch CIFAR-10 tutorial exactly: the small CNN, plain SGD with lr 0.001
  and momentum 0.9, batch 4, 2 epochs, no augmentation. Known to land near 50–60% test accuracy.
- ``mnist``: the small CNN on MNIST with small translations; reaches 99%.
- ``scratch-mnist``, ``scratch-mnist-mlp``, ``scratch-cifar10``: the NumPy engine of
  :mod:`foveal.scratch` training the small CNN and a two-layer net (one hidden layer of 800
  units, as in Simard et al. 2003) on MNIST, and the small CNN on CIFAR-10, on the CPU.
"""

from __future__ import annotations

from foveal.errors import ConfigError
from foveal.training.config import TrainConfig

PRESETS: dict[str, TrainConfig] = {
    "demo": TrainConfig(
        dataset="digits", model="resnet9", model_options={"width": 16}, epochs=12,
        batch_size=64, lr=0.2, weight_decay=5e-4, warmup_epochs=1, label_smoothing=0.1,
        crop_padding=1,
    ),
    "cifar10": TrainConfig(
        dataset="cifar10", model="resnet9", epochs=24, batch_size=512, lr=0.4,
        weight_decay=5e-4, warmup_epochs=5, schedule="linear", label_smoothing=0.2,
        crop_padding=4, flip=True, cutout=8,
    ),
    "classic": TrainConfig(
        dataset="cifar10", model="small_cnn", epochs=2, batch_size=4, optimizer="sgd",
        lr=0.001, momentum=0.9, nesterov=False, weight_decay=0.0, schedule="constant",
        channels_last=False,
    ),
    "mnist": TrainConfig(
        dataset="mnist", model="small_cnn", epochs=8, batch_size=64, lr=0.05,
        weight_decay=5e-4, warmup_epochs=1, crop_padding=2,
    ),
    "scratch-mnist": TrainConfig(
        dataset="mnist", engine="scratch", model="small_cnn", epochs=4, batch_size=64, lr=0.05,
        weight_decay=5e-4, warmup_epochs=0.5, channels_last=False, bf16=False,
    ),
    "scratch-mnist-mlp": TrainConfig(
        dataset="mnist", engine="scratch", model="mlp",
        model_options={"hidden": [800], "dropout": 0.2}, epochs=10, batch_size=64, lr=0.05,
        weight_decay=1e-4, warmup_epochs=0.5, channels_last=False, bf16=False,
    ),
    "scratch-cifar10": TrainConfig(
        dataset="cifar10", engine="scratch", model="small_cnn", epochs=10, batch_size=64,
        lr=0.05, weight_decay=5e-4, warmup_epochs=0.5, crop_padding=2, flip=True,
        channels_last=False, bf16=False,
    ),
}


def preset(name: str) -> TrainConfig:
    """A copy of preset ``name``; an unknown name raises :class:`ConfigError` listing them."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name].replace()
