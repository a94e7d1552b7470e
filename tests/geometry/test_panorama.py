"""Two-image stitching against the Oxford affine dataset's ground-truth homography (graf H1to2p,
Mikolajczyk et al. 2005), a closed form (two crops of one image rebuild it), and OpenCV's
BFMatcher.knnMatch for the ratio-test matcher."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from foveal.errors import GeometryError
from foveal.geometry.panorama import Panorama, stitch
from foveal.geometry.warp import warp_perspective

GRAF = Path(__file__).resolve().parents[3] / "shared" / "data" / "oxford_affine_graf" / "graf"
needs_graf = pytest.mark.skipif(not (GRAF / "img2.ppm").exists(),
                                reason=f"Oxford graf images not found under {GRAF}")


def transfer(H, x):
    y = np.column_stack([x, np.ones(len(x))]) @ H.T
    return y[:, :2] / y[:, 2:]


@pytest.fixture(scope="module")
def graf():
    img1, img2 = (cv2.imread(str(GRAF / f"img{i}.ppm")) for i in (1, 2))
    H_gt = np.loadtxt(GRAF / "H1to2p")
    return img1, img2, H_gt, stitch(img1, img2)


@needs_graf
def test_stitch_graf_h_matches_ground_truth_h1to2p(graf):
    """Published ground truth: the Oxford graf H1to2p (img1 → img2), on a grid over img1."""
    img1, _, H_gt, pano = graf
    assert isinstance(pano, Panorama) and pano.inliers > 100
    rows, cols = img1.shape[:2]
    grid = np.stack(np.meshgrid(np.linspace(0, cols - 1, 20), np.linspace(0, rows - 1, 16)),
                    -1).reshape(-1, 2)
    error = np.linalg.norm(transfer(pano.H, grid) - transfer(H_gt, grid), axis=1)
    assert error.mean() < 1.5 and error.max() < 4.0


@needs_graf
def test_stitch_graf_overlap_agrees_with_img1_warped_by_ground_truth(graf):
    """Ground truth: where both images cover the canvas, the panorama looks like img1 warped
    by T·H1to2p (what remains is img1/img2's own difference in appearance), far closer than
    img1 warped by a ground truth shifted by 8 px."""
    img1, img2, H_gt, pano = graf
    rows, cols = pano.image.shape[:2]
    truth, cover1 = warp_perspective(img1, pano.T @ H_gt, (rows, cols), return_mask=True)
    shifted = warp_perspective(img1, pano.T @ np.array([[1, 0, 8], [0, 1, 0], [0, 0, 1.0]])
                               @ H_gt, (rows, cols))
    oy, ox = int(pano.T[1, 2]), int(pano.T[0, 2])
    cover2 = np.zeros((rows, cols), bool)
    cover2[oy:oy + img2.shape[0], ox:ox + img2.shape[1]] = True
    overlap = cover1 & cover2
    assert overlap.mean() > 0.3
    p = pano.image[overlap].astype(float)
    good = np.abs(p - truth[overlap]).mean()
    bad = np.abs(p - shifted[overlap]).mean()
    assert good < 12 and good < 0.4 * bad
    assert np.corrcoef(p.ravel(), truth[overlap].astype(float).ravel())[0, 1] > 0.9


def base_image():
    if (GRAF / "img1.ppm").exists():
        return cv2.imread(str(GRAF / "img1.ppm"))[::2, ::2].copy()  # 320×400, real texture
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (320, 400, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(noise * 4 - 380, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("blend", ["feather", "average"])
def test_two_crops_rebuild_the_image_closed_form(blend):
    """Closed form: crops [:, :260] and [:, 140:] of one image differ by x₂ = x₁ − 140; the
    estimated H is that translation and the panorama is the original image."""
    img = base_image()
    left, right = img[:, :260], img[:, 140:]
    pano = stitch(left, right, blend=blend)
    # over the overlap, H maps like the translation to a tenth of a pixel
    gx, gy = np.meshgrid(np.linspace(140, 259, 12), np.linspace(0, img.shape[0] - 1, 16))
    grid = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], 1)
    mapped = grid @ pano.H.T
    error = np.linalg.norm(mapped[:, :2] / mapped[:, 2:] - (grid[:, :2] - [140, 0]), axis=1)
    assert error.mean() < 0.1 and error.max() < 0.25
    assert pano.image.shape == img.shape and pano.image.dtype == np.uint8
    assert np.abs(pano.image.astype(int) - img).mean() < 1.0


def test_given_h_is_used_as_is_and_image2_is_pasted_exactly():
    img = base_image()
    left, right = img[:, :260], img[:, 140:].copy()
    H = np.array([[1.0, 0, -140], [0, 1, 0], [0, 0, 1]])
    pano = stitch(left, right, H, blend="average")
    assert pano.inliers is None
    np.testing.assert_array_equal(pano.H, H)
    np.testing.assert_array_equal(pano.T, [[1, 0, 140], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(pano.image, img)  # integer shift: both agree exactly
    gray = stitch(left[..., 0], right[..., 0], H)
    assert gray.image.shape == img.shape[:2]


def test_bad_input_raises():
    img = base_image()
    with pytest.raises(GeometryError, match="same channels"):
        stitch(img, img[..., 0], np.eye(3))
    with pytest.raises(GeometryError, match="blend in"):
        stitch(img, img, np.eye(3), blend="max")
    with pytest.raises(GeometryError, match="finite points in front"):
        stitch(img, img, np.array([[1.0, 0, 0], [0, 1, 0], [-0.01, 0, 1]]))
    with pytest.raises(GeometryError, match="canvas of at most"):
        stitch(img, img, np.diag([1000.0, 1000.0, 1.0]))
    with pytest.raises(GeometryError, match="at least 4 SIFT matches"):
        stitch(np.zeros((50, 50), np.uint8), np.zeros((50, 50), np.uint8))
