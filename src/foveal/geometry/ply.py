"""PLY point clouds: write and read ``x y z`` (float64) with optional ``red green blue`` (uint8).

The binary little-endian PLY 1.0 layout (Turk, "The PLY polygon file format", 1994), the format
MeshLab, CloudCompare and Open3D read. Writes are atomic: a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from foveal.atomic import atomic_write_bytes
from foveal.errors import GeometryError
from foveal.geometry.validate import points as check_points


def _dtype(colors: bool) -> np.dtype:
    fields = [("x", "<f8"), ("y", "<f8"), ("z", "<f8")]
    if colors:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    return np.dtype(fields)


def write_ply(path: str | os.PathLike[str], points: ArrayLike,
              colors: ArrayLike | None = None) -> Path:
    """Write (N, 3) points and optional (N, 3) uint8 RGB colours as a binary PLY file."""
    xyz = check_points(points, 3, "write_ply", "points")
    rows = np.empty(len(xyz), dtype=_dtype(colors is not None))
    rows["x"], rows["y"], rows["z"] = xyz.T
    if colors is not None:
        rgb = np.asarray(colors)
        if rgb.shape != xyz.shape:
            raise GeometryError(f"write_ply: expected colors of shape {xyz.shape} like the "
                                f"points, got {rgb.shape}")
        rows["red"], rows["green"], rows["blue"] = np.clip(rgb, 0, 255).astype(np.uint8).T
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(xyz)}",
              "property double x", "property double y", "property double z"]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    data = ("\n".join([*header, "end_header"]) + "\n").encode("ascii") + rows.tobytes()
    atomic_write_bytes(path, data)
    return Path(path)


def read_ply(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a file written by :func:`write_ply` → ((N, 3) float64 points, (N, 3) uint8 or None)."""
    raw = Path(path).read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise GeometryError(f"read_ply: expected a PLY file starting with 'ply' and holding "
                            f"'end_header', got {str(path)!r}")
    header = raw[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise GeometryError(f"read_ply: expected binary_little_endian 1.0, got {header[1]!r}")
    count = next((int(h.split()[2]) for h in header if h.startswith("element vertex")), None)
    if count is None:
        raise GeometryError(f"read_ply: no 'element vertex' line in {str(path)!r}")
    colors = "property uchar red" in header
    dtype = _dtype(colors)
    body = raw[end + len(b"end_header\n"):]
    if len(body) < count * dtype.itemsize:
        raise GeometryError(f"read_ply: expected {count} vertices ({count * dtype.itemsize} "
                            f"bytes), got {len(body)} bytes")
    rows = np.frombuffer(body, dtype=dtype, count=count)
    xyz = np.stack([rows["x"], rows["y"], rows["z"]], axis=1)
    rgb = np.stack([rows["red"], rows["green"], rows["blue"]], axis=1) if colors else None
    return xyz, rgb
