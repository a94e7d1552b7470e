"""Named training recipes: ``foveal train --preset NAME``.

- ``demo``: a narrow ResNet-9 on the built-in 8×8 digits; the README's main job.
- ``cifar10``: ResNet-9 on CIFAR-10 with the DAWNBench recipe (Page, 2018): SGD-Nesterov,
  batch 512, label smoothing 0.2, crop with 4-pixel reflect padding, flip and 8×8 cutout.
- ``classic``: the PyTorch CIFAR-10 tutorial exactly: the small CNN, plain SGD with lr 0.001
  and momentum 0.9, batch 4, 2 epochs, no augmentation. Known to land near 50–60% test accuracy.
- ``mnist``: the small CNN on MNIST with small translations; reaches 99%.
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
}


def preset(name: str) -> TrainConfig:
    """A copy of preset ``name``; an unknown name raises :class:`ConfigError` listing them."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name].replace()
