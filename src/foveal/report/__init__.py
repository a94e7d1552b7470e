"""Plots and the self-contained HTML run report."""

from foveal.report.html import Table, format_metric, write_report
from foveal.report.plots import plot_confusion_matrix, plot_image_grid, plot_training_curves

__all__ = [
    "Table",
    "format_metric",
    "plot_confusion_matrix",
    "plot_image_grid",
    "plot_training_curves",
    "write_report",
]
