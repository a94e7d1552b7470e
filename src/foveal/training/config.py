"""The training configuration: every choice a run makes, in one serialisable dataclass.

A run folder's ``config.json`` is :meth:`TrainConfig.to_json`, and
``TrainConfig.from_json(json.load(...))`` rebuilds it, which is how ``--resume`` continues a run
with exactly the settings it started with.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

from foveal.errors import ConfigError

OPTIMIZER_NAMES: tuple[str, ...] = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "muon")
TRAIN_SCHEDULE_NAMES: tuple[str, ...] = (
    "cosine", "linear", "step", "constant", "multistep", "exponential", "inverse_sqrt",
    "one_cycle", "plateau",
)
INIT_NAMES: tuple[str, ...] = (
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
    "lecun_uniform", "lecun_normal",
)
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
        train_subset: train on this many images only (a fixed, class-balanced draw; for short
            schedules), ``None`` for all.
    Model:
        model: a name from :func:`foveal.models.model_names`.
        model_options: keyword arguments of the model (e.g. ``{"width": 16}``).
    Optimisation (:mod:`foveal.training.optimizers`, :mod:`foveal.training.schedules`):
        optimizer: ``sgd`` (with ``momentum`` and ``nesterov``), ``adamw`` or ``adam`` (with
            ``betas``), ``rmsprop`` or ``adagrad`` (torch's defaults), or ``muon``: Muon on the
            hidden weight matrices and AdamW (rate ``adamw_lr``, default ``lr``) on the rest.
        lookahead_k, lookahead_alpha: wrap the optimizer in Lookahead (``k = 0``: off).
        lr: peak learning rate; weight_decay: decoupled for AdamW/Muon, L2 in the gradient for
            the others; decay_norm_and_bias: False exempts parameters with ``ndim < 2``.
        schedule: ``cosine``, ``linear``, ``step``, ``constant``, ``multistep`` (at
            ``milestones``, fractions of the post-warmup steps), ``exponential`` (down to
            ``final_lr_fraction``), ``inverse_sqrt`` (needs warmup), ``one_cycle`` (with
            ``pct_start``; no warmup) or ``plateau`` (× ``gamma`` when the test loss has not
            improved for ``plateau_patience`` epochs), after ``warmup_epochs``.
        final_lr_fraction: the rate at the end as a fraction of ``lr`` (cosine, linear,
            exponential).
        step_epochs, gamma: ``step`` multiplies the rate by ``gamma`` every ``step_epochs``.
        grad_accum: step the optimizer every this many batches of ``batch_size`` (the gradient
            of their mean loss), so the effective batch is ``grad_accum × batch_size``.
        grad_clip: clip the global gradient L2 norm to this value (``None``: off).
    Regularisation (:mod:`foveal.training.regularization`):
        label_smoothing: ε of the smoothed cross-entropy target ``(1 − ε) onehot + ε / K``.
        l1, l2: add ``l1 Σ|w| + (l2 / 2) Σ w²`` over the weights (``ndim >= 2``) to the loss
            (both: elastic net; with SGD, ``l2`` equals ``weight_decay`` on those weights).
        max_norm: after each step rescale each unit's incoming weight vector to norm at most
            this (``None``: off).
        ema_decay: keep an exponential moving average of the weights with this decay (and
            TensorFlow's warmup ``min(d, (1 + n)/(10 + n))``), and evaluate and export it
            (0: off).
        Dropout, stochastic depth and DropConnect are model options (``model_options``).
    Augmentation (training batches only, :mod:`foveal.data.augment`):
        crop_padding, flip, cutout: see :class:`foveal.data.augment.Augment`.
        alternating_flip: airbench's deterministic alternating flip instead of ``flip``.
        color_jitter: ``[brightness, contrast, saturation, hue]`` strengths (RGB only).
        rand_augment_ops, rand_augment_magnitude: RandAugment's ``N`` and ``M`` (``N = 0``: off).
        mixup, cutmix: Beta(α, α) parameters (0: off); with both, each mixed batch uses one of
            the two with probability ½; mix_prob: the fraction of batches mixed.
    Initialisation and transfer:
        init: ``default`` (each layer's own) or a scheme of :func:`foveal.models.init.init_weights`.
        zero_init_residual: γ = 0 in the last norm layer of every residual branch.
        init_from: a model file, checkpoint or run folder whose weights (names and shapes that
            match) start the model; the classifier head stays new.
        head: module names of the classifier head (default: the last ``nn.Linear``).
        freeze_backbone: train the head only; backbone_lr_scale: the backbone's rate as a
            fraction of ``lr`` (fine-tuning with a lower rate).
    Evaluation:
        tta_flip: average the logits of each test image and its mirror.
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
    train_subset: int | None = None
    optimizer: str = "sgd"
    adamw_lr: float | None = None
    lookahead_k: int = 0
    lookahead_alpha: float = 0.5
    decay_norm_and_bias: bool = True
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
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    pct_start: float = 0.3
    plateau_patience: int = 2
    grad_accum: int = 1
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    max_norm: float | None = None
    ema_decay: float = 0.0
    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0
    alternating_flip: bool = False
    color_jitter: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    rand_augment_ops: int = 0
    rand_augment_magnitude: int = 9
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    init: str = "default"
    zero_init_residual: bool = False
    init_from: str | None = None
    head: list[str] | None = None
    freeze_backbone: bool = False
    backbone_lr_scale: float = 1.0
    tta_flip: bool = False
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
        self.milestones = [float(m) for m in self.milestones]
        self.color_jitter = [float(c) for c in self.color_jitter]
        if self.head is not None:
            self.head = [self.head] if isinstance(self.head, str) else list(self.head)
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
        self._validate_toolkit(check)

    def _validate_toolkit(self, check: Any) -> None:
        """The optimisation, regularisation, augmentation and transfer settings."""
        check(self.train_subset is None or self.train_subset >= 1,
              f"train_subset must be at least 1 or None, got {self.train_subset}")
        check(self.adamw_lr is None or self.adamw_lr > 0,
              f"adamw_lr must be positive or None, got {self.adamw_lr}")
        check(self.adamw_lr is None or self.optimizer == "muon",
              f"adamw_lr applies to optimizer 'muon' only, got optimizer {self.optimizer!r}")
        check(self.lookahead_k >= 0, f"lookahead_k must be >= 0 (0: off), got {self.lookahead_k}")
        check(0 < self.lookahead_alpha <= 1,
              f"lookahead_alpha must be in (0, 1], got {self.lookahead_alpha}")
        check(self.grad_accum >= 1, f"grad_accum must be at least 1, got {self.grad_accum}")
        check(self.checkpoint_every % self.grad_accum == 0,
              f"checkpoint_every ({self.checkpoint_every}) must be a multiple of grad_accum "
              f"({self.grad_accum}): checkpoints fall between accumulation groups")
        ms = self.milestones
        check(bool(ms) and all(0 < m < 1 for m in ms)
              and all(a < b for a, b in itertools.pairwise(ms)),
              f"milestones must be increasing fractions in (0, 1), got {ms}")
        check(0 < self.pct_start < 1, f"pct_start must be in (0, 1), got {self.pct_start}")
        check(self.plateau_patience >= 0,
              f"plateau_patience must be >= 0, got {self.plateau_patience}")
        check(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        check(0 <= self.final_lr_fraction <= 1,
              f"final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}")
        check(self.schedule != "exponential" or self.final_lr_fraction > 0,
              "schedule 'exponential' decays to final_lr_fraction, which must be > 0, got 0")
        check(self.schedule != "one_cycle" or self.warmup_epochs == 0,
              "schedule 'one_cycle' ramps up over pct_start itself: expected warmup_epochs=0, "
              f"got {self.warmup_epochs}")
        check(self.schedule != "inverse_sqrt" or self.warmup_epochs > 0,
              "schedule 'inverse_sqrt' is normalised at the end of warmup: expected "
              "warmup_epochs > 0, got 0")
        for name in ("l1", "l2", "mixup", "cutmix"):
            value = getattr(self, name)
            check(value >= 0, f"{name} must be >= 0, got {value}")
        check(self.max_norm is None or self.max_norm > 0,
              f"max_norm must be positive or None, got {self.max_norm}")
        check(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        check(not (self.flip and self.alternating_flip),
              "flip and alternating_flip are two ways to mirror: choose one, got both")
        check(len(self.color_jitter) == 4 and all(c >= 0 for c in self.color_jitter)
              and self.color_jitter[3] <= 0.5,
              "color_jitter must be [brightness, contrast, saturation, hue] >= 0 with hue <= "
              f"0.5, got {self.color_jitter}")
        check(self.rand_augment_ops >= 0,
              f"rand_augment_ops must be >= 0, got {self.rand_augment_ops}")
        check(0 <= self.rand_augment_magnitude <= 30,
              f"rand_augment_magnitude must be in [0, 30], got {self.rand_augment_magnitude}")
        check(0 < self.mix_prob <= 1, f"mix_prob must be in (0, 1], got {self.mix_prob}")
        check(self.init in INIT_NAMES,
              f"unknown init {self.init!r}: expected one of {', '.join(INIT_NAMES)}")
        check(self.backbone_lr_scale > 0,
              f"backbone_lr_scale must be > 0 (freeze_backbone for 0), got "
              f"{self.backbone_lr_scale}")
        check(not (self.freeze_backbone and self.backbone_lr_scale != 1.0),
              "freeze_backbone trains the head only, so backbone_lr_scale has no effect: "
              f"got freeze_backbone with backbone_lr_scale={self.backbone_lr_scale}")
        check(not (self.optimizer == "muon" and not self.decay_norm_and_bias),
              "decay_norm_and_bias=False with optimizer 'muon': Muon's AdamW part decays all "
              "its parameters alike; set weight_decay instead")
        check(not (self.optimizer == "muon" and self.head is not None and len(self.head) > 1),
              f"optimizer 'muon' keeps one head module out of Muon, got head={self.head}")
        check(not (self.freeze_backbone and self.optimizer == "muon"),
              "freeze_backbone with optimizer 'muon': a linear head has no hidden matrix for "
              "Muon; use sgd or adamw")
        check(not (self.backbone_lr_scale != 1.0 and (self.optimizer == "muon"
                                                       or not self.decay_norm_and_bias)),
              "backbone_lr_scale builds its own parameter groups: it works with "
              "decay_norm_and_bias and an optimizer other than 'muon'")
        if self.engine == "scratch":
            used = [name for name, on in (
                ("lookahead_k", self.lookahead_k), ("grad_accum", self.grad_accum != 1),
                ("l1", self.l1), ("l2", self.l2), ("max_norm", self.max_norm),
                ("ema_decay", self.ema_decay), ("alternating_flip", self.alternating_flip),
                ("color_jitter", any(self.color_jitter)), ("rand_augment_ops",
                                                           self.rand_augment_ops),
                ("mixup", self.mixup), ("cutmix", self.cutmix), ("init", self.init != "default"),
                ("zero_init_residual", self.zero_init_residual), ("init_from", self.init_from),
                ("freeze_backbone", self.freeze_backbone), ("tta_flip", self.tta_flip),
                ("train_subset", self.train_subset),
                ("decay_norm_and_bias=False", not self.decay_norm_and_bias),
                ("backbone_lr_scale", self.backbone_lr_scale != 1.0),
                ("schedule", self.schedule not in ("cosine", "linear", "step", "constant")),
            ) if on]
            check(not used, f"the scratch engine does not support {', '.join(used)}: use the "
                  "torch engine")

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
