"""Synthetic shapes: a detection and instance-segmentation dataset generated in memory.

Each image is ``image_size × image_size`` RGB ``uint8`` on a textured background, one of

* ``gradient``: a linear ramp between two colours in a random direction;
* ``stripes``: sinusoidal or hard-edged stripes, period 6–24 px, random direction;
* ``checker``: a rotated checkerboard, period 8–32 px;
* ``noise``: smooth value noise (a random 3×3 to 8×8 grid, bilinearly upsampled),

always between two colours that differ by at most 80 levels per channel, so that the
background is textured but quieter than the objects. Near-uniform integer noise (±``noise``
levels per pixel and channel) is added to the finished image.

Objects. ``min_objects``–``max_objects`` objects per image (default 1–5), each of a class drawn
uniformly from :data:`SHAPE_CLASSES` (category id = index + 1):

============  ==============================================================================
circle        a disc of radius r
rectangle     aspect ratio 0.5–1 (squares included), corners on the circle of radius r
triangle      vertices on radius 0.85r–r, 120° apart each moved by ≤ 14° (no slivers)
ellipse       semi-axes r and 0.4r–0.7r
star          five points at radius r, inner radius 0.38r–0.5r
hexagon       regular, corners at radius r
cross         a plus sign, arm width 0.25–0.35 of its length, corners at radius r
============  ==============================================================================

The "size" of an object is the diameter ``2r`` of the circle that holds it, drawn log-uniformly
from ``[min_size, max_size]`` (default 12–56 px; an unoccluded object's bounding box is at most
one pixel wider); every object has a random rotation and lies entirely inside the image. Its
colour is the one of 8 random RGB candidates that contrasts best with the pixels it covers
(fewest covered pixels closer than 64 in RGB distance), so objects stand out from the texture and
from the objects beneath them.

Occlusion. Objects are painted in order, later ones over earlier ones; a per-pixel instance map
records which object each pixel shows, and an object's annotation is exactly its **visible**
pixels. A placement that would leave any earlier object with less than ``min_visible`` (default
0.5) of its own area visible is rejected and re-drawn (new size, position and rotation, same
class), up to 20 times, after which that object is left out. So every annotated object shows at
least half of itself and nothing is drawn that is not annotated. (A visible region may be split
into several pieces by an occluder.)

Rasterisation is exact at pixel centres ``(x + 0.5, y + 0.5)``, with no anti-aliasing: a convex
polygon is the intersection of the inner half-planes of its edges, a star is its inner pentagon
united with five tip triangles, a cross is two rectangles, and a circle/ellipse is
``(u/a)² + (v/b)² ≤ 1`` in the rotated frame. Each test runs vectorised over the object's
bounding window only.

Ground truth is a COCO dictionary: ``images`` ``{id, file_name, height, width}`` with ids 1..n
and file names ``f"{id:06d}.png"``; ``annotations`` ``{id, image_id, category_id, bbox, area,
segmentation, iscrowd}`` with ``bbox = [x0, y0, x1 − x0 + 1, y1 − y0 + 1]`` over the visible
pixels (COCO xywh, equal to ``pycocotools.mask.toBbox``), ``area`` = visible pixel count and
``segmentation`` a compressed RLE; ``categories`` ``{id, name, supercategory: "shape"}``; and
``info`` with the generator's parameters.

Determinism: image ``i`` depends only on ``(seed, i)`` and the other parameters (its random stream
is ``SeedSequence(seed, spawn_key=(i,))``), so the same call gives identical arrays, JSON and PNG
bytes, and a larger ``n`` extends a smaller one. (Across NumPy versions or CPUs, vectorised
``sin``/``cos`` may round differently in the last bit, which can move a background level or a
boundary pixel.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from tqdm.auto import tqdm

from foveal.atomic import atomic_write_json, atomic_write_png
from foveal.detection.mask import rle_encode
from foveal.errors import DataError

__all__ = ["BACKGROUNDS", "SHAPE_CLASSES", "generate_shapes", "write_shapes_dataset"]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle", "rectangle", "triangle", "ellipse", "star", "hexagon", "cross",
)
BACKGROUNDS: tuple[str, ...] = ("gradient", "stripes", "checker", "noise")

_PLACEMENT_TRIES = 20
_COLOUR_CANDIDATES = 8
_MIN_CONTRAST = 64.0  # RGB distance below which a covered pixel counts as "too similar"
_BACKGROUND_SPREAD = 80  # max per-channel difference between the two background colours

# A shape is a list of parts, each ("polygons", vertices (m, k, 2): m convex k-gons, vertices in
# order around each) or ("ellipse", (cx, cy, a, b, theta)); the shape is the union of its parts.
_Part = tuple[str, Any]


# --------------------------------------------------------------------------- geometry


def _randint(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in ``[low, high)`` (``rng.integers`` is slow for one number)."""
    return min(low + int(rng.random() * (high - low)), high - 1)


