"""The training configuration: every choice a run makes, in one serialisable dataclass.

A run folder's ``config.json`` is :meth:`TrainConfig.to_json`, and
``TrainConfig.from_json(json.load(...))`` rebuilds it, which is how ``--resume`` continues a run
with exactly the settings it started with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from foveal.errors import ConfigError

OPTIMIZER_NAMES: tuple[str, ...] = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
# schedules the trainer can run from this config alone (the others in
# foveal.training.schedules need options such as milestones that TrainConfig does not carry)
TRAIN_SCHEDULE_NAMES: tuple[str, ...] = ("cosine", "linear", "step", "constant")
DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
ENGINE_NAMES: tuple[str, ...] = ("torch", "scratch")


@dataclass
class TrainConfig:
    """Settings of one training run. Defaults suit the built-in digits.

    Data:
        dataset: ``digits``, ``mnist``, ``cifar10`` or a path to an image folder.
        data_root: where ``mnist``/``cifar10`` files live (default: the user cache).
        download: fetch ``mnist``/``cifar10`` if absent.
        skip_corrupt: skip unreadable images with a warning instead of failing.
    Model:
        model: a name from :func:`foveal.models.model_names`.
        model_options: keyword arguments of the model (e.g. ``{"width": 16}``).
    Optimisation:
        optimizer: ``sgd`` (with ``momentum`` and ``nesterov``), ``adamw`` or ``adam`` (with
            ``betas``), ``rmsprop`` or ``adagrad`` (torch's defaults).
        lr: peak learning rate; weight_decay: decoupled for AdamW, L2 in the gradient for SGD.
        schedule: ``cosine``, ``linear``, ``step`` or ``constant``, after ``warmup_epochs``.
        final_lr_fraction: the rate at the end as a fraction of ``lr`` (cosine, linear).
        step_epochs, gamma: ``step`` multiplies the rate by ``gamma`` every ``step_epochs``.
        label_smoothing: ε of the smoothed cross-entropy target ``(1 − ε) onehot + ε / K``.
        grad_clip: clip the global gradient L2 norm to this value (``None``: off).
    Augmentation (training batches only):
        crop_padding, flip, cutout: see :class:`foveal.data.augment.Augment`.
    Execution:
        engine: ``torch`` (the default) or ``scratch``: the NumPy engine of
            :mod:`foveal.scratch`, for ``small_cnn`` and ``mlp`` on the CPU (``device``,
            ``bf16``, ``channels_last``, ``compile`` and ``deterministic`` do not apply).
        device: ``auto`` picks cuda, then mps, then cpu.
        bf16: autocast matrix work to bfloat16 on CUDA (ignored elsewhere).
        channels_last: NHWC memory format for convolutions.
        compile: wrap the model in ``torch.compile``.
        seed: seeds initialisation, shuffling and augmentation.
        deterministic: ask torch for deterministic kernels (slower on GPUs).
        checkpoint_every: also checkpoint every this many steps (0: at each epoch end only).
    """

    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    skip_corrupt: bool = False
    model: str = "resnet9"
    model_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 500
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    final_lr_fraction: float = 0.0
    step_epochs: int = 10
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    device: str = "auto"
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int = 0
    engine: str = "torch"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        from foveal.models import model_names

        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        check(self.model in model_names(),
              f"unknown model {self.model!r}: expected one of {', '.join(model_names())}")
        check(self.optimizer in OPTIMIZER_NAMES,
              f"unknown optimizer {self.optimizer!r}: expected one of {', '.join(OPTIMIZER_NAMES)}")
        check(self.schedule in TRAIN_SCHEDULE_NAMES,
              f"unknown schedule {self.schedule!r}: expected one of "
              f"{', '.join(TRAIN_SCHEDULE_NAMES)}")
        check(self.device in DEVICE_NAMES,
              f"unknown device {self.device!r}: expected one of {', '.join(DEVICE_NAMES)}")
        check(self.engine in ENGINE_NAMES,
              f"unknown engine {self.engine!r}: expected one of {', '.join(ENGINE_NAMES)}")
        if self.engine == "scratch":
            from foveal.scratch.models import SCRATCH_MODEL_NAMES

            check(self.model in SCRATCH_MODEL_NAMES,
                  f"the scratch engine has no model {self.model!r}: expected one of "
                  f"{', '.join(SCRATCH_MODEL_NAMES)}")
            check(self.optimizer in ("sgd", "adamw"),
                  f"the scratch engine trains with sgd or adamw, got optimizer {self.optimizer!r}")
        check(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")
        check(self.eval_batch_size >= 1,
              f"eval_batch_size must be at least 1, got {self.eval_batch_size}")
        check(self.lr > 0, f"lr must be positive, got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        check(0 <= self.label_smoothing < 1,
              f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        # warmup may span the whole run; the scheduler then keeps one step for the decay
        check(0 <= self.warmup_epochs <= self.epochs,
              f"warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        check(self.grad_clip is None or self.grad_clip > 0,
              f"grad_clip must be positive or None, got {self.grad_clip}")
        check(self.crop_padding >= 0, f"crop_padding must be >= 0, got {self.crop_padding}")
        check(self.cutout >= 0, f"cutout must be >= 0, got {self.cutout}")
        check(self.checkpoint_every >= 0,
              f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        check(not (self.nesterov and self.optimizer == "sgd" and self.momentum == 0),
              "nesterov momentum needs momentum > 0, got momentum=0")

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["betas"] = list(self.betas)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TrainConfig:
        """Rebuild a config; unknown keys raise :class:`ConfigError` naming them."""
        if not isinstance(doc, dict):
            raise ConfigError(f"expected a JSON object for the config, got {type(doc).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}: valid keys: {sorted(names)}")
        return cls(**doc)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        return TrainConfig.from_json({**self.to_json(), **changes})
