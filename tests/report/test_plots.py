"""Plots: each writes a valid PNG (oracle: Pillow decodes it) atomically, for awkward inputs too."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from foveal.errors import FovealError
from foveal.report.plots import plot_confusion_matrix, plot_image_grid, plot_training_curves

HISTORY = [
    {
        "epoch": e,
        "train_loss": 2.0 / e,
        "train_acc": 1 - 0.5 / e,
        "test_loss": 2.2 / e,
        "test_acc": 1 - 0.6 / e,
        "lr": 0.1 / e,
    }
    for e in range(1, 6)
]


def _assert_png(path: Path, min_size: tuple[int, int] = (200, 80)) -> tuple[int, int]:
    """Oracle: Pillow fully decodes the file as a PNG of a readable size."""
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        width, height = image.size
    assert width >= min_size[0] and height >= min_size[1]
    assert width <= 4000 and height <= 4000
    return width, height


def _no_temp_files(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_training_curves_png(tmp_path):
    path = plot_training_curves(HISTORY, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    _assert_png(path)
    _no_temp_files(tmp_path)


@pytest.mark.parametrize(
    "history",
    [
        [],
        [{"epoch": 1, "train_loss": 1.0}],
        [{"train_loss": 1.0, "train_acc": 0.5}, {"train_loss": 0.8, "train_acc": 0.6}],
        [
            {"epoch": 1, "train_loss": 1.0, "test_acc": None},
            {"epoch": 2, "train_loss": float("nan"), "test_acc": 0.7},
        ],
    ],
    ids=["empty", "one-epoch-loss-only", "no-epoch-key", "none-and-nan"],
)
def test_training_curves_with_missing_keys(tmp_path, history):
    """Missing, None or NaN entries are skipped rather than raising."""
    _assert_png(plot_training_curves(history, tmp_path / "curves.png"))


def test_training_curves_rejects_non_rows(tmp_path):
    with pytest.raises(FovealError, match="expected history as a list of dicts"):
        plot_training_curves([1, 2], tmp_path / "curves.png")


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png(tmp_path, normalize):
    cm = np.random.default_rng(0).integers(0, 30, size=(5, 5))
    cm[2] = 0  # a class with no samples must not divide by zero
    classes = ["cat", "dog", "$x$", "<script>", "a_long_class_name"]  # "$" must not be mathtext
    path = plot_confusion_matrix(cm, classes, tmp_path / "cm.png", normalize=normalize)
    _assert_png(path, (300, 300))


def test_confusion_matrix_many_classes_skips_annotations(tmp_path):
    cm = np.random.default_rng(1).integers(0, 5, size=(60, 60))
    _assert_png(plot_confusion_matrix(cm, [str(i) for i in range(60)], tmp_path / "cm.png"))


def test_confusion_matrix_rejects_mismatched_classes(tmp_path):
    with pytest.raises(FovealError, match="expected 3 class names for a 3×3 matrix, got 2"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()


@pytest.mark.parametrize("channels", [1, 3])
def test_image_grid_grey_and_rgb(tmp_path, channels):
    images = np.random.default_rng(channels).integers(0, 256, (11, 16, 16, channels), np.uint8)
    titles = [f"true: cat\npred: dog {i}" for i in range(11)]
    width, height = _assert_png(plot_image_grid(images, titles, tmp_path / "grid.png", ncols=4))
    assert height > width / 4 * 2  # three rows of four


def test_image_grid_grey_uses_full_range_not_autoscaled(tmp_path):
    """Pitfall: imshow autoscales a 2-D array, so a dark image would be drawn bright.

    Oracle: a constant 0 image and a constant 255 image render as black and white pixels.
    """
    images = np.stack([np.zeros((8, 8, 1), np.uint8), np.full((8, 8, 1), 255, np.uint8)])
    plot_image_grid(images, ["", ""], tmp_path / "grid.png", ncols=2)
    pixels = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    height, width = pixels.shape
    # The images sit in the middle band of each half of the figure.
    left = pixels[height // 3 : 2 * height // 3, width // 8 : 3 * width // 8]
    right = pixels[height // 3 : 2 * height // 3, 5 * width // 8 : 7 * width // 8]
    assert np.median(left) < 10 and np.median(right) > 245


def test_image_grid_empty_writes_a_message_figure(tmp_path):
    path = plot_image_grid(np.zeros((0, 8, 8, 3), np.uint8), [], tmp_path / "grid.png")
    _assert_png(path, (100, 50))


@pytest.mark.parametrize(
    ("images", "titles", "message"),
    [
        (np.zeros((2, 8, 8, 2), np.uint8), ["a", "b"], "expected uint8 images of shape"),
        (np.zeros((2, 8, 8, 3), np.float32), ["a", "b"], "expected uint8 images of shape"),
        (np.zeros((2, 8, 8), np.uint8), ["a", "b"], "expected uint8 images of shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), ["a"], "expected 2 titles, one per image, got 1"),
    ],
)
def test_image_grid_rejects_bad_input(tmp_path, images, titles, message):
    with pytest.raises(FovealError, match=message):
        plot_image_grid(images, titles, tmp_path / "grid.png")


def test_plot_into_read_only_directory_raises_and_leaves_no_file(tmp_path):
    """Oracle: atomic_write's contract; nothing, not even a temp file, appears on failure."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore directory permissions (root)")
        with pytest.raises(FovealError, match="cannot write to"):
            plot_training_curves(HISTORY, locked / "curves.png")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_plot_under_a_regular_file_raises_and_leaves_no_file(tmp_path):
    """Same guarantee where permissions cannot be used (e.g. root): the parent is a file."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(FovealError, match="cannot write to"):
        plot_image_grid(np.zeros((0, 4, 4, 1), np.uint8), [], blocker / "grid.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_dir"]


def test_overwrite_replaces_previous_file_without_temp_leftovers(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    plot_training_curves(HISTORY, path)
    _assert_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]
