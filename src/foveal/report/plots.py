"""PNG plots of a training run: learning curves, confusion matrix, a grid of images.

Each function draws on a :class:`matplotlib.figure.Figure` with the Agg canvas attached directly,
so it never touches :mod:`matplotlib.pyplot` or the user's selected backend and is safe in
threads and headless jobs. The PNG is rendered to memory and then written with
:func:`foveal.atomic.atomic_write_bytes`, so a failed or interrupted write leaves no partial file.

Text taken from data (class names, titles) is drawn literally: ``$`` never starts mathtext.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from foveal.atomic import atomic_write_bytes
from foveal.errors import DataError

DPI = 100
_TRAIN_COLOR, _TEST_COLOR = "#1f77b4", "#d62728"


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Render ``fig`` to PNG bytes in memory, then write them atomically to ``path``."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Epochs and values of ``key`` over the rows that have a finite value for it."""
    epochs, values = [], []
    for index, row in enumerate(history):
        value = row.get(key)
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            epochs.append(float(row.get("epoch", index + 1)))
            values.append(value)
    return epochs, values


def plot_training_curves(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]
) -> Path:
    """Plot loss and accuracy against epoch, train and test, in two side-by-side panels.

    Args:
        history: one mapping per evaluation, e.g. ``{"epoch": 1, "train_loss": 0.9,
            "train_acc": 0.71, "test_loss": 0.8, "test_acc": 0.74, "lr": 0.1}``. Any key may be
            missing, ``None`` or NaN in any row; each line is drawn through the rows that have it,
            and a panel with no data says so. ``epoch`` defaults to the 1-based row number.
            Accuracies are fractions in ``[0, 1]`` and are shown as percentages.
        path: destination ``.png``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if not isinstance(history, Sequence) or not all(isinstance(r, Mapping) for r in history):
        raise DataError(f"expected history as a list of dicts, got {type(history).__name__}")
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    panels = (("loss", "loss", None), ("acc", "accuracy", PercentFormatter(xmax=1.0)))
    for ax, (suffix, label, formatter) in zip(fig.subplots(1, 2), panels, strict=True):
        all_epochs: list[float] = []
        for split, color in (("train", _TRAIN_COLOR), ("test", _TEST_COLOR)):
            epochs, values = _series(history, f"{split}_{suffix}")
            if values:
                marker = "o" if len(values) <= 30 else None
                ax.plot(epochs, values, color=color, marker=marker, markersize=4, label=split)
                all_epochs += epochs
        if all_epochs:
            ax.legend()
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if max(all_epochs) - min(all_epochs) < 1:  # one epoch: avoid a 0.99..1.01 axis
                ax.set_xlim(min(all_epochs) - 1, max(all_epochs) + 1)
            if formatter is not None:
                ax.yaxis.set_major_formatter(formatter)
        else:
            ax.text(
                0.5,
                0.5,
                f"no {label} recorded",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="grey",
            )
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_confusion_matrix(
    cm: Any, classes: Sequence[str], path: str | os.PathLike[str], *, normalize: bool = True
) -> Path:
    """Draw the confusion matrix as a heat map, true class on the rows, predicted on the columns.

    Args:
        cm: ``(K, K)`` counts, ``cm[i, j]`` = samples of true class ``i`` predicted as ``j``
            (see :func:`foveal.training.metrics.confusion_matrix`).
        classes: ``K`` class names, used as tick labels (up to 40 classes).
        path: destination ``.png``.
        normalize: colour and annotate by row fraction ``cm[i, j] / sum_j cm[i, j]`` (the share
            of class ``i`` predicted as ``j``; a class with no samples stays 0) instead of raw
            counts. Cells are annotated with the value when ``K <= 20``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise DataError(f"expected a square (K, K) confusion matrix, got shape {cm.shape}")
    K = cm.shape[0]
    if len(classes) != K:
        raise DataError(f"expected {K} class names for a {K}×{K} matrix, got {len(classes)}")
    counts = cm.astype(np.float64)
    if normalize:
        support = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, support, out=np.zeros_like(counts), where=support > 0)
        vmax = 1.0
    else:
        values = counts
        vmax = max(float(counts.max(initial=0.0)), 1.0)

    side = float(np.clip(0.45 * K + 3.0, 5.0, 16.0))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    if normalize:
        colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))

    if K <= 40:
        names = [str(c) for c in classes]
        font = 10 if K <= 12 else 8 if K <= 24 else 6
        ax.set_xticks(
            range(K), labels=names, rotation=45, ha="right", fontsize=font, parse_math=False
        )
        ax.set_yticks(range(K), labels=names, fontsize=font, parse_math=False)
    if K <= 20:
        font = 10 if K <= 10 else 7
        for i in range(K):
            for j in range(K):
                text = f"{100 * values[i, j]:.0f}%" if normalize else f"{int(counts[i, j])}"
                dark = values[i, j] > 0.55 * vmax
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if dark else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    n = int(counts.sum())
    ax.set_title(f"confusion matrix ({'row-normalised' if normalize else 'counts'}, n = {n})")
    return _save(fig, path)


def plot_image_grid(
    images: Any,
    titles: Sequence[str],
    path: str | os.PathLike[str],
    *,
    ncols: int = 8,
    empty_text: str = "no misclassified images",
) -> Path:
    """Show images in a grid, each with its title above it (e.g. ``"true: cat\\npred: dog"``).

    Pixels are drawn with nearest-neighbour sampling (no smoothing), so small images stay
    legible; grey images use a grey colour map over the full ``[0, 255]`` range.

    Args:
        images: ``uint8`` array of shape ``(N, H, W, C)`` with ``C`` 1 (grey) or 3 (RGB), the
            layout of :class:`foveal.data.dataset.ArrayDataset`. Keep ``N`` to a few dozen.
        titles: ``N`` titles; a title may contain ``\\n``.
        path: destination ``.png``.
        ncols: images per row.
        empty_text: written on a small figure instead when ``N = 0``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"expected uint8 images of shape (N, H, W, C) with C in (1, 3), "
            f"got {images.dtype} {images.shape}"
        )
    if len(titles) != len(images):
        raise DataError(f"expected {len(images)} titles, one per image, got {len(titles)}")
    if ncols < 1:
        raise DataError(f"expected ncols >= 1, got {ncols}")

    N = len(images)
    if N == 0:
        fig = Figure(figsize=(4, 1.2))
        fig.text(0.5, 0.5, empty_text, ha="center", va="center", fontsize=12, parse_math=False)
        return _save(fig, path)

    cols = min(ncols, N)
    rows = math.ceil(N / cols)
    lines = max(str(t).count("\n") + 1 for t in titles)
    cell_w, cell_h = 1.6, 1.6 + 0.16 * lines
    fig = Figure(figsize=(cols * cell_w, rows * cell_h), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes:
        ax.set_axis_off()
    for ax, image, title in zip(axes[:N], images, titles, strict=True):
        if image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")
        ax.set_title(str(title), fontsize=8, parse_math=False)
    return _save(fig, path)