def _on_circle(cx: float, cy: float, radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Points ``(cx + r cos a, cy + r sin a)``, shape ``(k, 2)``."""
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _rotated(cx: float, cy: float, local: np.ndarray, theta: float) -> np.ndarray:
    """``local`` points ``(k, 2)`` rotated by ``theta`` and moved to ``(cx, cy)``."""
    c, s = math.cos(theta), math.sin(theta)
    return np.stack([cx + c * local[:, 0] - s * local[:, 1],
                     cy + s * local[:, 0] + c * local[:, 1]], axis=1)


def _shape_parts(name: str, cx: float, cy: float, r: float, theta: float,
                 rng: np.random.Generator) -> list[_Part]:
    """The convex parts of shape ``name`` inside the circle of radius ``r`` around (cx, cy)."""
    if name == "circle":
        return [("ellipse", (cx, cy, r, r, 0.0))]
    if name == "ellipse":
        return [("ellipse", (cx, cy, r, r * rng.uniform(0.4, 0.7), theta))]
    if name == "rectangle":
        phi = math.atan(rng.uniform(0.5, 1.0))  # h/w = tan(phi); corners at ±phi, π ± phi
        angles = theta + np.array([phi, math.pi - phi, math.pi + phi, 2 * math.pi - phi])
        return [("polygons", _on_circle(cx, cy, np.full(4, r), angles)[None])]
    if name == "triangle":
        angles = theta + np.arange(3) * (2 * math.pi / 3) + rng.uniform(-0.25, 0.25, 3)
        return [("polygons", _on_circle(cx, cy, r * rng.uniform(0.85, 1.0, 3), angles)[None])]
    if name == "hexagon":
        angles = theta + np.arange(6) * (math.pi / 3)
        return [("polygons", _on_circle(cx, cy, np.full(6, r), angles)[None])]
    if name == "star":
        tips = theta + np.arange(5) * (2 * math.pi / 5)
        outer = _on_circle(cx, cy, np.full(5, r), tips)
        inner = _on_circle(cx, cy, np.full(5, r * rng.uniform(0.38, 0.5)), tips + math.pi / 5)
        tips_triangles = np.stack([inner[[4, 0, 1, 2, 3]], outer, inner], axis=1)  # (5, 3, 2)
        return [("polygons", inner[None]), ("polygons", tips_triangles)]
    if name == "cross":
        q = rng.uniform(0.25, 0.35)  # arm half-width / arm half-length
        length = r / math.sqrt(1 + q * q)
        width = q * length
        arm = np.array([[width, length], [-width, length], [-width, -length], [width, -length]])
        arms = np.concatenate([arm, arm[:, ::-1] * [1, -1]])
        return [("polygons", _rotated(cx, cy, arms, theta).reshape(2, 4, 2))]
    raise DataError(f"expected a shape class in {SHAPE_CLASSES}, got {name!r}")


def _rasterize(parts: list[_Part], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean mask ``(len(ys), len(xs))`` of the pixel centres ``xs`` (1, w), ``ys`` (h, 1)
    that lie in the union of ``parts`` (boundaries included)."""
    mask = np.zeros((ys.shape[0], xs.shape[1]), dtype=bool)
    for kind, geometry in parts:
        if kind == "ellipse":
            cx, cy, a, b, theta = geometry
            dx, dy = xs - cx, ys - cy
            c, s = math.cos(theta), math.sin(theta)
            u, v = c * dx + s * dy, c * dy - s * dx
            mask |= (u / a) ** 2 + (v / b) ** 2 <= 1.0
            continue
        # inside a convex polygon = on the inner side of every edge e = v_{i+1} − v_i:
        # e × (p − v_i) = e_x (p_y − v_iy) − e_y (p_x − v_ix) ≥ 0 for a positive signed area
        # (edges reversed otherwise). Axes: polygon, edge, coordinate, then the window's y, x.
        v = geometry[:, :, :, None, None]
        e = np.concatenate((v[:, 1:], v[:, :1]), axis=1) - v
        e *= np.sign((e[:, :, 1] * v[:, :, 0] - e[:, :, 0] * v[:, :, 1]).sum(axis=1)).reshape(
            -1, 1, 1, 1, 1)
        inside = e[:, :, 0] * (ys - v[:, :, 1]) >= e[:, :, 1] * (xs - v[:, :, 0])
        mask |= inside.all(axis=1).any(axis=0)
    return mask


# --------------------------------------------------------------------------- appearance


def _interpolation_matrix(n: int, k: int) -> np.ndarray:
    """``(n, k)`` weights of linear interpolation from ``k`` grid nodes spanning ``n`` pixels."""
    p = (np.arange(n) + 0.5) / n * (k - 1)
    i0 = np.minimum(np.floor(p).astype(np.int64), k - 2)
    f = p - i0
    w = np.zeros((n, k))
    w[np.arange(n), i0] = 1 - f
    w[np.arange(n), i0 + 1] = f
    return w


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background, float32 ``(3, size, size)`` (planar) in [0, 255]; see the module
    docstring."""
    kind = BACKGROUNDS[_randint(rng, 0, len(BACKGROUNDS))]
    xs = np.arange(size, dtype=np.float32)[None, :]
    ys = xs.T
    angle = rng.uniform(0, 2 * math.pi)
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    u = xs * c + ys * s
    if kind == "gradient":
        t = (u - u.min()) / np.ptp(u)
    elif kind == "stripes":
        t = 0.5 + 0.5 * np.sin(u * np.float32(2 * math.pi / rng.uniform(6, 24))
                               + np.float32(rng.uniform(0, 2 * math.pi)))
        if rng.random() < 0.5:
            t = (t > 0.5).astype(np.float32)
    elif kind == "checker":
        period = np.float32(rng.uniform(8, 32))
        t = ((np.floor(u / period) + np.floor((ys * c - xs * s) / period)) % 2).astype(np.float32)
    else:
        k = _randint(rng, 3, 9)
        w = _interpolation_matrix(size, k).astype(np.float32)
        t = w @ rng.random((k, k), dtype=np.float32) @ w.T
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    c0 = np.floor(rng.random(3) * 256)
    c1 = np.clip(c0 + np.floor(rng.random(3) * (2 * _BACKGROUND_SPREAD + 1)) - _BACKGROUND_SPREAD,
                 0, 255)
    return c0.astype(np.float32)[:, None, None] + (c1 - c0).astype(np.float32)[:, None, None] * t


def _contrasting_colour(rng: np.random.Generator, covered: np.ndarray) -> np.ndarray:
    """The one of a few random RGB colours ``(3,)`` that the ``covered`` pixels ``(3, m)``
    resemble least: fewest pixels within RGB distance 64, then the largest mean squared
    distance."""
    candidates = np.floor(rng.random((_COLOUR_CANDIDATES, 3), dtype=np.float32) * 256)
    covered = covered[:, :: max(covered.shape[1] // 256, 1)]  # a sample is enough
    diff = covered[None, :, :] - candidates[:, :, None]
    d2 = (diff * diff).sum(axis=1)
    close = (d2 < _MIN_CONTRAST**2).sum(axis=1)
    # lexicographic (close, -mean d2): mean d2 <= 3 · 255² < 1e6
    return candidates[np.argmin(close * 1e6 - d2.mean(axis=1))]


# --------------------------------------------------------------------------- one image


def _render_image(rng: np.random.Generator, p: dict[str, Any]
                  ) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """One image: ``(image (H, W, 3) uint8, instance map (H, W) int16, category ids, areas)``.

    The instance map holds 0 for background and k for the k-th object (1-based), whose category
    id is ``category_ids[k - 1]`` and whose unoccluded pixel count is ``areas[k - 1]``.
    """
    size = p["image_size"]
    image = _background(rng, size)  # planar (3, H, W) until the end: channel-last is slow here
    instance = np.zeros((size, size), dtype=np.int16)
    full_area: list[int] = []
    visible_area: list[int] = []
    category_ids: list[int] = []
    log_min, log_max = math.log(p["min_size"]), math.log(p["max_size"])
    for _ in range(_randint(rng, p["min_objects"], p["max_objects"] + 1)):
        label = _randint(rng, 0, len(SHAPE_CLASSES))
        for _try in range(_PLACEMENT_TRIES):
            u = rng.random(4).tolist()
            r = 0.5 * math.exp(log_min + (log_max - log_min) * u[0])
            cx, cy = r + (size - 2 * r) * u[1], r + (size - 2 * r) * u[2]
            parts = _shape_parts(SHAPE_CLASSES[label], cx, cy, r, 2 * math.pi * u[3], rng)
            x0, y0 = max(int(cx - r), 0), max(int(cy - r), 0)
            x1, y1 = min(math.ceil(cx + r) + 1, size), min(math.ceil(cy + r) + 1, size)
            mask = _rasterize(parts, np.arange(x0, x1)[None, :] + 0.5,
                              np.arange(y0, y1)[:, None] + 0.5)
            area = int(mask.sum())
            if area == 0:
                continue
            window = instance[y0:y1, x0:x1]
            if visible_area:
                covered = np.bincount(window[mask], minlength=len(visible_area) + 1)[1:]
                left = np.asarray(visible_area) - covered
                if np.any(left < p["min_visible"] * np.asarray(full_area)):
                    continue
                visible_area = left.tolist()
            pixels = image[:, y0:y1, x0:x1]
            pixels[:, mask] = _contrasting_colour(rng, pixels[:, mask])[:, None]
            window[mask] = len(full_area) + 1
            full_area.append(area)
            visible_area.append(area)
            category_ids.append(label + 1)
            break
    if p["noise"] > 0:  # integers in [-noise, noise]: ⌊byte · (2·noise + 1) / 256⌋ − noise
        random_bytes = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
        image += (random_bytes.astype(np.uint16) * np.uint16(2 * p["noise"] + 1)) >> 8
        image -= p["noise"]
    np.clip(image, 0, 255, out=image)
    return image.transpose(1, 2, 0).astype(np.uint8), instance, category_ids, full_area


def _annotations(instance: np.ndarray, category_ids: list[int], image_id: int,
                 first_id: int) -> list[dict[str, Any]]:
    """COCO annotations of the objects in ``instance``, ids from ``first_id``."""
    if not category_ids:
        return []
    masks = instance[None] == np.arange(1, len(category_ids) + 1, dtype=np.int16)[:, None, None]
    rles = rle_encode(masks)
    annotations = []
    for k, (mask, rle) in enumerate(zip(masks, rles, strict=True)):
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        x0, x1, y0, y1 = int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])
        annotations.append({
            "id": first_id + k, "image_id": image_id, "category_id": category_ids[k],
            "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
            "area": int(mask.sum()), "segmentation": rle, "iscrowd": 0,
        })
    return annotations


# --------------------------------------------------------------------------- public API


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"expected {name} to be an integer, got {type(value).__name__} {value!r}")
    if value < low or (high is not None and value > high):
        want = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise DataError(f"expected {name} {want}, got {value}")
    return int(value)


def _check_params(n: int, image_size: int, seed: int, min_objects: int, max_objects: int,
                  min_size: float, max_size: float | None, min_visible: float,
                  noise: int) -> dict[str, Any]:
    """Validated generator parameters (one-line DataError naming the first bad one)."""
    p: dict[str, Any] = {
        "n": _check_int("n", n, 1),
        "image_size": _check_int("image_size", image_size, 32),
        "seed": _check_int("seed", seed, 0),
        "min_objects": _check_int("min_objects", min_objects, 0),
    }
    p["max_objects"] = _check_int("max_objects", max_objects, max(p["min_objects"], 1), 1000)
    if max_size is None:
        max_size = min(56, p["image_size"])
    for name, value in (("min_size", min_size), ("max_size", max_size),
                        ("min_visible", min_visible)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value):
            raise DataError(f"expected {name} to be a finite number, got {value!r}")
    if not 8 <= min_size <= max_size <= image_size:
        raise DataError(f"expected 8 <= min_size <= max_size <= image_size ({image_size}), got "
                        f"min_size {min_size} and max_size {max_size}")
    if not 0 < min_visible <= 1:
        raise DataError(f"expected min_visible in (0, 1], got {min_visible}")
    p.update(min_size=float(min_size), max_size=float(max_size), min_visible=float(min_visible),
             noise=_check_int("noise", noise, 0, 127))
    return p


def _image_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of image ``index`` (0-based): child ``index`` of ``SeedSequence(seed)``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _iter_images(p: dict[str, Any], progress: bool,
                 desc: str) -> Iterator[tuple[int, np.ndarray, np.ndarray, list[dict]]]:
    """Yield ``(image id, image, annotation-id map (H, W) int32, annotations)`` for ids 1..n."""
    next_id = 1
    for image_id in tqdm(range(1, p["n"] + 1), desc=desc, unit="img", disable=not progress,
                         leave=False):
        rng = _image_rng(p["seed"], image_id - 1)
        image, instance, category_ids, _ = _render_image(rng, p)
        annotations = _annotations(instance, category_ids, image_id, next_id)
        ids = np.concatenate([[0], np.arange(next_id, next_id + len(category_ids))])
        next_id += len(category_ids)
        yield image_id, image, ids.astype(np.int32)[instance], annotations


def _ground_truth(p: dict[str, Any], annotations: list[dict]) -> dict[str, Any]:
    size = p["image_size"]
    return {
        "info": {"description": "foveal synthetic shapes (foveal.data.shapes)",
                 **{k: p[k] for k in sorted(p)}},
        "images": [{"id": i, "file_name": f"{i:06d}.png", "height": size, "width": size}
                   for i in range(1, p["n"] + 1)],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"}
                       for i, name in enumerate(SHAPE_CLASSES)],
    }


@overload
def generate_shapes(n: int, *, image_size: int = ..., seed: int = ..., min_objects: int = ...,
                    max_objects: int = ..., min_size: float = ..., max_size: float | None = ...,
                    min_visible: float = ..., noise: int = ..., progress: bool = ...,
                    return_instance_map: Literal[False] = ...) -> tuple[np.ndarray, dict]: ...
@overload
def generate_shapes(n: int, *, image_size: int = ..., seed: int = ..., min_objects: int = ...,
                    max_objects: int = ..., min_size: float = ..., max_size: float | None = ...,
                    min_visible: float = ..., noise: int = ..., progress: bool = ...,
                    return_instance_map: Literal[True]) -> tuple[np.ndarray, dict, np.ndarray]: ...


def generate_shapes(
    n: int, *, image_size: int = 128, seed: int = 0, min_objects: int = 1, max_objects: int = 5,
    min_size: float = 12, max_size: float | None = None, min_visible: float = 0.5, noise: int = 6,
    progress: bool = False, return_instance_map: bool = False,
) -> tuple[np.ndarray, dict] | tuple[np.ndarray, dict, np.ndarray]:
    """Generate ``n`` synthetic shape images and their COCO ground truth, in memory.

    Args:
        n: number of images (>= 1); they get ids 1..n.
        image_size: side ``P`` of the square images (>= 32).
        seed: non-negative; image ``i`` depends only on ``(seed, i)``.
        min_objects, max_objects: objects per image, drawn uniformly from this range (before
            occlusion rejection, see the module docstring); ``0 <= min <= max``, ``max >= 1``.
        min_size, max_size: object diameters in pixels, log-uniform; ``8 <= min <= max <= P``
            (``max_size=None``: 56 or ``P`` if smaller).
        min_visible: the least visible fraction of its own area any object keeps, in (0, 1].
        noise: half-width of the uniform per-pixel noise, in grey levels (0: none).
        progress: show a tqdm progress bar.
        return_instance_map: also return the per-pixel annotation ids.

    Returns:
        ``(images (n, P, P, 3) uint8, ground truth)``, plus with ``return_instance_map``
        ``instance_map (n, P, P) int32``: the annotation id each pixel shows (0: background), so
        ``rle_decode(ann["segmentation"]) == (instance_map[ann["image_id"] - 1] == ann["id"])``.
        Ground truth: a COCO dict with ``images``, ``annotations`` (bbox xywh and area of the
        visible pixels, compressed-RLE segmentation, iscrowd 0), ``categories`` (ids
        1..len(SHAPE_CLASSES)) and ``info`` (the parameters).
    """
    p = _check_params(n, image_size, seed, min_objects, max_objects, min_size, max_size,
                      min_visible, noise)
    images = np.empty((p["n"], p["image_size"], p["image_size"], 3), dtype=np.uint8)
    maps = np.empty((p["n"], p["image_size"], p["image_size"]), dtype=np.int32) \
        if return_instance_map else None
    annotations: list[dict] = []
    for image_id, image, id_map, anns in _iter_images(p, progress, "shapes"):
        images[image_id - 1] = image
        if maps is not None:
            maps[image_id - 1] = id_map
        annotations += anns
    gt = _ground_truth(p, annotations)
    return (images, gt, maps) if maps is not None else (images, gt)


def write_shapes_dataset(
    out_dir: str | os.PathLike[str], n: int, *, seed: int = 0, image_size: int = 128,
    min_objects: int = 1, max_objects: int = 5, min_size: float = 12, max_size: float | None = None,
    min_visible: float = 0.5, noise: int = 6, progress: bool = False,
) -> Path:
    """Write :func:`generate_shapes`' dataset to disk and return the annotations path.

    Layout: ``out_dir/images/000001.png …`` (RGB PNG, one per image, the ``file_name`` of its
    COCO record) and ``out_dir/annotations.json`` (the COCO ground truth). Every file is written
    atomically and the JSON last, so a complete ``annotations.json`` means a complete dataset.
    Images are generated and written one at a time (memory does not grow with ``n``). Files of
    an earlier, larger dataset in ``out_dir`` are overwritten but not removed. Arguments are
    those of :func:`generate_shapes`; the bytes written depend only on them.
    """
    p = _check_params(n, image_size, seed, min_objects, max_objects, min_size, max_size,
                      min_visible, noise)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataError(f"expected an output directory, got the file {str(out)!r}")
    annotations: list[dict] = []
    for image_id, image, _, anns in _iter_images(p, progress, "shapes: writing"):
        # level 1: the pixel noise leaves little to compress; 2× faster for ~15% more bytes
        atomic_write_png(out / "images" / f"{image_id:06d}.png", image, compress_level=1)
        annotations += anns
    path = out / "annotations.json"
    atomic_write_json(path, _ground_truth(p, annotations))
    return path
