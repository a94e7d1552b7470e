"""Figures and the report of a detector run: drawn boxes, loss curves, AP, ``report.html``.

Layout written by :func:`write_detector_report`::

    plots/losses.png        the four Faster R-CNN losses and their sum per epoch, val AP per epoch
    plots/predictions.png   validation images with predicted boxes (class, score) and ground truth
    plots/pr_curves.png     precision–recall at each IoU threshold (foveal.report.coco_eval)
    plots/pr_per_class.png  precision–recall per class at IoU 0.5
    report.html             metrics, figures, per-class AP and the config in one page

Boxes are drawn with PIL's ImageDraw: predictions in a colour per class with ``"name 0.93"``
above the box, ground truth as thin white outlines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from foveal.atomic import atomic_write_png
from foveal.errors import DataError
from foveal.report.coco_eval import plot_pr_curves, plot_pr_per_class
from foveal.report.html import Table, write_report
from foveal.report.plots import _save

__all__ = ["draw_detections", "plot_detection_grid", "plot_loss_curves",
           "write_detector_report"]

_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
            "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")
_LOSS_KEYS = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss")
SUMMARY_KEYS = ("ap50", "ap", "epochs", "wall_time_s", "images_per_s", "parameters",
                "train_images", "val_images", "dataset")


def draw_detections(image: np.ndarray, boxes: Any, labels: Sequence[int], scores: Any,
                    classes: Sequence[str], *, gt_boxes: Any = None,
                    scale: int = 1) -> Image.Image:
    """The uint8 RGB ``image`` ``(H, W, 3)`` with boxes drawn on it, enlarged ``scale`` times.

    ``boxes`` ``(D, 4)`` xyxy in the image's pixels, ``labels`` 1..K (``classes[label − 1]``),
    ``scores`` ``(D,)``; ``gt_boxes`` ``(G, 4)`` are outlined in white.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"expected a uint8 image of shape (H, W, 3), got {image.dtype} "
                        f"{image.shape}")
    canvas = Image.fromarray(image)
    if scale != 1:
        canvas = canvas.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    if gt_boxes is not None:
        for box in np.asarray(gt_boxes, dtype=float).reshape(-1, 4) * scale:
            draw.rectangle(box.tolist(), outline="white", width=1)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4) * scale
    for box, label, score in zip(boxes, list(labels), np.asarray(scores).tolist(), strict=True):
        colour = _PALETTE[(int(label) - 1) % len(_PALETTE)]
        draw.rectangle(box.tolist(), outline=colour, width=2)
        name = classes[int(label) - 1] if 0 < int(label) <= len(classes) else str(label)
        text = f"{name} {score:.2f}"
        x, y = box[0], max(0.0, box[1] - 11)
        left, top, right, bottom = draw.textbbox((x, y), text)
        draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=colour)
        draw.text((x, y), text, fill="white")
    return canvas


def plot_detection_grid(images: np.ndarray, detections: Sequence[Mapping[str, Any]],
                        classes: Sequence[str], path: str | os.PathLike[str], *,
                        gt_boxes: Sequence[Any] | None = None, ncols: int = 4,
                        scale: int = 2, score_threshold: float = 0.5) -> Path:
    """Draw each image's detections (score ≥ ``score_threshold``) and tile them in a grid PNG.

    ``images`` is ``(N, H, W, 3)`` uint8; ``detections`` one ``{"boxes", "labels", "scores"}``
    per image, in the images' pixels.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != len(detections) or len(images) == 0:
        raise DataError(f"expected N >= 1 images (N, H, W, 3) and N detections, got "
                        f"{images.shape} and {len(detections)}")
    tiles = []
    for i, (image, det) in enumerate(zip(images, detections, strict=True)):
        scores = np.asarray(det["scores"], dtype=float)
        keep = scores >= score_threshold
        tiles.append(draw_detections(
            image, np.asarray(det["boxes"], dtype=float)[keep],
            np.asarray(det["labels"])[keep].tolist(), scores[keep], classes,
            gt_boxes=None if gt_boxes is None else gt_boxes[i], scale=scale))
    w, h = tiles[0].size
    cols = min(ncols, len(tiles))
    rows = -(-len(tiles) // cols)
    pad = 4
    grid = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid.paste(tile, (pad + c * (w + pad), pad + r * (h + pad)))
    return atomic_write_png(path, grid)


def plot_loss_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Two panels: the training losses per epoch (log scale), and val AP@0.5 / AP@[.5:.95]."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_ap = fig.subplots(1, 2)
    for key in _LOSS_KEYS:
        pts = [(r["epoch"], r[key]) for r in history if key in r and r[key] > 0]
        if pts:
            ax_loss.plot(*zip(*pts, strict=True), marker="o", markersize=3,
                         label=key.removeprefix("loss_") if key != "loss" else "total",
                         linewidth=2.5 if key == "loss" else 1.2)
    ax_loss.set_yscale("log")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="losses")
    ax_loss.legend(fontsize=8)
    for key, label in (("val_ap50", "AP@0.5"), ("val_ap", "AP@[.5:.95]")):
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        if pts:
            ax_ap.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=label)
    ax_ap.set(xlabel="epoch", ylabel="AP", title="validation AP", ylim=(0, 1))
    ax_ap.legend(fontsize=8)
    for ax in (ax_loss, ax_ap):
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def write_detector_report(run_dir: str | os.PathLike[str], *, metrics: Mapping[str, Any],
                          history: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                          evaluation: Any, data: Any, detections: Sequence[Mapping[str, Any]],
                          title: str | None = None, max_images: int = 16) -> Path:
    """Write the figures and ``report.html`` of a detector run or evaluation into ``run_dir``.

    ``data`` is a :class:`foveal.detection.train.DetectionData` and ``detections`` the model's
    output on it (resized pixels, one dict per image); ``evaluation`` its ``CocoEvaluation``.
    """
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    figures: list[tuple[str, Path]] = []
    if history:
        figures.append(("Training losses and validation AP per epoch",
                        plot_loss_curves(history, plots / "losses.png")))
    n = min(max_images, len(data))
    images = data.images[:n].permute(0, 2, 3, 1).numpy()
    figures.append((
        f"Detections (score ≥ 0.5) on the first {n} images of {data.name}; ground truth in white",
        plot_detection_grid(images, detections[:n], data.classes, plots / "predictions.png",
                            gt_boxes=[t["boxes"].numpy() for t in data.targets[:n]])))
    figures.append(("Precision–recall at each IoU threshold (mean over classes)",
                    plot_pr_curves(evaluation, plots / "pr_curves.png")))
    figures.append(("Precision–recall per class at IoU 0.5",
                    plot_pr_per_class(evaluation, plots / "pr_per_class.png")))
    stats = list(metrics.get("coco_stats", []))
    names = list(metrics.get("coco_stat_names", [])) or [f"stat {i}" for i in range(len(stats))]
    tables = [Table("COCO bbox metrics on the validation set", ["metric", "value"],
                    [[name, value] for name, value in zip(names, stats, strict=False)])]
    per_class = metrics.get("per_class_ap") or {}
    if per_class:
        tables.append(Table("AP@[.5:.95] per class", ["class", "AP"],
                            [[k, v] for k, v in per_class.items()]))
    summary = {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}
    return write_report(run_dir / "report.html",
                        title=title or f"Faster R-CNN + FPN on {data.name.split('/')[0]}",
                        metrics=summary, config=config, figures=figures, tables=tables)
