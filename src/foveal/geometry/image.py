"""Images for geometry: read a file into an array, and convert colour to grey.

Arrays are ``(H, W, 3)`` RGB or ``(H, W)`` grey, row 0 at the top, column 0 on the left; pixel
``(x, y)`` = column ``x``, row ``y``, with integer coordinates at pixel centres (OpenCV's
convention). Grey is BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B``.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from foveal.errors import GeometryError

LUMA = np.array([0.299, 0.587, 0.114])


def read_image(path: str | os.PathLike[str], *, grey: bool = False,
               op: str = "read_image") -> np.ndarray:
    """An image file (PNG, JPEG, PPM/PGM, …) as uint8 ``(H, W, 3)`` RGB or ``(H, W)`` grey.

    Raises :class:`~foveal.errors.GeometryError` naming the file when it is missing, unreadable
    or not an image (``op`` names the calling function in that message).
    """
    from foveal.data.image_file import read_image_file

    return read_image_file(path, grey=grey, error=GeometryError, op=op)


def to_grey(image: ArrayLike, *, op: str = "to_grey", name: str = "image") -> np.ndarray:
    """``image`` (H, W) grey or (H, W, 3) RGB, uint8 or float, as a finite (H, W) float64 array.

    Values keep their scale (0–255 for uint8); a fourth (alpha) channel is ignored.
    """
    a = np.asarray(image)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer)
                               or np.issubdtype(a.dtype, np.floating)):
        raise GeometryError(f"{op}: expected {name} as a numeric image, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3].astype(np.float64) @ LUMA
    if a.ndim != 2 or 0 in a.shape:
        raise GeometryError(f"{op}: expected {name} of shape (H, W) or (H, W, 3), got {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{op}: expected a finite {name}, got "
                            f"{a.size - np.count_nonzero(np.isfinite(a))} NaN or inf pixel(s)")
    return a


def to_grey8(image: ArrayLike, *, op: str = "to_grey8", name: str = "image") -> np.ndarray:
    """:func:`to_grey` rounded to uint8; float images outside 0–255 are first stretched to it."""
    g = to_grey(image, op=op, name=name)
    if np.asarray(image).dtype != np.uint8 and (g.min() < 0 or g.max() > 255):
        lo, hi = float(g.min()), float(g.max())
        g = (g - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(g)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)
