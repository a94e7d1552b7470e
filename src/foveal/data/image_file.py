"""Reading one image file into a NumPy array, with one-line errors naming the file.

Every reader of single image files in foveal (the geometry tools, the detector's images, ``foveal
detect predict``) goes through :func:`read_image_file`; each field passes the error type it
raises (:class:`~foveal.errors.DataError` by default, ``GeometryError`` for the geometry
functions) and the name of the calling operation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from foveal.errors import DataError, FovealError


def read_image_file(
    path: str | os.PathLike[str],
    *,
    grey: bool = False,
    error: type[FovealError] = DataError,
    op: str = "read_image_file",
) -> np.ndarray:
    """An image file (PNG, JPEG, PPM/PGM, …) as uint8 ``(H, W, 3)`` RGB or ``(H, W)`` grey.

    Palette, alpha and 16-bit images are converted by Pillow (``convert("RGB")`` or ``"L"``).
    Raises ``error`` (one line, prefixed by ``op``) when the file is missing, unreadable or not
    an image.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            array = np.asarray(img.convert("L" if grey else "RGB"))
    except FileNotFoundError:
        raise error(f"{op}: expected an existing image file, got '{p}' (not found)") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise error(f"{op}: expected a readable image file, got '{p}' ({exc.strerror})") \
            from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        size = p.stat().st_size if p.is_file() else 0
        raise error(f"{op}: expected a readable image file, got '{p}' ({size} bytes, "
                    f"corrupt or not an image: {type(exc).__name__})") from None
    return np.ascontiguousarray(array)
