"""Evaluate a classifier over a whole dataset, and write an evaluation run folder."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from foveal.data.dataset import ArrayDataset
from foveal.data.loader import InMemoryLoader


def autocast_context(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when ``bf16``; a no-op elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class EvalResult:
    """Predictions of a classifier over a whole dataset, in dataset order.

    ``loss`` is the mean (unsmoothed) cross-entropy; ``predictions`` and ``targets`` are int64
    arrays of shape ``(N,)``; ``probabilities`` is ``(N, K)`` float32 (softmax of the logits).
    """

    loss: float
    accuracy: float
    predictions: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray


@torch.no_grad()
def evaluate(model: nn.Module, loader: InMemoryLoader, *, bf16: bool = True,
             tta_flip: bool = False) -> EvalResult:
    """Run ``model`` in eval mode over every batch of ``loader`` (which must not shuffle).

    With ``tta_flip`` the logits are the mean of the image's and its mirror's,
    ``½ (f(x) + f(flip(x)))`` (test-time augmentation).
    """
    was_training = model.training
    model.eval()
    losses, probs, targets = [], [], []
    try:
        for x, y in loader.batches(0):
            with autocast_context(loader.device, bf16):
                logits = model(x).float()
                if tta_flip:
                    logits = 0.5 * (logits + model(x.flip(-1)).float())
            losses.append(F.cross_entropy(logits, y, reduction="sum"))
            probs.append(logits.softmax(1).cpu())
            targets.append(y.cpu())
    finally:
        model.train(was_training)
    p = torch.cat(probs).numpy()
    t = torch.cat(targets).numpy()
    pred = p.argmax(1)
    return EvalResult(
        loss=float(torch.stack(losses).sum()) / max(len(t), 1),
        accuracy=float((pred == t).mean()) if len(t) else float("nan"),
        predictions=pred, targets=t, probabilities=p,
    )


def evaluate_classifier(
    classifier: Any,
    dataset: ArrayDataset,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = 500,
) -> tuple[dict[str, Any], EvalResult]:
    """Evaluate a :class:`foveal.models.classifier.Classifier` on ``dataset``.

    With ``run_dir``, also writes ``metrics.json``, the plots and ``report.html`` there.
    Returns the metrics (accuracy, loss, per-class accuracy, …) and the raw result.
    """
    import time

    classifier.check_dataset(dataset)
    spec = classifier.spec
    loader = InMemoryLoader(dataset, batch_size, device=classifier.device, mean=spec.mean,
                            std=spec.std)
    t0 = time.perf_counter()
    result = evaluate(classifier.model, loader, tta_flip=classifier.tta_flip)
    elapsed = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "test_accuracy": result.accuracy, "test_loss": result.loss,
        "images": len(dataset), "wall_time_s": elapsed,
        "images_per_s": len(dataset) / max(elapsed, 1e-9),
        "model": spec.name, "dataset": dataset.name, "device": str(classifier.device),
        "checkpoint": str(classifier.path),
    }
    if run_dir is not None:
        from foveal.report.classification import write_classification_report

        metrics = write_classification_report(
            Path(run_dir), metrics=metrics, evaluation=result, dataset=dataset,
            title=f"{spec.name} evaluated on {dataset.name}",
            config={"checkpoint": str(classifier.path), "dataset": dataset.name,
                    "model": spec.to_json()},
        )
    return metrics, result
