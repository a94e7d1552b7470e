"""Training scratch networks: a :class:`Solver` loop, and ``train`` that writes a run folder.

One step on a batch ``(x, y)``:

    logits = model(x)                                   forward, recording the graph
    L = cross_entropy(logits, y, label_smoothing=ε)     mean over the batch
    L.backward()                                        reverse-mode, by hand-written rules
    clip_grad_norm(params, c)                           optional
    optimizer.step()                                    NumPy update rules

:func:`train` runs a :class:`~foveal.training.config.TrainConfig` with ``engine="scratch"`` and
writes the same run folder as the torch trainer (config, ``metrics.jsonl``, ``metrics.json``,
plots, ``report.html``) plus ``model.safetensors`` in foveal's checkpoint format: the scratch
models share their torch twins' parameter names, so ``foveal eval`` and ``foveal predict`` load
a scratch-trained model as they load any other. Batches come from the same
:class:`~foveal.data.loader.InMemoryLoader` (on the CPU, converted to NumPy), so shuffling,
augmentation and resumption behave exactly as in the torch path.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from foveal.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from foveal.data.dataset import ArrayDataset
from foveal.errors import CheckpointError, ConfigError, FovealError, TrainingError
from foveal.scratch.layers.module import Module
from foveal.scratch.ops.loss import cross_entropy
from foveal.scratch.ops.softmax import log_softmax
from foveal.scratch.optim.clip import clip_grad_norm
from foveal.scratch.optim.optimizer import Optimizer
from foveal.scratch.tensor import Tensor, no_grad

CHECKPOINT_FILE = "checkpoint.safetensors"
STATE_FORMAT = "foveal-scratch"  # the safetensors metadata key of a scratch checkpoint


@dataclass
class Evaluation:
    """Predictions over a dataset in order (the fields of the torch path's ``EvalResult``)."""

    loss: float
    accuracy: float
    predictions: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray


class Solver:
    """Owns a scratch model and optimizer and runs training steps on NumPy batches.

    Args:
        model: a :class:`~foveal.scratch.layers.module.Module` mapping (N, …) to logits (N, K).
        optimizer: a :mod:`foveal.scratch.optim` optimizer over ``model.parameters()``.
        lr_schedule: multiplier of the base rate as a function of the step (``None``: constant).
        label_smoothing: ε of the smoothed cross-entropy target.
        grad_clip: clip the global gradient norm to this value (``None``: off).
    """

    def __init__(self, model: Module, optimizer: Optimizer, *,
                 lr_schedule: Callable[[int], float] | None = None,
                 label_smoothing: float = 0.0, grad_clip: float | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.lr_schedule = lr_schedule
        self.label_smoothing = label_smoothing
        self.grad_clip = grad_clip
        self.step = 0

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimisation step; returns the batch's mean loss and number of correct answers."""
        if self.lr_schedule is not None:
            self.optimizer.lr = self.base_lr * self.lr_schedule(self.step)
        self.model.train()
        logits = self.model(Tensor(x))
        loss = cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                f"loss became {value} at step {self.step + 1}; expected a finite loss: lower the "
                f"learning rate (now {self.optimizer.lr:g}) or set grad_clip"
            )
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip is not None:
            clip_grad_norm(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.step += 1
        return value, int((logits.data.argmax(1) == y).sum())

    def fit_batches(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        """Train on every batch of ``batches``; return the per-step losses."""
        return [self.train_step(x, y)[0] for x, y in batches]

    def evaluate(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Evaluation:
        """Eval-mode predictions over ``batches`` (no graph is recorded)."""
        self.model.eval()
        log_probs, targets = [], []
        with no_grad():
            for x, y in batches:
                log_probs.append(log_softmax(self.model(Tensor(x)), axis=1).data)
                targets.append(np.asarray(y))
        lp = np.concatenate(log_probs).astype(np.float64)
        t = np.concatenate(targets).astype(np.int64)
        pred = lp.argmax(1)
        return Evaluation(
            loss=float(-lp[np.arange(len(t)), t].mean()), accuracy=float((pred == t).mean()),
            predictions=pred, targets=t, probabilities=np.exp(lp).astype(np.float32),
        )

    # ------------------------------------------------------------------------- checkpoints
    def _generators(self) -> dict[str, np.random.Generator]:
        """The random generators the model's layers draw from (dropout masks), by path."""
        return {f"{path}.{name}": value for path, module in self.model.named_modules()
                for name, value in vars(module).items()
                if isinstance(value, np.random.Generator)}

    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, step and the layers' RNG states: all a bit-exact resume needs."""
        rng = {k: json.dumps(g.bit_generator.state) for k, g in self._generators().items()}
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "rng": rng}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        for key, generator in self._generators().items():
            if key in state.get("rng", {}):
                generator.bit_generator.state = json.loads(state["rng"][key])


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Atomically write a nested dict: its arrays to safetensors, everything else as JSON."""
    from safetensors.numpy import save

    arrays: dict[str, np.ndarray] = {}

    def split(obj: Any, key: str) -> Any:
        if isinstance(obj, np.ndarray):
            arrays[key] = np.ascontiguousarray(obj)
            return {"__array__": key}
        if isinstance(obj, Mapping):
            return {str(k): split(v, f"{key}/{k}") for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [split(v, f"{key}/{i}") for i, v in enumerate(obj)]
        if isinstance(obj, np.generic):
            return obj.item()
        return obj

    doc = split(dict(state), "")
    atomic_write_bytes(path, save(arrays, metadata={STATE_FORMAT: json.dumps(doc)}))


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read what :func:`save_state` wrote."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        doc = json.loads(meta[STATE_FORMAT])
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: expected a scratch training checkpoint, got an "
                              f"unreadable or foreign file ({err})") from err

    def join(obj: Any) -> Any:
        if isinstance(obj, dict):
            if set(obj) == {"__array__"}:
                return arrays[obj["__array__"]]
            return {k: join(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [join(v) for v in obj]
        return obj

    return join(doc)


def is_scratch_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a checkpoint written by :func:`save_state` (not the torch trainer)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return STATE_FORMAT in (f.metadata() or {})
    except Exception:  # safetensors raises several types for unreadable files
        return False


def build_optimizer(config: Any, model: Module) -> Optimizer:
    """The config's optimizer over ``model``'s parameters, from :mod:`foveal.scratch.optim`."""
    from foveal.scratch.optim import SGD, AdamW

    params = model.parameters()
    if config.optimizer == "sgd":
        return SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                   weight_decay=config.weight_decay)
    return AdamW(params, lr=config.lr, betas=tuple(config.betas),
                 weight_decay=config.weight_decay)


def train(
    config: Any,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    train_set: ArrayDataset | None = None,
    test_set: ArrayDataset | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Train ``config`` (``engine="scratch"``) into ``run_dir``; returns a ``RunResult``.

    Checkpoints after every epoch (and every ``checkpoint_every`` steps); ``resume=True``
    continues from the last one with the batches the interrupted run would have seen next.
    """
    import torch

    from foveal.data.augment import Augment
    from foveal.data.loader import InMemoryLoader
    from foveal.report.classification import write_classification_report
    from foveal.scratch.models import build_scratch_model
    from foveal.training.checkpoint import ModelSpec, save_checkpoint
    from foveal.training.config import TrainConfig
    from foveal.training.schedules import lr_multiplier
    from foveal.training.trainer import (
        CONFIG_FILE,
        HISTORY_FILE,
        MODEL_FILE,
        RunResult,
        check_output_dir,
    )

    run_dir = Path(run_dir)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    if config.engine != "scratch":
        raise ConfigError(f"expected a config with engine='scratch', got {config.engine!r}")
    if not resume and (run_dir / CHECKPOINT_FILE).exists():
        raise FovealError(f"{str(run_dir)!r} already holds a run: expected a new folder, or "
                          "resume it")
    check_output_dir(run_dir)
    if train_set is None or test_set is None:
        from foveal.data.datasets import load_dataset

        opts = dict(root=config.data_root, download=config.download,
                    skip_corrupt=config.skip_corrupt, progress=progress)
        train_set = train_set or load_dataset(config.dataset, "train", **opts)
        test_set = test_set or load_dataset(config.dataset, "test", **opts)

    c, h, _ = train_set.image_shape
    mean, std = train_set.channel_stats()
    spec = ModelSpec(name=config.model, in_channels=c, num_classes=train_set.num_classes,
                     image_size=h, classes=list(train_set.classes), mean=mean, std=std,
                     options=dict(config.model_options))
    model = build_scratch_model(config.model, in_channels=c, num_classes=train_set.num_classes,
                                image_size=h, seed=config.seed, **config.model_options)
    augment = Augment(config.crop_padding, config.flip, config.cutout)
    opts = dict(device=torch.device("cpu"), mean=mean, std=std, channels_last=False,
                seed=config.seed)
    train_loader = InMemoryLoader(train_set, config.batch_size, shuffle=True,
                                  drop_last=len(train_set) > config.batch_size,
                                  augment=augment if augment != Augment() else None, **opts)
    test_loader = InMemoryLoader(test_set, config.eval_batch_size, **opts)
    steps_per_epoch = len(train_loader)
    total = config.epochs * steps_per_epoch
    schedule = lr_multiplier(
        config.schedule, total, warmup_steps=min(round(config.warmup_epochs * steps_per_epoch),
                                                 total - 1),
        final_fraction=config.final_lr_fraction, step_size=config.step_epochs * steps_per_epoch,
        gamma=config.gamma,
    )
    solver = Solver(model, build_optimizer(config, model), lr_schedule=schedule,
                    label_smoothing=config.label_smoothing, grad_clip=config.grad_clip)
    history: list[dict[str, Any]] = []
    sums = {"loss": 0.0, "correct": 0, "seen": 0, "time": 0.0}
    elapsed = 0.0

    def numpy_batches(loader: Any, epoch: int, start: int = 0) -> Any:
        for x, y in loader.batches(epoch, start):
            yield x.numpy(), y.numpy()

    def checkpoint() -> None:
        save_state(run_dir / CHECKPOINT_FILE, {
            "config": config.to_json(), "solver": solver.state_dict(), "history": history,
            "sums": sums, "elapsed": elapsed,
        })

    if resume:
        state = load_state(run_dir / CHECKPOINT_FILE)
        saved = TrainConfig.from_json(state["config"])
        if saved != config:
            diff = sorted(k for k, v in saved.to_json().items() if config.to_json()[k] != v)
            raise CheckpointError(f"{run_dir / CHECKPOINT_FILE}: checkpoint was made with other "
                                  f"settings: {diff}")
        solver.load_state_dict(state["solver"])
        history, sums, elapsed = state["history"], state["sums"], float(state["elapsed"])
        log(f"resuming {run_dir} at step {solver.step}")

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG_FILE, config.to_json())
    evaluation: Evaluation | None = None
    while solver.step < total:
        epoch, start = divmod(solver.step, steps_per_epoch)
        bar = tqdm(total=steps_per_epoch, initial=start, leave=False, dynamic_ncols=True,
                   desc=f"epoch {epoch + 1}/{config.epochs} (scratch)", disable=not progress,
                   file=sys.stderr)
        t0 = time.perf_counter()
        for x, y in numpy_batches(train_loader, epoch, start):
            loss, correct = solver.train_step(x, y)
            dt = time.perf_counter() - t0
            t0 = time.perf_counter()
            sums["loss"] += loss * len(y)
            sums["correct"] += correct
            sums["seen"] += len(y)
            sums["time"] += dt
            elapsed += dt
            bar.update(1)
            bar.set_postfix_str(
                f"loss {sums['loss'] / sums['seen']:.3f}  "
                f"acc {100 * sums['correct'] / sums['seen']:.1f}%  {len(y) / dt:,.0f} img/s",
                refresh=False)
            if (config.checkpoint_every and solver.step % config.checkpoint_every == 0
                    and solver.step % steps_per_epoch):
                checkpoint()
        bar.close()
        t0 = time.perf_counter()
        evaluation = solver.evaluate(numpy_batches(test_loader, 0))
        eval_time = time.perf_counter() - t0
        elapsed += eval_time
        seen = max(sums["seen"], 1)
        row = {
            "epoch": epoch + 1, "step": solver.step,
            "train_loss": sums["loss"] / seen, "train_acc": sums["correct"] / seen,
            "test_loss": evaluation.loss, "test_acc": evaluation.accuracy,
            "lr": solver.optimizer.lr, "train_images": sums["seen"],
            "train_time_s": sums["time"], "eval_time_s": eval_time,
            "images_per_s": sums["seen"] / max(sums["time"], 1e-9),
        }
        history.append(row)
        sums = {"loss": 0.0, "correct": 0, "seen": 0, "time": 0.0}
        atomic_write_text(run_dir / HISTORY_FILE,
                          "".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
        checkpoint()
        log(f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f}% | test loss {row['test_loss']:.4f} "
            f"acc {100 * row['test_acc']:.2f}% | {row['images_per_s']:,.0f} img/s")

    if evaluation is None:  # resumed after the last epoch had already finished
        evaluation = solver.evaluate(numpy_batches(test_loader, 0))
    torch_model = spec.build()
    torch_model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                 for k, v in model.state_dict().items()})
    save_checkpoint(run_dir / MODEL_FILE, model=torch_model, spec=spec,
                    state={"config": config.to_json()})
    train_images = sum(r["train_images"] for r in history)
    train_time = sum(r["train_time_s"] for r in history)
    last = history[-1]
    metrics = {
        "test_accuracy": evaluation.accuracy, "test_loss": evaluation.loss,
        "train_accuracy": last["train_acc"], "train_loss": last["train_loss"],
        "epochs": config.epochs, "steps": solver.step, "wall_time_s": elapsed,
        "train_time_s": train_time, "images_per_s": train_images / max(train_time, 1e-9),
        "device": "cpu (numpy)", "engine": "scratch", "model": config.model,
        "parameters": model.num_parameters(), "dataset": config.dataset,
        "train_size": len(train_set), "test_size": len(test_set),
        "numpy_version": np.__version__,
    }
    metrics = write_classification_report(
        run_dir, metrics=metrics, evaluation=evaluation, dataset=test_set, history=history,
        config=config.to_json(),
        title=f"{config.model} (scratch engine) on {train_set.name.split('/')[0]}",
    )
    return RunResult(run_dir, metrics, history, evaluation)
