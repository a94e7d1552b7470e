"""Two-image panorama: register with a homography, warp onto a common canvas, blend.

1. **Register.** Unless ``H`` is given, SIFT keypoints
   (:func:`~foveal.geometry.features.detect_sift`) are matched by nearest neighbour with Lowe's
   ratio test, ``‖d − d₁‖ < ρ ‖d − d₂‖`` for the two nearest descriptors ``d₁``, ``d₂``
   (:func:`~foveal.geometry.matching.match_descriptors`; Lowe 2004, §7.1), and
   :func:`~foveal.geometry.homography.find_homography` fits ``x₂ ~ H x₁`` robustly. Image 2
   is the reference frame.
2. **Canvas.** Image 1's corners go through ``H``; the canvas is the bounding box of those and
   of image 2, and ``T`` translates image 2's pixels into it. Image 1 is warped by ``T H``
   (:func:`~foveal.geometry.warp.warp_perspective`), image 2 pasted at the offset.
3. **Blend.** Each pixel is the weighted mean ``Σₖ wₖ Iₖ / Σₖ wₖ`` of the images covering it.
   ``"feather"`` weights a pixel by its distance to its own image's border,
   ``w(c, r) = min(c + 1, W − c, r + 1, H − r)``, warped along with the image, so seams fade
   linearly (Szeliski, *Image alignment and stitching*, 2006, §6.1); ``"average"`` weights
   every covered pixel 1.

The plane at infinity is not handled: if a corner of image 1 maps behind image 2's camera
(``w ≤ 0``), the panorama is unbounded and :func:`stitch` raises.

Reference: HZ §2.3 and §4.7; M. Brown and D. Lowe, *Automatic panoramic image stitching using
invariant features*, IJCV 2007; D. Lowe, *Distinctive image features from scale-invariant
keypoints*, IJCV 2004.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry import validate
from foveal.geometry.features import detect_sift
from foveal.geometry.homography import find_homography
from foveal.geometry.image import to_grey8
from foveal.geometry.matching import match_descriptors
from foveal.geometry.warp import warp_perspective

_BLENDS = ("feather", "average")


@dataclass(frozen=True)
class Panorama:
    """What :func:`stitch` made.

    Attributes:
        image: the panorama, ``(rows, columns)`` or ``(rows, columns, C)``, the inputs' dtype;
            pixels covered by neither image are 0.
        H: the 3×3 homography used, image 1 pixels → image 2 pixels (``x₂ ~ H x₁``).
        inliers: RANSAC inliers among the SIFT matches (None when ``H`` was given).
        T: 3×3 translation, image 2 pixels → panorama pixels; image 1 maps by ``T H``.
    """

    image: np.ndarray
    H: np.ndarray
    inliers: int | None
    T: np.ndarray


def stitch(
    image1: ArrayLike,
    image2: ArrayLike,
    H: ArrayLike | None = None,
    *,
    blend: str = "feather",
    ratio: float = 0.75,
    threshold: float = 3.0,
    max_features: int = 4000,
    max_pixels: int = 50_000_000,
    seed: int | None = 0,
) -> Panorama:
    """Stitch two overlapping images into one panorama in image 2's frame (see the module).

    Args:
        image1, image2: ``(H, W)`` or ``(H, W, C)`` images with the same number of channels
            (uint8 for feature matching; other dtypes are rescaled to 0–255 for SIFT only).
        H: image 1 → image 2 homography; estimated from SIFT matches when None.
        blend: ``"feather"`` or ``"average"``.
        ratio: Lowe's ratio ``ρ`` for the matches.
        threshold: RANSAC inlier threshold in image 2 pixels.
        max_features: SIFT keypoints kept per image (the strongest).
        max_pixels: refuse canvases larger than this (a nearly degenerate ``H`` can ask for
            billions of pixels).
        seed: RANSAC seed.

    Returns:
        A :class:`Panorama`: the image, the ``H`` used, the inlier count and the canvas offset.

    Raises:
        GeometryError: bad images, too few matches, or an ``H`` that sends image 1 to
            infinity or onto a canvas larger than ``max_pixels``.
    """
    op = "stitch"
    a, b = np.asarray(image1), np.asarray(image2)
    for name, img in (("image1", a), ("image2", b)):
        if img.ndim not in (2, 3) or min(img.shape[:2]) < 2:
            raise GeometryError(f"{op}: expected {name} of shape (H, W) or (H, W, C) with H, "
                                f"W ≥ 2, got {img.shape}")
    if a.shape[2:] != b.shape[2:]:
        raise GeometryError(f"{op}: expected images with the same channels, got {a.shape} and "
                            f"{b.shape}")
    if blend not in _BLENDS:
        raise GeometryError(f"{op}: expected blend in {_BLENDS}, got {blend!r}")

    inliers: int | None = None
    if H is None:
        x1, x2 = _sift_matches(a, b, validate.positive(ratio, op, "ratio"), max_features)
        if len(x1) < 4:
            raise GeometryError(f"{op}: expected at least 4 SIFT matches to estimate H, got "
                                f"{len(x1)}")
        Hm, mask = find_homography(x1, x2, threshold, seed=seed)
        inliers = int(mask.sum())
    else:
        Hm = validate.matrix(H, (3, 3), op, "H")

    h1, w1 = a.shape[:2]
    h2, w2 = b.shape[:2]
    corners = np.array([[0, 0, 1], [w1 - 1, 0, 1], [w1 - 1, h1 - 1, 1], [0, h1 - 1, 1]], float)
    mapped = corners @ Hm.T
    if np.any(mapped[:, 2] <= 1e-12 * np.abs(mapped).max()):
        raise GeometryError(f"{op}: expected H to map image1's corners to finite points in "
                            f"front, got w = {mapped[:, 2].tolist()}")
    xy = mapped[:, :2] / mapped[:, 2:]
    # Pixel centres within the images' extent (half a pixel beyond the outer centres), so that
    # an estimated corner at y = −0.02 does not add a near-empty row.
    lo = np.ceil(np.minimum(xy.min(axis=0), 0.0) - 0.5)
    hi = np.floor(np.maximum(xy.max(axis=0), [w2 - 1, h2 - 1]) + 0.5)
    cols, rows = (hi - lo + 1).astype(np.int64)
    if rows * cols > max_pixels:
        raise GeometryError(f"{op}: expected a canvas of at most {max_pixels} pixels, got "
                            f"{rows}×{cols}; is H right?")
    T = np.array([[1.0, 0.0, -lo[0]], [0.0, 1.0, -lo[1]], [0.0, 0.0, 1.0]])
    ox, oy = int(-lo[0]), int(-lo[1])

    warped1, cover1 = warp_perspective(a.astype(np.float32), T @ Hm, (rows, cols),
                                       return_mask=True)
    canvas2 = np.zeros_like(warped1)
    canvas2[oy:oy + h2, ox:ox + w2] = b
    if blend == "feather":
        weight1 = warp_perspective(_feather(h1, w1), T @ Hm, (rows, cols)) * cover1
        weight2 = np.zeros((rows, cols), np.float32)
        weight2[oy:oy + h2, ox:ox + w2] = _feather(h2, w2)
    else:
        weight1 = cover1.astype(np.float32)
        weight2 = np.zeros((rows, cols), np.float32)
        weight2[oy:oy + h2, ox:ox + w2] = 1.0
    total = weight1 + weight2
    if warped1.ndim == 3:
        weight1, weight2, total = weight1[..., None], weight2[..., None], total[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        pano = np.where(total > 0, (weight1 * warped1 + weight2 * canvas2) / total, 0.0)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        pano = np.clip(np.rint(pano), info.min, info.max)
    return Panorama(pano.astype(a.dtype), Hm, inliers, T)


def _feather(rows: int, cols: int) -> np.ndarray:
    """``w(c, r) = min(c + 1, W − c, r + 1, H − r)``: 1 on the border, growing inwards."""
    c = np.arange(cols, dtype=np.float32)
    r = np.arange(rows, dtype=np.float32)
    return np.minimum(np.minimum(c + 1, cols - c)[None, :], np.minimum(r + 1, rows - r)[:, None])


def _sift_matches(image1: np.ndarray, image2: np.ndarray, ratio: float,
                  max_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Matched SIFT keypoint positions ``(M, 2)``, ``(M, 2)`` after Lowe's ratio test."""
    f1, f2 = (detect_sift(to_grey8(im, op="stitch"), max_features) for im in (image1, image2))
    if len(f1.keypoints) < 2 or len(f2.keypoints) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = match_descriptors(f1.descriptors, f2.descriptors, ratio=ratio, mutual=False).pairs
    return f1.keypoints[pairs[:, 0]], f2.keypoints[pairs[:, 1]]
