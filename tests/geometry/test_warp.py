"""Warping against OpenCV (cv2.warpPerspective with INTER_LINEAR and BORDER_CONSTANT) and closed
forms (identity, integer and half-pixel translations, bilinear interpolation reproducing affine
functions exactly)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.warp import bilinear_sample, warp_perspective

GRAF = Path(__file__).resolve().parents[3] / "shared" / "data" / "oxford_affine_graf" / "graf"
H_VIEW = np.array([[0.92, 0.12, 35.0], [-0.07, 1.04, 18.0], [2.1e-4, -1.3e-4, 1.0]])


def textured(rows=120, cols=160, channels=3, seed=0):
    """A smooth-ish random colour image (blurred noise), uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (rows, cols, channels)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0).reshape(rows, cols, channels)
    return np.clip(blurred * 3 - 255, 0, 255).astype(np.uint8)


def real_image():
    path = GRAF / "img1.ppm"
    if path.exists():
        return cv2.imread(str(path))[::2, ::2].copy()  # 320×400: enough texture, fast
    return textured(320, 400)


def interior(mask):
    """Destination pixels whose whole 3×3 neighbourhood samples inside the source."""
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def test_identity_and_integer_translation_are_exact_closed_form():
    img = textured()
    np.testing.assert_array_equal(warp_perspective(img, np.eye(3), img.shape[:2]), img)
    shift = np.array([[1.0, 0, 7], [0, 1, -4], [0, 0, 1]])  # x′ = x + 7, y′ = y − 4
    out, mask = warp_perspective(img, shift, img.shape[:2], return_mask=True)
    np.testing.assert_array_equal(out[:-4 - 1, 7:], img[4:-1, :-7])
    assert not mask[:, :7].any() and not mask[-4:].any() and mask[:-4, 7:].all()
    np.testing.assert_array_equal(out[:, :7], 0)


def test_half_pixel_translation_averages_neighbours_closed_form():
    img = textured(channels=1)[..., 0].astype(np.float64)
    out = warp_perspective(img, np.array([[1.0, 0, -0.5], [0, 1, 0], [0, 0, 1]]), img.shape)
    np.testing.assert_allclose(out[:, :-1], (img[:, :-1] + img[:, 1:]) / 2, atol=1e-12)


def test_integer_coordinates_are_pixel_centres():
    """Pitfall: sampling at (c, r) must return image[r, c] (OpenCV's convention), not a blend
    of four pixels as with a corner-based (align_corners=False) convention; and x is the
    column."""
    img = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(bilinear_sample(img, [[0, 0], [3, 0], [1, 2]]), [0, 3, 9])


def test_bilinear_reproduces_affine_functions_closed_form():
    """Bilinear interpolation of f(x, y) = 2x − 3y + 5 is exact inside the image."""
    yy, xx = np.mgrid[0:20, 0:30].astype(np.float64)
    img = np.stack([2 * xx - 3 * yy + 5, xx + yy], axis=-1)
    xy = np.random.default_rng(1).uniform([0, 0], [29, 19], (500, 2))
    got = bilinear_sample(img, xy)
    assert got.shape == (500, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got[:, 0], 2 * xy[:, 0] - 3 * xy[:, 1] + 5, atol=1e-10)
    np.testing.assert_allclose(got[:, 1], xy[:, 0] + xy[:, 1], atol=1e-10)


def test_outside_pixels_take_the_border_value_and_the_fringe_blends_like_opencv():
    img = np.full((4, 4), 100.0)
    got = bilinear_sample(img, [[-5.0, 1.0], [-0.5, 1.0], [3.25, 1.0], [1.0, 9.0]],
                          border_value=20.0)
    np.testing.assert_allclose(got, [20.0, 60.0, 80.0, 20.0])
    colour = warp_perspective(np.zeros((5, 5, 3), np.uint8), np.eye(3), (5, 8),
                              border_value=(1, 2, 3))
    np.testing.assert_array_equal(colour[:, 6], [[1, 2, 3]] * 5)


@pytest.mark.parametrize("channels", [None, 3])
def test_warp_perspective_matches_cv2_warp_perspective_uint8(channels):
    """OpenCV: cv2.warpPerspective(INTER_LINEAR, BORDER_CONSTANT) on a real image (graf img1,
    downsampled); mean abs difference well under a grey level on interior pixels."""
    img = real_image()
    if channels is None:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    rows, cols = img.shape[:2]
    ours, mask = warp_perspective(img, H_VIEW, (rows + 20, cols + 30), return_mask=True)
    theirs = cv2.warpPerspective(img, H_VIEW, (cols + 30, rows + 20), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    inner = interior(mask)
    assert inner.mean() > 0.5
    assert diff[inner].mean() < 0.1 and diff[inner].max() <= 1
    assert diff.mean() < 0.5  # the blended fringe agrees too


def test_warp_perspective_matches_cv2_on_float_images():
    """OpenCV on float32: differences only from OpenCV's 1/32-pixel position quantisation."""
    img = real_image().astype(np.float32) / 255
    ours, mask = warp_perspective(img, H_VIEW, img.shape[:2], return_mask=True)
    theirs = cv2.warpPerspective(img, H_VIEW, img.shape[1::-1], flags=cv2.INTER_LINEAR)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs)[interior(mask)].mean() < 1e-3


def test_output_shape_is_rows_by_columns_not_cv2_dsize():
    """Pitfall: OpenCV's dsize is (width, height); ours is NumPy's (rows, columns)."""
    img = textured(30, 50)
    assert warp_perspective(img, np.eye(3), (30, 50)).shape == (30, 50, 3)
    assert cv2.warpPerspective(img, np.eye(3), (30, 50)).shape == (50, 30, 3)


def test_bad_input_raises():
    img = textured()
    with pytest.raises(GeometryError, match="invertible H"):
        warp_perspective(img, np.diag([1.0, 1.0, 0.0]), (10, 10))
    with pytest.raises(GeometryError, match="positive output_shape"):
        warp_perspective(img, np.eye(3), (0, 10))
    with pytest.raises(GeometryError, match=r"image of shape \(H, W\) or \(H, W, C\)"):
        warp_perspective(np.zeros(5), np.eye(3), (10, 10))
    with pytest.raises(GeometryError, match="border_value as a scalar or 3 values"):
        warp_perspective(img, np.eye(3), (10, 10), border_value=(1, 2))
    with pytest.raises(GeometryError, match=r"xy of shape \(\.\.\., 2\)"):
        bilinear_sample(img, np.zeros((4, 3)))
    with pytest.raises(GeometryError, match="finite image"):
        warp_perspective(np.full((4, 4), np.nan), np.eye(3), (4, 4))
