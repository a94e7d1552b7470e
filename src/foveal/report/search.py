"""Plots of a hyperparameter search: the objective against each searched parameter."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from foveal.report.plots import _save


def plot_search(result: Any, path: str | os.PathLike[str]) -> Path:
    """One panel per numeric parameter: each trial's objective value against that parameter
    (log axis when the values span more than a decade), coloured by search round, the best
    trial circled. ``result`` is a :class:`foveal.training.search.SearchResult`."""
    trials = [t for t in result.trials if math.isfinite(t.value)]
    names = [n for n in (trials[0].params if trials else {})
             if all(isinstance(t.params[n], int | float) and not isinstance(t.params[n], bool)
                    for t in trials)]
    fig = Figure(figsize=(4 * max(1, len(names)), 3.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)
    best = result.best if trials else None
    for ax, name in zip(axes[0], names, strict=False):
        xs = [t.params[name] for t in trials]
        sc = ax.scatter(xs, [t.value for t in trials], c=[t.round for t in trials], cmap="viridis",
                        s=18)
        if min(xs) > 0 and max(xs) / min(xs) > 10:
            ax.set_xscale("log")
        if best is not None:
            ax.scatter([best.params[name]], [best.value], s=120, facecolors="none",
                       edgecolors="red", label="best")
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel("objective")
        ax.grid(alpha=0.3)
    if names and max(t.round for t in trials) > 0:
        fig.colorbar(sc, ax=axes[0, -1], label="round")
    fig.suptitle("hyperparameter search")
    return _save(fig, path)
