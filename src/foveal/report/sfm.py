"""The outputs of a structure-from-motion run: plots of cameras and points, and the HTML report.

Layout of the folder :func:`write_sfm_report` fills (next to the ``cameras.json``,
``points.ply`` and ``metrics.json`` that :func:`foveal.geometry.sfm.run_sfm` writes)::

    plots/top_view.png       cameras and points seen from above the cameras' principal plane
    plots/view_3d.png        the same in a 3-D perspective, cameras as frustums
    plots/reprojection.png   histogram of the observations' reprojection errors (pixels)
    plots/observations.png   observations per image; unregistered images marked
    report.html              all of the above in one self-contained page

The functions take any object with the attributes of :class:`foveal.geometry.sfm.SfmResult`
(``names``, ``registered``, ``R``, ``t``, ``K``, ``points``, ``colors``, ``errors``,
``camera_index``, ...), so this module does not import the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from foveal.report.html import Table, write_report
from foveal.report.plots import _save

# Points drawn at most (a random subset beyond), to keep the PNGs small and quick to render.
_MAX_POINTS = 20_000
_CAMERA_COLOR, _REFERENCE_COLOR, _BACKGROUND = "#e4572e", "#29a3e0", "#1d2330"


def _centers(result: Any) -> np.ndarray:
    return -np.einsum("nji,nj->ni", result.R, result.t)


def _subsample(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """Points (≤ _MAX_POINTS, 3) and their colours in [0, 1], the same subset every time."""
    points, colors = np.asarray(result.points), np.asarray(result.colors) / 255.0
    if len(points) > _MAX_POINTS:
        keep = np.random.default_rng(0).choice(len(points), _MAX_POINTS, replace=False)
        points, colors = points[keep], colors[keep]
    return points, colors


def _plane_axes(result: Any) -> np.ndarray:
    """(3, 3) rows: two in-plane axes and the normal of the plane that best fits the camera
    centres (their principal axes), or the points when fewer than 3 cameras are registered.
    The normal points to the side the cameras look away from, so the view is from above."""
    reg = np.flatnonzero(result.registered)
    data = _centers(result)[reg] if len(reg) >= 3 else np.asarray(result.points)
    if len(data) < 3:
        return np.eye(3)
    _, _, Vt = np.linalg.svd(data - data.mean(0))
    axes = Vt.copy()
    if len(reg) and np.mean(result.R[reg, 2] @ axes[2]) > 0:
        axes[2] *= -1  # look down against the mean viewing direction
    if np.linalg.det(axes) < 0:
        axes[1] *= -1
    return axes


def plot_top_view(result: Any, path: str | os.PathLike[str],
                  reference: Mapping[str, Any] | None = None) -> Path:
    """Cameras and points projected on the cameras' principal plane (a "top view").

    Each registered camera is a dot at its centre with a line along its viewing direction
    (the third row of ``R``), labelled with its image index. ``reference`` (from
    :func:`foveal.geometry.sfm.ground_truth_errors`) adds the reference centres mapped into the
    reconstruction's frame, as rings.
    """
    axes = _plane_axes(result)
    points, colors = _subsample(result)
    reg = np.flatnonzero(result.registered)
    centers = _centers(result)[reg]
    fig = Figure(figsize=(7.5, 7), layout="constrained")
    ax = fig.subplots()
    ax.set_facecolor(_BACKGROUND)
    if len(points):
        uv = points @ axes[:2].T
        ax.scatter(uv[:, 0], uv[:, 1], s=1.5, c=colors, linewidths=0)
    if len(reg):
        c2 = centers @ axes[:2].T
        spread = np.ptp(np.vstack([c2, points @ axes[:2].T if len(points) else c2]), axis=0).max()
        look = result.R[reg, 2] @ axes[:2].T * 0.08 * max(spread, 1e-9)
        for (u, v), (du, dv), i in zip(c2, look, reg, strict=True):
            ax.plot([u, u + du], [v, v + dv], color=_CAMERA_COLOR, linewidth=1.5)
            ax.annotate(str(i), (u, v), textcoords="offset points", xytext=(4, 4),
                        color="white", fontsize=8)
        ax.scatter(c2[:, 0], c2[:, 1], s=30, color=_CAMERA_COLOR, label="cameras", zorder=3)
    if reference is not None and "_reference_in_model" in reference:
        r2 = np.asarray(reference["_reference_in_model"]) @ axes[:2].T
        ax.scatter(r2[:, 0], r2[:, 1], s=70, facecolors="none", edgecolors=_REFERENCE_COLOR,
                   linewidths=1.5, label="reference centres", zorder=4)
    if len(reg) or reference is not None:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"top view: {len(reg)} cameras, {len(result.points):,} points")
    ax.set_xlabel("first principal axis of the camera centres")
    ax.set_ylabel("second principal axis")
    return _save(fig, path)


def _frustum(K: np.ndarray, R: np.ndarray, C: np.ndarray, depth: float) -> np.ndarray:
    """(5, 3): the centre and the four image corners at ``depth`` along the optical axis."""
    w, h = 2 * K[0, 2], 2 * K[1, 2]  # the principal point is near the image centre
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
    rays = corners @ np.linalg.inv(K).T
    return np.vstack([C, C + depth * rays @ R])


def plot_3d_view(result: Any, path: str | os.PathLike[str]) -> Path:
    """Points and camera frustums in a 3-D perspective, the principal plane horizontal."""
    axes = _plane_axes(result)
    points, colors = _subsample(result)
    reg = np.flatnonzero(result.registered)
    centers = _centers(result)[reg]
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    ax.set_facecolor("white")
    frame = np.vstack([points, centers]) if len(points) or len(centers) else np.zeros((1, 3))
    frame = frame @ axes.T
    if len(points):
        p = points @ axes.T
        shade = np.where(colors.mean(1, keepdims=True) > 0.85, colors * 0.6, colors)
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=1.0, c=shade, depthshade=False)
    size = float(np.ptp(frame, axis=0).max()) or 1.0
    for i, C in zip(reg, centers, strict=True):
        f = _frustum(result.K[i], result.R[i], C, 0.06 * size) @ axes.T
        for a, b in ((0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1)):
            ax.plot(*f[[a, b]].T, color=_CAMERA_COLOR, linewidth=0.8)
        ax.text(*f[0], str(i), fontsize=7, color="black")
    middle = (frame.max(0) + frame.min(0)) / 2
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), middle, strict=True):
        setter(m - size / 2, m + size / 2)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=35, azim=-60)
    ax.set_title(f"3-D view: {len(reg)} cameras, {len(result.points):,} points")
    return _save(fig, path)


def plot_reprojection_errors(errors: Any, path: str | os.PathLike[str]) -> Path:
    """Histogram of reprojection errors (pixels) with the median and RMSE marked."""
    e = np.asarray(errors, dtype=np.float64)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if len(e):
        ax.hist(e, bins=50, color="#4c72b0")
        median, rmse = float(np.median(e)), float(np.sqrt(np.mean(e * e)))
        ax.axvline(median, color="#dd8452", linestyle="--", label=f"median {median:.2f} px")
        ax.axvline(rmse, color="#c44e52", linestyle=":", label=f"RMSE {rmse:.2f} px")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no observations", ha="center", va="center", transform=ax.transAxes,
                color="grey")
    ax.set_xlabel("reprojection error (px)")
    ax.set_ylabel("observations")
    ax.set_title(f"reprojection errors of {len(e):,} observations")
    return _save(fig, path)


def plot_observations_per_image(result: Any, path: str | os.PathLike[str]) -> Path:
    """Bars of observations kept per image; unregistered images are marked with a cross."""
    n = len(result.names)
    counts = np.bincount(np.asarray(result.camera_index), minlength=n)
    reg = np.asarray(result.registered, dtype=bool)
    fig = Figure(figsize=(max(6.0, 0.35 * n + 2), 4), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.flatnonzero(reg), counts[reg], color="#4c72b0", label="registered")
    if (~reg).any():
        ax.scatter(np.flatnonzero(~reg), np.zeros((~reg).sum()), marker="x", color="#c44e52",
                   s=40, label="not registered", zorder=3)
    labels = [str(name) for name in result.names] if n <= 40 else None
    if labels is not None:
        ax.set_xticks(range(n), labels=labels, rotation=90, fontsize=7, parse_math=False)
    ax.set_ylabel("observations")
    ax.set_title(f"observations per image ({int(reg.sum())} of {n} registered)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def write_sfm_report(out_dir: str | os.PathLike[str], result: Any,
                     metrics: Mapping[str, Any],
                     reference: Mapping[str, Any] | None = None) -> Path:
    """Write ``plots/*.png`` and ``report.html`` for a reconstruction into ``out_dir``.

    Args:
        out_dir: the run folder.
        result: an :class:`~foveal.geometry.sfm.SfmResult`.
        metrics: its :meth:`~foveal.geometry.sfm.SfmResult.metrics` (plus ``ground_truth`` and
            ``options``, shown when present).
        reference: the answer of :func:`foveal.geometry.sfm.ground_truth_errors`, or None.

    Returns:
        the path of ``report.html``.
    """
    out = Path(out_dir)
    plots = out / "plots"
    figures = [
        ("Top view: cameras (with viewing directions) and points", plot_top_view(
            result, plots / "top_view.png", reference)),
        ("3-D view: camera frustums and points", plot_3d_view(result, plots / "view_3d.png")),
        ("Reprojection errors", plot_reprojection_errors(result.errors,
                                                         plots / "reprojection.png")),
        ("Observations per image", plot_observations_per_image(result,
                                                               plots / "observations.png")),
    ]
    timings = dict(metrics.get("timings_s", {}))
    cards: dict[str, Any] = {
        "views_registered": f"{metrics['views_registered']} / {metrics['views']}",
        "points": metrics["points"],
        "observations": metrics["observations"],
        "reprojection_rmse_px": metrics["reprojection_rmse_px"],
        "reprojection_median_px": metrics["reprojection_median_px"],
        "mean_track_length": metrics["mean_track_length"],
    }
    truth = metrics.get("ground_truth")
    if truth:
        cards["median_rotation_error_deg"] = truth["median_rotation_deg"]
        cards["median_center_error_fraction"] = truth["median_center_error_fraction"]
    if "total_s" in timings:
        cards["wall_time_s"] = timings["total_s"]

    method = dict(getattr(result, "registration", []))
    per_image = truth.get("per_image", {}) if truth else {}
    counts = np.bincount(np.asarray(result.camera_index), minlength=len(result.names))
    rows = []
    for i, name in enumerate(result.names):
        err = per_image.get(name, {})
        rows.append([i, name, bool(result.registered[i]), method.get(i, "—"),
                     int(result.keypoint_counts[i]), int(counts[i]),
                     err.get("rotation_deg"), err.get("center_error")])
    columns = ["index", "image", "registered", "method", "keypoints", "observations",
               "rotation error (deg)", "centre error"]
    tables = [Table("Images", columns, rows),
              Table("Time per stage", ["stage", "time_s"],
                    [[k.removesuffix("_s"), v] for k, v in timings.items()])]
    log = list(getattr(result, "log", []))
    if log:
        tables.append(Table("Registration log", ["step", "event"],
                            [[k + 1, line] for k, line in enumerate(log)]))
    notes = ""
    if truth:
        notes = (f"Reference cameras: pose errors after a similarity alignment of the "
                 f"{truth['images']} registered camera centres to the reference ones (Umeyama); "
                 f"centre errors in reference units, the fraction is of the largest distance "
                 f"between reference centres ({truth['reference_diameter']:.4g}).")
    return write_report(out / "report.html", title="Structure from motion", metrics=cards,
                        config=metrics.get("options"), figures=figures, tables=tables,
                        notes=notes)
