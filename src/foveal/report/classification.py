"""The outputs of a classification run or evaluation: ``metrics.json``, plots and ``report.html``.

Layout of the folder this writes::

    metrics.json             final metrics, including per-class accuracy
    plots/curves.png         loss and accuracy per epoch (training runs only)
    plots/confusion.png      row-normalised confusion matrix on the test set
    plots/misclassified.png  a grid of misclassified test images, "true / pred"
    report.html              all of the above in one self-contained page
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from foveal.atomic import atomic_write_json
from foveal.data.dataset import ArrayDataset
from foveal.report.html import Table, write_report
from foveal.report.plots import plot_confusion_matrix, plot_image_grid, plot_training_curves
from foveal.training.metrics import confusion_matrix, per_class_accuracy

#: the summary card of the report shows these metrics first, in this order
SUMMARY_KEYS = (
    "test_accuracy", "test_loss", "train_accuracy", "epochs", "wall_time_s", "images_per_s",
    "parameters", "device", "model", "dataset",
)


def misclassified(
    evaluation: Any, dataset: ArrayDataset, limit: int = 32
) -> tuple[np.ndarray, list[str]]:
    """Up to ``limit`` misclassified images (N, H, W, C) and their "true / pred" titles.

    ``evaluation`` has ``predictions`` and ``targets`` in ``dataset`` order; the most confident
    mistakes come first when ``probabilities`` are available.
    """
    wrong = np.flatnonzero(evaluation.predictions != evaluation.targets)
    probs = getattr(evaluation, "probabilities", None)
    if probs is not None and len(wrong):
        wrong = wrong[np.argsort(-probs[wrong, evaluation.predictions[wrong]], kind="stable")]
    wrong = wrong[:limit]
    names = dataset.classes
    titles = [
        f"true: {names[evaluation.targets[i]]}\npred: {names[evaluation.predictions[i]]}"
        for i in wrong
    ]
    return dataset.images[wrong], titles


def write_classification_report(
    run_dir: str | os.PathLike[str],
    *,
    metrics: Mapping[str, Any],
    evaluation: Any,
    dataset: ArrayDataset,
    title: str,
    history: Sequence[Mapping[str, Any]] = (),
    config: Mapping[str, Any] | None = None,
    figures: Sequence[tuple[str, Path]] = (),
) -> dict[str, Any]:
    """Write metrics, plots and the report for ``evaluation`` of ``dataset`` into ``run_dir``.

    ``figures`` are extra ``(caption, png)`` pairs shown after the training curves.
    Returns ``metrics`` extended with ``per_class_accuracy`` (class name → fraction, ``None`` for
    a class without test images) and ``confusion_matrix`` (rows true, columns predicted).
    """
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    k = dataset.num_classes
    cm = confusion_matrix(evaluation.predictions, evaluation.targets, k)
    per_class = [None if np.isnan(a) else float(a) for a in per_class_accuracy(cm)]
    out = dict(metrics)
    out["per_class_accuracy"] = dict(zip(dataset.classes, per_class, strict=True))
    out["confusion_matrix"] = cm.tolist()
    atomic_write_json(run_dir / "metrics.json", out)

    extra_figures = list(figures)
    figures = []
    if history:
        figures.append(("Loss and accuracy per epoch",
                        plot_training_curves(history, plots / "curves.png")))
    figures.extend(extra_figures)
    figures.append(("Confusion matrix on the test set (rows: true class, row-normalised)",
                    plot_confusion_matrix(cm, dataset.classes, plots / "confusion.png")))
    images, titles = misclassified(evaluation, dataset)
    figures.append(("Misclassified test images, most confident mistakes first",
                    plot_image_grid(images, titles, plots / "misclassified.png")))
    rows = [[name, int(cm[i].sum()), per_class[i]] for i, name in enumerate(dataset.classes)]
    summary = {key: out[key] for key in SUMMARY_KEYS if key in out}
    write_report(
        run_dir / "report.html", title=title, metrics=summary, config=config, figures=figures,
        tables=[Table("Per-class accuracy on the test set", ["class", "images", "accuracy"],
                      rows)],
    )
    return out
