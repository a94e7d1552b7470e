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

CIFAR-10 recipes: each is the full schedule of its source, meant for a GPU (``bench/recipes.py``
runs them, or shortened versions on a CPU, and records accuracy, epochs, time and machine).

- ``cifar10-resnet18``: ``resnet18_cifar`` with the schedule of kuangliu/pytorch-cifar
  (``main.py``; 93.02% in its README): SGD lr 0.1, momentum 0.9 (not Nesterov), weight decay
  5e-4, batch 128, cosine over 200 epochs, 4-pixel crop and flip.
- ``cifar10-resnet56``: ``resnet56`` as He et al. 2016, §4.2 (6.97% error, Table 6): SGD lr 0.1,
  momentum 0.9, weight decay 1e-4, batch 128, 64k iterations (164 epochs of 390 steps) with the
  rate ÷10 at 32k and 48k (``multistep`` at 0.5 and 0.75), 4-pixel crop and flip.
- ``cifar10-vit``: ``vit_cifar`` sized as omihub777/ViT-CIFAR (README: 91.01%, 6.3M parameters:
  D 384, 7 layers, 12 heads, MLP 384, 4×4 patches, no dropout) with its schedule: Adam lr 1e-3
  (L2 5e-5), batch 128, 200 epochs, 5 warm-up epochs then cosine to 1e-5, label smoothing 0.1,
  crop and flip; its AutoAugment is replaced by RandAugment (2 ops, magnitude 9).
- ``cifar10-convnext``: ``convnext_cifar``. No published CIFAR-10 schedule exists for it, so
  this takes ConvNeXt's ImageNet recipe (Liu et al. 2022, Appendix A.1, Table 5: AdamW,
  weight decay 0.05, warm-up then cosine, RandAugment m9, mixup 0.8, cutmix 1.0, label
  smoothing 0.1, stochastic depth) with a CIFAR-length schedule: batch 128, lr 1e-3, 200 epochs,
  10 warm-up epochs; no EMA.
- ``cifar10-airbench``: the airbench94 recipe (Jordan 2024, arXiv:2404.00498; code
  ``airbench94.py``: 94.01% mean over 1,000 runs) on ``airbench``: SGD-Nesterov, momentum 0.85,
  batch 1024, about 10 epochs, label smoothing 0.2, 2-pixel reflect-padded crop, alternating
  flip, flip test-time augmentation. The reference sums the loss over
  the batch of 1,024 with rate 11.5 / (1024 (1 + 1/(1 − μ))), i.e. 11.5 / 7.67 = 1.5 for a mean
  loss, and shrinks the weights by 0.0153 / 7.67 = 0.0020 per step: weight decay 1.33e-3 at
  lr 1.5 (the product ``η λ`` is what matters). Its
  triangular rate (0.2 → 1 at 23% → 0.07) becomes linear warm-up over 2.3 epochs and linear decay
  to 0.07. Not reproduced: the 64× rate of BN biases, freezing the whitening bias after 3 epochs,
  the Lookahead-EMA with its rising decay (``lookahead_k=5`` gives Lookahead with a fixed α,
  which slows short runs: see the ``+ lookahead`` row of ``bench/ablation.py``), and the
  translated TTA views.
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
    "cifar10-resnet18": TrainConfig(
        dataset="cifar10", model="resnet18_cifar", epochs=200, batch_size=128, optimizer="sgd",
        lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4, schedule="cosine",
        crop_padding=4, flip=True,
    ),
    "cifar10-resnet56": TrainConfig(
        dataset="cifar10", model="resnet56", epochs=164, batch_size=128, optimizer="sgd",
        lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4, schedule="multistep",
        milestones=[0.5, 0.75], gamma=0.1, crop_padding=4, flip=True,
    ),
    "cifar10-vit": TrainConfig(
        dataset="cifar10", model="vit_cifar",
        model_options={"embed_dim": 384, "depth": 7, "num_heads": 12, "mlp_dim": 384,
                       "drop_path": 0.0},
        epochs=200, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=5e-5,
        schedule="cosine", warmup_epochs=5, final_lr_fraction=0.01, label_smoothing=0.1,
        crop_padding=4, flip=True, rand_augment_ops=2, rand_augment_magnitude=9,
    ),
    "cifar10-convnext": TrainConfig(
        dataset="cifar10", model="convnext_cifar", model_options={"drop_path_rate": 0.1},
        epochs=200, batch_size=128, optimizer="adamw", lr=1e-3, weight_decay=0.05,
        schedule="cosine", warmup_epochs=10, label_smoothing=0.1, crop_padding=4, flip=True,
        rand_augment_ops=2, rand_augment_magnitude=9, mixup=0.8, cutmix=1.0,
    ),
    "cifar10-airbench": TrainConfig(
        dataset="cifar10", model="airbench", epochs=10, batch_size=1024, optimizer="sgd",
        lr=1.5, momentum=0.85, nesterov=True, weight_decay=1.33e-3, schedule="linear",
        warmup_epochs=2.3, final_lr_fraction=0.07, label_smoothing=0.2, crop_padding=2,
        alternating_flip=True, tta_flip=True,
        eval_batch_size=2000,
    ),
}

CIFAR10_RECIPES: tuple[str, ...] = ("cifar10-resnet18", "cifar10-resnet56", "cifar10-vit",
                                    "cifar10-convnext", "cifar10-airbench")
"""The named CIFAR-10 recipes, each with its published (or stated) full GPU schedule."""


def preset(name: str) -> TrainConfig:
    """A copy of preset ``name``; an unknown name raises :class:`ConfigError` listing them."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name].replace()
