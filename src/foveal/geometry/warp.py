"""Image warping by a homography: inverse mapping with bilinear sampling.

**Inverse mapping.** ``H`` maps source pixels to destination pixels, ``x′ ~ H x``. Pushing every
source pixel forward would leave holes, so each destination pixel ``x′`` is pulled from the
source instead: ``x = π(H⁻¹ x′)`` with ``π(x, y, w) = (x/w, y/w)``, and the source is sampled
there by bilinear interpolation (HZ §2.3; Szeliski, *Computer Vision*, 2nd ed., §3.6.1).

**Pixel-centre convention.** Integer coordinates are pixel centres: pixel ``image[r, c]`` sits at
``(x, y) = (c, r)`` and covers ``[c − ½, c + ½] × [r − ½, r + ½]``. This is OpenCV's convention
(``cv2.warpPerspective``, ``cv2.remap``) and torch's ``grid_sample(align_corners=True)``.

**Bilinear sampling.** With ``x₀ = ⌊x⌋``, ``y₀ = ⌊y⌋``, ``α = x − x₀``, ``β = y − y₀``::

    I(x, y) = (1−α)(1−β) I[y₀, x₀] + α(1−β) I[y₀, x₀+1] + (1−α)β I[y₀+1, x₀] + αβ I[y₀+1, x₀+1]

Neighbours outside the image take the border value, so the last half pixel around the image
blends into it, as OpenCV's ``BORDER_CONSTANT`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError
from foveal.geometry import validate


def bilinear_sample(image: ArrayLike, xy: ArrayLike, *,
                    border_value: float | Sequence[float] = 0.0) -> np.ndarray:
    """Bilinear samples of ``image`` at sub-pixel positions (see the module for the formula).

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, any real dtype.
        xy: ``(..., 2)`` positions ``(x, y) = (column, row)``, integers at pixel centres.
        border_value: the value outside the image, a scalar or one per channel.

    Returns:
        Samples of shape ``(...)`` for a grayscale image, ``(..., C)`` for a colour one: float64
        for a float64 image, float32 otherwise.
    """
    op = "bilinear_sample"
    img = _image(image, op)
    p = np.asarray(xy, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] != 2:
        raise GeometryError(f"{op}: expected xy of shape (..., 2), got {p.shape}")
    if np.isinf(p).any() or np.isnan(p).any():
        raise GeometryError(f"{op}: expected finite xy, got NaN or inf")
    out = _bilinear(img, p[..., 0], p[..., 1], _border(border_value, img, op))
    return out[..., 0] if np.ndim(image) == 2 else out


def warp_perspective(
    image: ArrayLike,
    H: ArrayLike,
    output_shape: tuple[int, int],
    *,
    border_value: float | Sequence[float] = 0.0,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` by the homography ``H`` (source pixels → destination pixels).

    Destination pixel ``(u, v)`` takes the bilinear sample of ``image`` at ``π(H⁻¹ (u, v, 1)ᵀ)``;
    the equivalent of ``cv2.warpPerspective(image, H, (W, H), flags=cv2.INTER_LINEAR,
    borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, uint8, other integer or float dtype.
        H: 3×3, invertible, mapping source pixel coordinates to destination ones.
        output_shape: ``(rows, columns)`` of the result, NumPy's order (OpenCV's ``dsize`` is
            ``(width, height)``, the other way round).
        border_value: the value of destination pixels whose source lies outside the image.
        return_mask: also return the ``(rows, columns)`` bool mask of destination pixels whose
            source position lies within the image's pixel centres, ``[0, W−1] × [0, H−1]``
            (there, only real pixels are interpolated).

    Returns:
        The warped image, ``output_shape`` plus the channel axis if any, in the input dtype
        (integers rounded to nearest and clipped); with ``return_mask``, ``(image, mask)``.

    Raises:
        GeometryError: bad image, non-invertible ``H`` or bad ``output_shape``.
    """
    op = "warp_perspective"
    img = _image(image, op)
    Hm = validate.matrix(H, (3, 3), op, "H")
    try:
        rows, cols = (int(s) for s in output_shape)
    except (TypeError, ValueError):
        raise GeometryError(f"{op}: expected output_shape as (rows, columns), got "
                            f"{output_shape!r}") from None
    if rows < 1 or cols < 1:
        raise GeometryError(f"{op}: expected a positive output_shape, got {(rows, cols)}")
    sv = np.linalg.svd(Hm, compute_uv=False)
    if sv[2] <= 1e-12 * sv[0]:
        raise GeometryError(f"{op}: expected an invertible H, got singular values {sv.tolist()}")
    Hinv = np.linalg.inv(Hm)

    u = np.arange(cols, dtype=np.float64)[None, :]
    v = np.arange(rows, dtype=np.float64)[:, None]
    w = Hinv[2, 0] * u + Hinv[2, 1] * v + Hinv[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (Hinv[0, 0] * u + Hinv[0, 1] * v + Hinv[0, 2]) / w
        y = (Hinv[1, 0] * u + Hinv[1, 1] * v + Hinv[1, 2]) / w
    out = _bilinear(img, x, y, _border(border_value, img, op))
    if np.ndim(image) == 2:
        out = out[..., 0]
    dtype = np.asarray(image).dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(dtype, copy=False)
    if not return_mask:
        return out
    h, wd = img.shape[:2]
    mask = (x >= 0) & (x <= wd - 1) & (y >= 0) & (y <= h - 1)
    return out, mask


def _image(image: ArrayLike, op: str) -> np.ndarray:
    """The image as ``(H, W, C)`` float32 (exact for 8- and 16-bit pixels), float64 if it was."""
    a = np.asarray(image)
    if a.ndim not in (2, 3) or a.shape[0] < 1 or a.shape[1] < 1 or (a.ndim == 3
                                                                    and a.shape[2] < 1):
        raise GeometryError(f"{op}: expected an image of shape (H, W) or (H, W, C), got "
                            f"{a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
            or a.dtype == bool):
        raise GeometryError(f"{op}: expected a numeric image, got dtype {a.dtype}")
    a = a.astype(np.float64 if a.dtype == np.float64 else np.float32)
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{op}: expected a finite image, got NaN or inf pixels")
    return a[..., None] if a.ndim == 2 else a


def _border(value: float | Sequence[float], img: np.ndarray, op: str) -> np.ndarray:
    b = np.asarray(value, dtype=img.dtype).ravel()
    channels = img.shape[2]
    if b.size == 1:
        return np.full(channels, b[0])
    if b.size != channels:
        raise GeometryError(f"{op}: expected border_value as a scalar or {channels} values, got "
                            f"{b.size}")
    return b


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Samples of ``img`` (H, W, C) at ``(x, y)`` (any shape; NaN or inf = outside): (..., C)."""
    h, w, c = img.shape
    # Pad with the border value, 1 pixel before and 2 after, and clip positions to [−1, W]:
    # then every neighbour index is valid and far-away positions read pure border.
    padded = np.empty((c, h + 3, w + 3), dtype=img.dtype)
    padded[...] = border[:, None, None]
    padded[:, 1:h + 1, 1:w + 1] = np.moveaxis(img, 2, 0)
    planes = padded.reshape(c, -1)
    x = np.nan_to_num(x, nan=-1.0, posinf=-1.0, neginf=-1.0).clip(-1.0, w)
    y = np.nan_to_num(y, nan=-1.0, posinf=-1.0, neginf=-1.0).clip(-1.0, h)
    x0, y0 = np.floor(x), np.floor(y)
    a, b = (x - x0).astype(img.dtype), (y - y0).astype(img.dtype)
    i = (y0.astype(np.intp) + 1) * (w + 3) + (x0.astype(np.intp) + 1)
    out = np.empty((*np.shape(x), c), dtype=img.dtype)
    for k, plane in enumerate(planes):
        p00, p01 = plane.take(i), plane.take(i + 1)
        p10, p11 = plane.take(i + w + 3), plane.take(i + w + 4)
        top = p00 + a * (p01 - p00)
        out[..., k] = top + b * (p10 + a * (p11 - p10) - top)
    return out
