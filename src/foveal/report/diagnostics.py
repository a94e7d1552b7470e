"""PNG plots of the training diagnostics in :mod:`foveal.training.diagnostics`.

Drawn on an Agg-backed :class:`~matplotlib.figure.Figure` (never :mod:`matplotlib.pyplot`) and
written atomically, as in :mod:`foveal.report.plots`. Layer names are drawn literally.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from foveal.errors import DataError
from foveal.report.plots import _save
from foveal.training.diagnostics import LayerStats, LRRangeResult

_RAW_COLOR, _SMOOTH_COLOR, _MARK_COLOR = "#aec7e8", "#1f77b4", "#d62728"


def plot_lr_range(result: LRRangeResult, path: str | os.PathLike[str]) -> Path:
    """Loss against learning rate (log axis), raw and smoothed, with the suggested rate marked.

    The y range is clipped to the start of the curve and its minimum, so the divergence at the
    end does not flatten the informative part.
    """
    if not isinstance(result, LRRangeResult):
        raise DataError(f"expected an LRRangeResult, got {type(result).__name__}")
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color=_RAW_COLOR, linewidth=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color=_SMOOTH_COLOR, linewidth=2, label="smoothed")
    if result.suggested_lr is not None:
        ax.axvline(result.suggested_lr, color=_MARK_COLOR, linestyle="--",
                   label=f"steepest: {result.suggested_lr:.2g}")
    ax.axvline(result.min_loss_lr_over_10, color="grey", linestyle=":",
               label=f"min / 10: {result.min_loss_lr_over_10:.2g}")
    ax.set_xscale("log")
    low = min(min(result.smoothed), min(result.losses))
    high = max(result.smoothed[0], low)
    margin = 0.1 * (high - low) or 0.1 * abs(high) or 0.1
    ax.set_ylim(low - margin, high + 2 * margin)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test" + (" (stopped: diverged)" if result.diverged else ""))
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_layer_statistics(stats: Sequence[LayerStats], path: str | os.PathLike[str]) -> Path:
    """Three panels over the layers, input at the left: activation mean ± std, weight-gradient
    norm (log scale: vanishing gradients fall to the left, exploding ones rise), and the
    fraction of dead ReLU units."""
    if not isinstance(stats, Sequence) or not all(isinstance(s, LayerStats) for s in stats):
        raise DataError(f"expected a list of LayerStats, got {type(stats).__name__}")
    fig = Figure(figsize=(max(7.0, 0.35 * len(stats) + 3), 8.5), layout="constrained")
    act_ax, grad_ax, dead_ax = fig.subplots(3, 1, sharex=True)
    x = list(range(len(stats)))
    act_ax.errorbar(x, [s.activation_mean for s in stats], yerr=[s.activation_std for s in stats],
                    fmt="o", capsize=3, color=_SMOOTH_COLOR)
    act_ax.set_ylabel("activation mean ± std")
    grads = [(i, s.weight_grad_norm) for i, s in enumerate(stats)
             if s.weight_grad_norm is not None and s.weight_grad_norm > 0]
    if grads:
        grad_ax.plot(*zip(*grads, strict=True), marker="o", color=_MARK_COLOR)
        grad_ax.set_yscale("log")
    else:
        grad_ax.text(0.5, 0.5, "no weight gradients", ha="center", va="center",
                     transform=grad_ax.transAxes)
    grad_ax.set_ylabel("‖∂L/∂W‖")
    dead = [(i, s.dead_fraction) for i, s in enumerate(stats) if s.dead_fraction is not None]
    if dead:
        dead_ax.bar(*zip(*dead, strict=True), color="grey")
    else:
        dead_ax.text(0.5, 0.5, "no ReLU modules", ha="center", va="center",
                     transform=dead_ax.transAxes)
    dead_ax.set_ylim(0, 1.05)
    dead_ax.set_ylabel("dead ReLU fraction")
    dead_ax.set_xticks(x, labels=[f"{s.name} ({s.kind})" for s in stats], rotation=60,
                       ha="right", fontsize=8, parse_math=False)
    for ax in (act_ax, grad_ax, dead_ax):
        ax.grid(True, alpha=0.3)
    if not stats:
        act_ax.text(0.5, 0.5, "no layers", ha="center", va="center", transform=act_ax.transAxes)
    return _save(fig, path)


def plot_overfit(losses: Sequence[float], threshold: float, path: str | os.PathLike[str]) -> Path:
    """The loss of the one batch against optimiser step (log axis), the target dashed."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    steps = list(range(len(losses)))
    positive = [(s, v) for s, v in zip(steps, losses, strict=True) if math.isfinite(v) and v > 0]
    if positive:
        ax.plot(*zip(*positive, strict=True), color="#1f77b4", linewidth=1.5, label="loss")
        ax.set_yscale("log")
    ax.axhline(threshold, color="#d62728", linestyle="--", label=f"target {threshold:g}")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss on the batch")
    ax.set_title("overfit one batch")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)
