"""The outputs of a COCO evaluation: precision–recall plots, metrics.json and the HTML report.

Layout of the folder :func:`write_coco_eval_report` fills::

    metrics.json                 CocoEvaluation.to_dict(): the 12 stats, per-class AP, parameters
    plots/pr_curves.png          PR curve at each IoU threshold (area all, largest budget),
                                 precision averaged over the categories that have objects
    plots/pr_per_class.png       one small PR panel per category at IoU 0.5
    report.html                  all of the above in one self-contained page

The curves are COCOeval's interpolated precision (non-increasing) read at the recall
thresholds, i.e. ``evaluation.precision[t, :, k, area, budget]``; the area under a curve is its
AP. The functions take any object with the attributes of
:class:`foveal.detection.coco_eval.CocoEvaluation`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from foveal.atomic import atomic_write_json
from foveal.report.html import Table, write_report
from foveal.report.plots import _save

__all__ = ["plot_pr_curves", "plot_pr_per_class", "write_coco_eval_report"]

_MAX_PANELS = 30  # per-class panels drawn at most (the categories with the most AP50 first)


def _all_area(evaluation: Any) -> int:
    labels = [a[0] for a in evaluation.area_ranges]
    return labels.index("all") if "all" in labels else 0


def _mean_curve(precision: np.ndarray) -> np.ndarray | None:
    """``(R, K)`` → mean over the categories with values (> −1), or None when there are none."""
    valid = (precision > -1).all(axis=0)
    if not valid.any():
        return None
    return precision[:, valid].mean(axis=1)


def plot_pr_curves(evaluation: Any, path: str | os.PathLike[str]) -> Path:
    """Precision against recall at every IoU threshold (area ``all``, largest budget).

    Each curve is the category mean of COCOeval's interpolated precision at the recall
    thresholds; its legend gives the AP (the curve's mean height).
    """
    a, m = _all_area(evaluation), len(evaluation.max_dets) - 1
    fig = Figure(figsize=(7, 5.2), layout="constrained")
    ax = fig.subplots()
    rec = np.asarray(evaluation.recall_thresholds)
    thresholds = list(evaluation.iou_thresholds)
    drawn = 0
    for t, thr in enumerate(thresholds):
        curve = _mean_curve(evaluation.precision[t, :, :, a, m])
        if curve is None:
            continue
        color = colormaps["viridis"](t / max(len(thresholds) - 1, 1))
        ax.plot(rec, curve, color=color, label=f"IoU {thr:.2f}  AP {curve.mean():.3f}")
        drawn += 1
    if drawn:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no category with ground truth", ha="center", va="center",
                transform=ax.transAxes, color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_title(f"{evaluation.iou_type}: PR curves per IoU threshold, area all, "
                 f"{evaluation.max_dets[m]} detections", fontsize=10)
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def plot_pr_per_class(evaluation: Any, path: str | os.PathLike[str],
                      iou_threshold: float = 0.5, max_panels: int = _MAX_PANELS) -> Path:
    """One small PR panel per category at ``iou_threshold`` (area ``all``, largest budget).

    Categories without ground truth are left out; with more than ``max_panels`` categories,
    the ones with the highest AP at that threshold are drawn.
    """
    a, m = _all_area(evaluation), len(evaluation.max_dets) - 1
    t_sel = np.flatnonzero(np.isclose(evaluation.iou_thresholds, iou_threshold))
    rec = np.asarray(evaluation.recall_thresholds)
    panels: list[tuple[str, np.ndarray]] = []
    if t_sel.size:
        for k, name in enumerate(evaluation.category_names):
            curve = evaluation.precision[t_sel[0], :, k, a, m]
            if (curve > -1).all():
                panels.append((str(name), curve))
    panels.sort(key=lambda p: -float(p[1].mean()))
    panels = panels[:max_panels]
    cols = min(6, max(len(panels), 1))
    rows = max(math.ceil(len(panels) / cols), 1)
    fig = Figure(figsize=(2.2 * cols + 0.5, 2.0 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.tick_params(labelsize=7)
    for ax, (name, curve) in zip(axes, panels, strict=False):
        ax.plot(rec, curve, color="#1f77b4")
        ax.fill_between(rec, curve, color="#1f77b4", alpha=0.15)
        ax.set_title(f"{name}  AP {curve.mean():.2f}", fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if not panels:
        axes[0].text(0.5, 0.5, f"no curve at IoU {iou_threshold:.2f}", ha="center",
                     va="center", transform=axes[0].transAxes, color="grey")
    fig.suptitle(f"{evaluation.iou_type}: PR per category at IoU {iou_threshold:.2f}",
                 fontsize=10)
    return _save(fig, path)


def write_coco_eval_report(out_dir: str | os.PathLike[str], evaluation: Any, *,
                           title: str | None = None,
                           config: Mapping[str, Any] | None = None) -> Path:
    """Write ``metrics.json``, ``plots/*.png`` and ``report.html`` for an evaluation.

    Args:
        out_dir: the output folder (created).
        evaluation: a :class:`~foveal.detection.coco_eval.CocoEvaluation`.
        title: the page heading (default ``"COCO <iou_type> evaluation"``).
        config: shown in the report (e.g. the input files).

    Returns:
        the path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluation.to_dict()
    atomic_write_json(out / "metrics.json", metrics)
    plots = out / "plots"
    figures = [
        ("Precision–recall per IoU threshold (mean over categories, area all)",
         plot_pr_curves(evaluation, plots / "pr_curves.png")),
        ("Precision–recall per category at IoU 0.50",
         plot_pr_per_class(evaluation, plots / "pr_per_class.png")),
    ]
    ap = evaluation.per_class_ap()
    ap50 = evaluation.per_class_ap(iou_threshold=0.5)
    rows = [[cid, name, ap[name], ap50.get(name, math.nan)]
            for cid, name in zip(evaluation.category_ids, evaluation.category_names,
                                 strict=True)]
    tables = [Table("AP per category (area all, largest budget)",
                    ["category id", "category", "AP", "AP50"], rows)]
    cards = {name: float(v) for name, v in metrics["stats"].items()}
    cards["images"] = int(metrics["num_images"])
    cards["detections"] = int(metrics["num_detections"])
    return write_report(out / "report.html",
                        title=title or f"COCO {evaluation.iou_type} evaluation",
                        metrics=cards, config=dict(config or {}), figures=figures,
                        tables=tables, notes=evaluation.summary())
