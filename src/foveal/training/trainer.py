"""Supervised image-classification training: a loop you can read top to bottom.

One step on a batch ``(x, y)`` minimises the label-smoothed cross-entropy

    L = −(1/B) Σ_i Σ_k q_ik log softmax(f(x_i))_k,   q_ik = (1 − ε)·[k = y_i] + ε/K,

with the optimizer from :func:`build_optimizer`, then advances the learning-rate schedule.

Reproducibility and resumption: the model is initialised from ``seed``, and every epoch's shuffle
and every batch's augmentation come from generators seeded by ``(seed, epoch, batch)`` (see
:class:`foveal.data.loader.InMemoryLoader`). A checkpoint records the global step, so a resumed
run continues with exactly the batches the interrupted one would have seen next.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from foveal.atomic import atomic_write_json, atomic_write_text
from foveal.data.augment import Augment, cutmix, mixup
from foveal.data.dataset import ArrayDataset
from foveal.data.loader import InMemoryLoader, derive_seed
from foveal.errors import CheckpointError, ConfigError, FovealError, TrainingError
from foveal.training.checkpoint import ModelSpec, load_checkpoint, save_checkpoint
from foveal.training.config import TrainConfig
from foveal.training.evaluate import EvalResult, autocast_context, evaluate
from foveal.training.optimizers import build_optimizer as build_named_optimizer
from foveal.training.optimizers import default_head_name
from foveal.training.regularization import WeightEMA, apply_max_norm_, elastic_net_penalty
from foveal.training.schedules import WarmupPlateau, lr_multiplier

CHECKPOINT_FILE = "checkpoint.safetensors"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HISTORY_FILE = "metrics.jsonl"


def select_device(name: str = "auto") -> torch.device:
    """``auto`` → the first of cuda, mps, cpu that is available; otherwise the named device.

    Asking for an unavailable device raises :class:`ConfigError`.
    """
    mps = getattr(torch.backends, "mps", None)
    has_mps = mps is not None and mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested, but torch sees no CUDA device")
    if name == "mps" and not has_mps:
        raise ConfigError("device 'mps' requested, but torch sees no MPS device")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def head_names(config: TrainConfig, model: nn.Module) -> list[str]:
    """The classifier head's module names: ``config.head`` or the model's last ``nn.Linear``."""
    from foveal.training.diagnostics import split_head

    if config.head:
        heads = list(config.head)
    else:
        name = default_head_name(model)
        if name is None:
            raise ConfigError(
                f"model {config.model!r} has no nn.Linear head to keep apart: name it with head"
            )
        heads = [name]
    split_head(model, heads)  # each name must own parameters
    return heads


def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The config's optimizer over the model's trainable parameters, through
    :func:`foveal.training.optimizers.build_optimizer`.

    SGD (heavy-ball or Nesterov momentum, L2 weight decay), AdamW (decoupled decay), Adam,
    RMSprop, Adagrad, or Muon + AdamW; optionally inside Lookahead. PyTorch's SGD with
    ``nesterov=True`` uses the look-ahead form ``v ← μ v + g``, ``θ ← θ − η (g + μ v)``
    (Sutskever et al., 2013). With ``backbone_lr_scale ≠ 1`` the backbone and the head are two
    groups, the backbone's rate scaled (fine-tuning).
    """
    sgd = config.optimizer == "sgd"
    params: nn.Module | list = model
    if config.backbone_lr_scale != 1.0:
        from foveal.training.diagnostics import transfer_learning_param_groups

        params = transfer_learning_param_groups(
            model, head_names(config, model), config.lr, config.backbone_lr_scale)
    elif config.optimizer != "muon" and config.decay_norm_and_bias:
        params = [p for p in model.parameters() if p.requires_grad]
    extra: dict[str, Any] = {} if config.adamw_lr is None else {"adamw_lr": config.adamw_lr}
    if config.optimizer == "muon" and config.head:
        extra["head"] = head_names(config, model)[0]
    return build_named_optimizer(
        config.optimizer, params, lr=config.lr,
        weight_decay=config.weight_decay, betas=config.betas,
        momentum=config.momentum if sgd else None,
        nesterov=(config.nesterov and config.momentum > 0) if sgd else None,
        decay_biases_and_norms=config.decay_norm_and_bias,
        lookahead_k=config.lookahead_k, lookahead_alpha=config.lookahead_alpha, **extra,
    )


