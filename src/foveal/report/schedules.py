"""PNG plot of a learning-rate schedule, e.g. from :func:`foveal.training.schedules.lr_curve`.

Drawn on an Agg :class:`~matplotlib.figure.Figure` without :mod:`matplotlib.pyplot` and written
atomically by :func:`foveal.report.plots._save`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from foveal.errors import DataError
from foveal.report.plots import _save


def plot_lr_schedule(
    lrs: Any, path: str | os.PathLike[str], *, title: str = "learning rate", log: bool = False
) -> Path:
    """Plot the learning rate against the optimiser step.

    Args:
        lrs: ``(T,)`` finite, non-negative learning rates, one per step (``T >= 1``).
        path: destination ``.png``.
        title: axes title, drawn literally (``$`` does not start mathtext).
        log: logarithmic rate axis (all rates must then be positive).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0:
        raise DataError(f"expected a non-empty 1-D array of learning rates, got shape {lrs.shape}")
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise DataError("expected finite, non-negative learning rates, got NaN, inf or < 0")
    if log and np.any(lrs <= 0):
        raise DataError("expected positive learning rates for a log axis, got a rate <= 0")
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.arange(lrs.size), lrs, color="#1f77b4", linewidth=1.5)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(title, parse_math=False)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)