def build_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR | WarmupPlateau:
    """The config's schedule over ``epochs × steps_per_epoch`` optimizer steps, stepped once
    per optimizer step (``plateau`` also once per epoch, see :class:`WarmupPlateau`)."""
    total = config.epochs * steps_per_epoch
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total - 1)
    if config.schedule == "plateau":
        return WarmupPlateau(optimizer, warmup, factor=config.gamma,
                             patience=config.plateau_patience)
    multiplier = lr_multiplier(
        config.schedule, total, warmup_steps=warmup, final_fraction=config.final_lr_fraction,
        step_size=max(1, config.step_epochs * steps_per_epoch), gamma=config.gamma,
        milestones=config.milestones, pct_start=config.pct_start,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def planned_lr_curve(config: TrainConfig, steps_per_epoch: int,
                     history: Sequence[dict[str, Any]] = ()) -> np.ndarray:
    """The head group's learning rate at every optimizer step, ``(epochs × steps_per_epoch,)``.

    Step-based schedules are evaluated from their multiplier; ``plateau`` is the warmup ramp
    followed by each epoch's rate as recorded in ``history``.
    """
    total = config.epochs * steps_per_epoch
    warmup = min(round(config.warmup_epochs * steps_per_epoch), total - 1)
    if config.schedule != "plateau":
        f = build_scheduler(config, torch.optim.SGD([torch.zeros(1)], lr=1.0),
                            steps_per_epoch).lr_lambdas[0]
        return config.lr * np.array([f(t) for t in range(total)])
    lrs = np.full(total, config.lr)
    lrs[:warmup] = config.lr * (np.arange(warmup) + 1) / max(warmup, 1)
    for row in history:  # the rate an epoch ended with holds through the next epoch
        start = int(row["epoch"]) * steps_per_epoch
        if start >= warmup:  # epochs that end inside warmup are not monitored
            lrs[start:] = row["lr"]
    return lrs


@dataclass
class EpochStats:
    """Running sums over the training batches of one epoch (kept on the device)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    train_time: float = 0.0

    def to_json(self) -> dict[str, float]:
        return dict(self.__dict__)


def check_output_dir(path: Path) -> None:
    """Fail early, before any work, if ``path`` cannot be created or written."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and (not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK)):
        kind = "directory" if probe.is_dir() else "file"
        raise FovealError(
            f"cannot write the run folder {str(path)!r}: expected a writable directory, "
            f"got a non-writable {kind} {str(probe)!r}"
        )


@dataclass
class RunResult:
    """What a finished run returns: its folder, final metrics and per-epoch history."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluation: EvalResult | None = None


class Trainer:
    """Trains a classifier according to a :class:`TrainConfig`, writing a run folder.

    Args:
        config: the run's settings.
        run_dir: the run folder (created; must not already hold a run unless resuming).
        train_set, test_set: datasets; loaded from ``config.dataset`` when omitted.
        progress: show a progress bar per epoch.
        log: where one-line messages go (default: standard error).
        report: draw the plots and ``report.html`` at the end (``False`` writes
            ``metrics.json`` only, e.g. for the many runs of a hyper-parameter search).
        resume: the run will be restored from its checkpoint (:meth:`restore`), so the
            data-dependent and transferred initialisation is skipped.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike[str],
        *,
        train_set: ArrayDataset | None = None,
        test_set: ArrayDataset | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        report: bool = True,
        resume: bool = False,
    ) -> None:
        self.config = config
        self.report = report
        self.resuming = resume
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
        check_output_dir(self.run_dir)
        if train_set is None or test_set is None:
            from foveal.data.datasets import load_dataset

            opts = dict(root=config.data_root, download=config.download,
                        skip_corrupt=config.skip_corrupt, progress=progress)
            if train_set is None:
                train_set = load_dataset(config.dataset, "train", **opts)
            if test_set is None:
                test_set = load_dataset(config.dataset, "test", **opts)
        if config.train_subset is not None:
            if config.train_subset >= len(train_set):
                raise ConfigError(
                    f"train_subset must be smaller than the training set ({len(train_set)} "
                    f"images), got {config.train_subset}"
                )
            train_set = train_set.balanced_subset(config.train_subset, seed=config.seed)
        if train_set.image_shape != test_set.image_shape:
            raise ConfigError(
                f"train and test images differ in shape: {train_set.image_shape} "
                f"vs {test_set.image_shape}"
            )
        self.train_set, self.test_set = train_set, test_set
        self.device = select_device(config.device)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(config.seed)

        c, h, _ = train_set.image_shape
        mean, std = train_set.channel_stats()
        self.spec = ModelSpec(
            name=config.model, in_channels=c, num_classes=train_set.num_classes, image_size=h,
            classes=list(train_set.classes), mean=mean, std=std,
            options=dict(config.model_options),
        )
        self.model = self.spec.build()
        self._initialise(self.model, train_set, mean, std)
        self.model = self.model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward: nn.Module = torch.compile(self.model) if config.compile else self.model
        self.ema = (WeightEMA(self.model, config.ema_decay, warmup=True)
                    if config.ema_decay else None)

        augment = Augment(
            config.crop_padding, config.flip, config.cutout,
            alternating_flip=config.alternating_flip,
            color_jitter=tuple(config.color_jitter),  # type: ignore[arg-type]
            rand_augment_ops=config.rand_augment_ops,
            rand_augment_magnitude=config.rand_augment_magnitude,
        )
        loader_opts = dict(device=self.device, mean=mean, std=std,
                           channels_last=config.channels_last, seed=config.seed)
        self.train_loader = InMemoryLoader(
            train_set, config.batch_size, shuffle=True,
            drop_last=len(train_set) > config.batch_size,
            augment=augment if augment != Augment() else None, **loader_opts,
        )
        self.test_loader = InMemoryLoader(test_set, config.eval_batch_size, **loader_opts)
        self.optimizer = build_optimizer(config, self.model)
        self.steps_per_epoch = len(self.train_loader)
        if config.grad_accum > self.steps_per_epoch:
            raise ConfigError(
                f"grad_accum must be at most the {self.steps_per_epoch} batches of an epoch, "
                f"got {config.grad_accum}"
            )
        self.total_steps = config.epochs * self.steps_per_epoch
        # the optimizer steps every grad_accum batches, and at the end of each epoch
        self.optimizer_steps_per_epoch = -(-self.steps_per_epoch // config.grad_accum)
        self.scheduler = build_scheduler(config, self.optimizer, self.optimizer_steps_per_epoch)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.epoch_stats = EpochStats()
        self.elapsed = 0.0

    def _initialise(self, model: nn.Module, train_set: ArrayDataset, mean: list[float],
                    std: list[float]) -> None:
        """Weight init scheme, zero-γ residuals, data-dependent init, transferred weights and
        the frozen backbone, in that order (on the CPU, before the model moves)."""
        config = self.config
        if config.init != "default":
            from foveal.models.init import init_weights

            init_weights(model, config.init)
        if config.zero_init_residual:
            from foveal.models.init import zero_init_last_bn

            zero_init_last_bn(model)
        data_init = getattr(model, "data_init", None)
        if callable(data_init) and not self.resuming:
            n = min(5000, len(train_set))
            x = torch.from_numpy(train_set.images[:n]).permute(0, 3, 1, 2).float() / 255.0
            m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            sd = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
            data_init((x - m) / sd)
        if config.init_from is not None and not self.resuming:
            self.log(transfer_weights(model, config.init_from, head_names(config, model)))
        # the backbone's batch norms, kept in eval mode when it is frozen (see _train_mode)
        self.frozen_norms: list[nn.Module] = []
        if config.freeze_backbone:
            from foveal.training.diagnostics import freeze_backbone, in_head

            heads = head_names(config, model)
            freeze_backbone(model, heads)
            self.frozen_norms = [m for name, m in model.named_modules()
                                 if isinstance(m, nn.modules.batchnorm._BatchNorm)
                                 and not in_head(name, heads)]

    def _train_mode(self) -> None:
        """``model.train()``; with a frozen backbone its batch norms stay in eval mode, so
        their running statistics are kept as well."""
        self.model.train()
        for module in self.frozen_norms:
            module.eval()

    # -- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        state = {
            "config": self.config.to_json(), "step": self.step, "history": self.history,
            "epoch_stats": self.epoch_stats.to_json(), "elapsed": self.elapsed,
        }
        save_checkpoint(
            self.run_dir / CHECKPOINT_FILE, model=self.model, spec=self.spec,
            optimizer=self.optimizer, scheduler=self.scheduler, state=state, ema=self.ema,
        )

    def restore(self, path: str | os.PathLike[str] | None = None) -> None:
        """Load the run's checkpoint and continue from its step."""
        ckpt = load_checkpoint(path or self.run_dir / CHECKPOINT_FILE, expect_model=self.spec.name)
        saved = TrainConfig.from_json(ckpt.state["config"])
        if saved != self.config:
            diff = sorted(k for k, v in saved.to_json().items() if self.config.to_json()[k] != v)
            raise CheckpointError(f"{ckpt.path}: checkpoint was made with other settings: {diff}")
        ckpt.load_model(self.model)
        ckpt.load_training_state(self.optimizer, self.scheduler)
        if self.ema is not None:
            ckpt.load_ema(self.ema)
        self.step = int(ckpt.state["step"])
        self.history = list(ckpt.state["history"])
        self.epoch_stats = EpochStats(**ckpt.state["epoch_stats"])
        self.elapsed = float(ckpt.state["elapsed"])
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        self.log(f"resuming {self.run_dir} at epoch {epoch + 1}, batch {batch} (step {self.step})")

    # -- the loop ----------------------------------------------------------------------------

    def mix(self, x: torch.Tensor, y: torch.Tensor, epoch: int, batch: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """mixup or CutMix on a training batch; returns images and targets (soft when mixed).

        Draws come from a generator seeded by ``(seed, epoch, batch, 2)``, so a resumed run
        mixes exactly as the interrupted one would have.
        """
        config = self.config
        if not (config.mixup or config.cutmix):
            return x, y
        g = torch.Generator().manual_seed(derive_seed(config.seed, epoch, batch, 2))
        if config.mix_prob < 1 and float(torch.rand((), generator=g)) >= config.mix_prob:
            return x, y
        use_cutmix = config.cutmix > 0 and (
            config.mixup == 0 or float(torch.rand((), generator=g)) < 0.5)
        k = self.spec.num_classes
        if use_cutmix:
            return cutmix(x, y, config.cutmix, g, k)
        return mixup(x, y, config.mixup, g, k)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, *, epoch: int = 0, batch: int = 0,
                   accumulate: int = 1, first: bool = True, update: bool = True
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward on one batch; with ``update``, also the optimizer step (after
        ``accumulate`` batches of accumulated gradient, the ``first`` of which clears the
        previous gradient). Returns the batch's loss and number of correct predictions (against
        the unmixed labels)."""
        config = self.config
        x, targets = self.mix(x, y, epoch, batch)
        with autocast_context(self.device, config.bf16):
            logits = self.forward(x)
            loss = F.cross_entropy(logits, targets, label_smoothing=config.label_smoothing)
        objective = loss
        if config.l1 or config.l2:
            objective = objective + elastic_net_penalty(self.model, config.l1, config.l2)
        if first:  # cleared here rather than after the step: the allocator then reuses the
            # old gradients' memory for the new ones (about 5% faster on the CPU)
            self.optimizer.zero_grad(set_to_none=True)
        (objective / accumulate if accumulate > 1 else objective).backward()
        if update:
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            if config.max_norm is not None:
                apply_max_norm_(self.model, config.max_norm)
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            self.scheduler.step()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def fit(self) -> RunResult:
        """Train to ``config.epochs``, evaluating and checkpointing after every epoch."""
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob(".*.tmp"):  # left by a write that a crash cut short
            stale.unlink(missing_ok=True)
        atomic_write_json(self.run_dir / CONFIG_FILE, config.to_json())
        self._train_mode()
        # Loss values are checked for NaN/inf in windows, so a GPU run syncs every few steps only.
        sync_every = 1 if self.device.type == "cpu" else 16
        while self.step < self.total_steps:
            epoch, start = divmod(self.step, self.steps_per_epoch)
            bar = tqdm(
                total=self.steps_per_epoch, initial=start, leave=False, dynamic_ncols=True,
                desc=f"epoch {epoch + 1}/{config.epochs}", disable=not self.progress,
                file=sys.stderr,
            )
            window: list[tuple[torch.Tensor, torch.Tensor, int]] = []
            t0 = time.perf_counter()
            accum = config.grad_accum
            for b, (x, y) in enumerate(self.train_loader.batches(epoch, start), start):
                group_start = b - b % accum
                group_size = min(accum, self.steps_per_epoch - group_start)
                update = b - group_start + 1 == group_size
                loss, correct = self.train_step(x, y, epoch=epoch, batch=b,
                                                accumulate=group_size, first=b == group_start,
                                                update=update)
                window.append((loss, correct, len(y)))
                self.step += 1
                # a mid-epoch checkpoint must not cut an accumulation group
                at_checkpoint = (config.checkpoint_every and update
                                 and self.step % config.checkpoint_every == 0)
                if len(window) >= sync_every or at_checkpoint:
                    dt = self._flush(window, t0)
                    t0 = time.perf_counter()
                    bar.update(len(window))
                    bar.set_postfix_str(self._postfix(dt, window), refresh=False)
                    window = []
                    if at_checkpoint and self.step % self.steps_per_epoch:
                        self.save_checkpoint()
            if window:
                dt = self._flush(window, t0)
                bar.update(len(window))
            bar.close()
            self._end_epoch(epoch)
        return self.finish()

    def _flush(self, window: list[tuple[torch.Tensor, torch.Tensor, int]], t0: float) -> float:
        """Move a window of step results to the host, checking every loss is finite."""
        losses = torch.stack([w[0] for w in window]).float().cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            i = int(bad[0])
            step = self.step - len(window) + i + 1
            epoch = (step - 1) // self.steps_per_epoch + 1
            raise TrainingError(
                f"loss became {losses[i].item()} at step {step} (epoch {epoch}); expected a finite "
                f"loss: lower the learning rate (now {self.config.lr}) or set grad_clip"
            )
        dt = time.perf_counter() - t0
        stats = self.epoch_stats
        stats.loss_sum += float((losses * torch.tensor([w[2] for w in window])).sum())
        stats.correct += int(torch.stack([w[1] for w in window]).sum())
        stats.seen += sum(w[2] for w in window)
        stats.train_time += dt
        self.elapsed += dt
        return dt

    def _postfix(self, dt: float, window: list[tuple[torch.Tensor, torch.Tensor, int]]) -> str:
        s = self.epoch_stats
        ips = sum(w[2] for w in window) / max(dt, 1e-9)
        loss, acc = s.loss_sum / s.seen, 100 * s.correct / s.seen
        return f"loss {loss:.3f}  acc {acc:.1f}%  {ips:,.0f} img/s"

    def _end_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        result = self.evaluate()
        raw = None
        if self.ema is not None:
            raw = evaluate(self.forward, self.test_loader, bf16=self.config.bf16,
                           tta_flip=self.config.tta_flip)
        self._train_mode()
        eval_time = time.perf_counter() - t0
        self.elapsed += eval_time
        s = self.epoch_stats
        row = {
            "epoch": epoch + 1, "step": self.step,
            "train_loss": s.loss_sum / max(s.seen, 1), "train_acc": s.correct / max(s.seen, 1),
            "test_loss": result.loss, "test_acc": result.accuracy,
            "lr": self.head_lr(),
            "train_images": s.seen, "train_time_s": s.train_time, "eval_time_s": eval_time,
            "images_per_s": s.seen / max(s.train_time, 1e-9),
        }
        if raw is not None:
            row["test_acc_raw"], row["test_loss_raw"] = raw.accuracy, raw.loss
        if not math.isfinite(row["test_loss"]):
            raise TrainingError(f"test loss became {row['test_loss']} after epoch {epoch + 1}")
        if isinstance(self.scheduler, WarmupPlateau):
            self.scheduler.step_epoch(result.loss)
            row["lr"] = self.head_lr()  # the rate the next epoch uses
        self.history.append(row)
        self.epoch_stats = EpochStats()
        atomic_write_text(
            self.run_dir / HISTORY_FILE, "".join(_json_line(r) for r in self.history)
        )
        self.save_checkpoint()
        self.last_eval = result
        self.log(
            f"epoch {epoch + 1}/{self.config.epochs}: train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f}% | test loss {row['test_loss']:.4f} "
            f"acc {100 * row['test_acc']:.2f}% | {row['images_per_s']:,.0f} img/s"
        )

    def head_lr(self) -> float:
        """The current rate of the head's parameter group (the first group when unnamed)."""
        groups = self.optimizer.param_groups
        return next((g["lr"] for g in groups if g.get("name") == "head"), groups[0]["lr"])

    @property
    def eval_model(self) -> nn.Module:
        """The model that is evaluated and exported: the weight average when there is one."""
        return self.ema.module if self.ema is not None else self.forward

    def evaluate(self) -> EvalResult:
        """Evaluate :attr:`eval_model` on the test set (with flip TTA when configured)."""
        return evaluate(self.eval_model, self.test_loader, bf16=self.config.bf16,
                        tta_flip=self.config.tta_flip)

    def finish(self) -> RunResult:
        """Export the model, write metrics, plots and the report; return the run's result."""
        from foveal.report.classification import write_classification_report
        from foveal.report.schedules import plot_lr_schedule

        exported = self.ema.module if self.ema is not None else self.model
        save_checkpoint(self.run_dir / MODEL_FILE, model=exported, spec=self.spec,
                        state={"config": self.config.to_json()})
        result = getattr(self, "last_eval", None)
        if result is None:  # resumed after the last epoch had already finished
            result = self.evaluate()

        train_images = sum(r["train_images"] for r in self.history)
        train_time = sum(r["train_time_s"] for r in self.history)
        last = self.history[-1]
        metrics = {
            "test_accuracy": result.accuracy, "test_loss": result.loss,
            "train_accuracy": last["train_acc"], "train_loss": last["train_loss"],
            "epochs": self.config.epochs, "steps": self.step,
            "optimizer_steps": self.config.epochs * self.optimizer_steps_per_epoch,
            "tta_flip": self.config.tta_flip,
            "wall_time_s": self.elapsed, "train_time_s": train_time,
            "images_per_s": train_images / max(train_time, 1e-9),
            "device": str(self.device), "model": self.config.model,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "dataset": self.config.dataset, "train_size": len(self.train_set),
            "test_size": len(self.test_set), "torch_version": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        if not self.report:
            atomic_write_json(self.run_dir / "metrics.json", metrics)
            return RunResult(self.run_dir, metrics, self.history, result)
        lrs = planned_lr_curve(self.config, self.optimizer_steps_per_epoch, self.history)
        lr_plot = plot_lr_schedule(lrs, self.run_dir / "plots" / "lr.png",
                                   title=f"learning rate ({self.config.schedule})")
        metrics = write_classification_report(
            self.run_dir, metrics=metrics, evaluation=result, dataset=self.test_set,
            history=self.history, config=self.config.to_json(),
            title=f"{self.config.model} on {self.train_set.name.split('/')[0]}",
            figures=[("Learning rate at every optimizer step", lr_plot)],
        )
        return RunResult(self.run_dir, metrics, self.history, result)


def transfer_weights(model: nn.Module, source: str | os.PathLike[str],
                     head: list[str]) -> str:
    """Copy into ``model`` every weight of ``source`` (a model file, checkpoint or run folder)
    whose name and shape match, except the head's; returns a one-line summary.

    Raises :class:`CheckpointError` when nothing outside the head matches.
    """
    from foveal.models.classifier import find_model_file
    from foveal.training.diagnostics import in_head, split_head

    split_head(model, head)  # each name must own parameters
    path = find_model_file(source)
    weights = load_checkpoint(path).model_state()
    own = model.state_dict()
    loaded = {k: v for k, v in weights.items()
              if k in own and v.shape == own[k].shape and not in_head(k, head)}
    backbone = [k for k in own if not in_head(k, head)]
    if not loaded:
        raise CheckpointError(
            f"{path}: expected weights matching the backbone of this model by name and shape, "
            f"found none of its {len(backbone)}"
        )
    model.load_state_dict(loaded, strict=False)
    return (f"initialised {len(loaded)} of {len(backbone)} backbone tensors from {path}; "
            f"new head {', '.join(head)}")


def _json_line(row: dict[str, Any]) -> str:
    import json

    return json.dumps(row, sort_keys=True) + "\n"


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    train_set: ArrayDataset | None = None,
    test_set: ArrayDataset | None = None,
    progress: bool = True,
    report: bool = True,
) -> RunResult:
    """Train (or, with ``resume``, continue) a run in ``run_dir`` and return its result.

    ``report=False`` skips the plots and ``report.html`` (``metrics.json`` is still written).

    A fresh run refuses a ``run_dir`` that already holds a checkpoint, so finished work is never
    overwritten by accident; pass ``resume=True`` to continue it.
    """
    if config.engine == "scratch":
        from foveal.scratch.solver import train as train_scratch

        return train_scratch(config, run_dir, resume=resume, train_set=train_set,
                             test_set=test_set, progress=progress)
    run_dir = Path(run_dir)
    if not resume and (run_dir / CHECKPOINT_FILE).exists():
        raise FovealError(
            f"{str(run_dir)!r} already holds a run: expected a new folder, or resume it"
        )
    trainer = Trainer(config, run_dir, train_set=train_set, test_set=test_set, progress=progress,
                      report=report, resume=resume)
    if resume:
        trainer.restore()
    return trainer.fit()


def resume_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The configuration a run folder's checkpoint was made with (for ``--resume``)."""
    from foveal.scratch.solver import is_scratch_checkpoint, load_state

    ckpt_path = Path(run_dir) / CHECKPOINT_FILE
    if is_scratch_checkpoint(ckpt_path):
        return TrainConfig.from_json(load_state(ckpt_path)["config"])
    ckpt = load_checkpoint(ckpt_path)
    if "config" not in ckpt.state:
        raise CheckpointError(f"{ckpt_path}: expected a training checkpoint with its config")
    return TrainConfig.from_json(ckpt.state["config"])
