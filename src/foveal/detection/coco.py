"""MS-COCO annotation and result files: read with validation, write atomically.

Ground truth (``instances_*.json``) is a JSON object with three lists:

* ``images``: ``{"id": int, "height": int, "width": int, ...}``;
* ``categories``: ``{"id": int, "name": str, ...}``;
* ``annotations``: ``{"id": int, "image_id": int, "category_id": int, "bbox": [x, y, w, h],
  "area": float, "iscrowd": 0 | 1 (optional), "segmentation": polygons | RLE (optional)}``,
  with ``bbox`` in pixels, top-left corner and size (``w, h >= 0``); polygons are lists of
  ``>= 3`` points ``[x1, y1, x2, y2, ...]``; an RLE (see :mod:`foveal.detection.mask`) has the
  image's ``size`` ``[height, width]``.

Results (detections) are a JSON list of ``{"image_id", "category_id", "score", "bbox"}`` (box
results) or ``{"image_id", "category_id", "score", "segmentation": RLE}`` (mask results).

Nothing is filled in that COCO leaves out: the loaders check and return the records, they do
not add defaults. Every problem raises :class:`~foveal.errors.DetectionError` (the content) or
:class:`~foveal.errors.DataError` (a missing or malformed file) with one line that names the
record, e.g. ``annotations[12] (id 4051): expected bbox width >= 0, got -3.0``.

Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the data format
at https://cocodataset.org/#format-data; ``pycocotools.coco.COCO.loadRes`` for results.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from foveal.atomic import atomic_write_text
from foveal.detection.mask import rle_area, rle_to_bbox, segmentation_to_rle
from foveal.errors import DataError, DetectionError

__all__ = ["load_coco", "load_detections", "save_coco", "save_detections"]

IOU_TYPES = ("bbox", "segm")


# ---------------------------------------------------------------------------------------------
# Field checks: each returns the value or raises DetectionError prefixed with the record
# ---------------------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _describe(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _require(record: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise DetectionError(f"{where}: expected key '{key}', got keys {sorted(record)}")
    return record[key]


def _int_field(record: Mapping[str, Any], key: str, where: str) -> int:
    v = _require(record, key, where)
    if not _is_int(v):
        raise DetectionError(f"{where}: expected integer '{key}', got {_describe(v)}")
    return int(v)


def _number_field(record: Mapping[str, Any], key: str, where: str,
                  minimum: float | None = None) -> float:
    v = _require(record, key, where)
    if not _is_number(v) or not math.isfinite(v):
        raise DetectionError(f"{where}: expected a finite number '{key}', got {_describe(v)}")
    if minimum is not None and v < minimum:
        raise DetectionError(f"{where}: expected '{key}' >= {minimum:g}, got {v!r}")
    return float(v)


def _check_bbox(bbox: object, where: str) -> None:
    if (not isinstance(bbox, (Sequence, np.ndarray)) or isinstance(bbox, (str, bytes))
            or len(bbox) != 4 or not all(_is_number(v) for v in bbox)):
        raise DetectionError(f"{where}: expected bbox [x, y, width, height] of 4 numbers, got "
                             f"{_describe(bbox)}")
    if not all(math.isfinite(v) for v in bbox):
        raise DetectionError(f"{where}: expected finite bbox numbers, got {list(bbox)}")
    for name, v in (("width", bbox[2]), ("height", bbox[3])):
        if v < 0:
            raise DetectionError(f"{where}: expected bbox {name} >= 0, got {v!r}")


def _rle(segm: Mapping[str, Any], where: str, size: tuple[int, int]) -> dict[str, Any]:
    """The RLE as compressed counts, checked against the image size."""
    try:
        return segmentation_to_rle(segm, *size)
    except DetectionError as exc:
        raise DetectionError(f"{where}: {exc}") from None


def _check_segmentation(segm: object, where: str, size: tuple[int, int]) -> object:
    """Polygons are checked for shape and numbers; an RLE is decoded against the image size.

    Returns the segmentation unchanged, except that compressed counts given as ``bytes``
    become ``str``.
    """
    if isinstance(segm, Mapping):
        rle = _rle(segm, where, size)
        return rle if isinstance(segm["counts"], bytes) else segm
    if not isinstance(segm, Sequence) or isinstance(segm, (str, bytes)):
        raise DetectionError(f"{where}: expected segmentation as a list of polygons or an RLE "
                             f"dict, got {type(segm).__name__}")
    for j, poly in enumerate(segm):
        if (not isinstance(poly, Sequence) or isinstance(poly, (str, bytes))
                or not all(_is_number(v) for v in poly)):
            raise DetectionError(f"{where}: expected segmentation[{j}] a polygon "
                                 f"[x1, y1, x2, y2, ...] of numbers, got {_describe(poly)}")
        if len(poly) < 6 or len(poly) % 2:
            raise DetectionError(f"{where}: expected a polygon with >= 3 points (6 numbers) and "
                                 f"an even count, got {len(poly)} numbers")
        if not all(math.isfinite(v) for v in poly):
            raise DetectionError(f"{where}: expected finite polygon coordinates, got "
                                 f"{next(v for v in poly if not math.isfinite(v))}")
    return segm


def _records(data: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    if key not in data:
        raise DetectionError(f"{origin}: expected key '{key}' (COCO needs images, annotations "
                             f"and categories), got keys {sorted(data)}")
    items = data[key]
    if not isinstance(items, list):
        raise DetectionError(f"{origin}: expected '{key}' to be a list, got "
                             f"{type(items).__name__}")
    for i, r in enumerate(items):
        if not isinstance(r, Mapping):
            raise DetectionError(f"{key}[{i}]: expected an object, got {type(r).__name__}")
    return items


def _unique_ids(items: Sequence[Mapping[str, Any]], key: str) -> dict[int, int]:
    """``{id: index}``; raises on a missing, non-integer or repeated id."""
    seen: dict[int, int] = {}
    for i, r in enumerate(items):
        rid = _int_field(r, "id", f"{key}[{i}]")
        if rid in seen:
            raise DetectionError(f"{key}[{i}] (id {rid}): expected a unique id, got the id of "
                                 f"{key}[{seen[rid]}]")
        seen[rid] = i
    return seen


def _read_json(source: str | os.PathLike[str], what: str) -> Any:
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{what} file not found: '{path}'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} file '{path}': {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: expected valid JSON, got "
                        f"{exc.msg}") from None


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


def load_coco(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read and validate COCO ground truth.

    Checks: the three lists exist; ids are unique integers within each list; images have
    integer ``height`` and ``width`` >= 1; categories have a string ``name``; annotations have
    a known ``image_id`` and ``category_id``, ``bbox`` of 4 finite numbers with ``w, h >= 0``,
    a finite ``area`` >= 0, ``iscrowd`` 0 or 1 when present, and a ``segmentation`` (when
    present) of polygons with >= 3 points or an RLE whose size is the image's and whose
    counts sum to ``height·width``. Images without annotations are valid.

    Args:
        source: path of a JSON file, or the already-parsed dict.

    Returns:
        A new top-level dict (other keys such as ``info`` kept) with new lists holding the
        same records, except that compressed RLE counts given as ``bytes`` become ``str``.
    """
    origin = "ground truth"
    if isinstance(source, (str, os.PathLike)):
        origin = f"'{source}'"
        source = _read_json(source, "ground truth")
    if not isinstance(source, Mapping):
        raise DetectionError(f"{origin}: expected a COCO object with images, annotations and "
                             f"categories, got {type(source).__name__}")
    images = _records(source, "images", origin)
    annotations = _records(source, "annotations", origin)
    categories = _records(source, "categories", origin)

    image_ids = _unique_ids(images, "images")
    sizes: dict[int, tuple[int, int]] = {}
    for i, im in enumerate(images):
        where = f"images[{i}] (id {im['id']})"
        h, w = _int_field(im, "height", where), _int_field(im, "width", where)
        if h < 1 or w < 1:
            raise DetectionError(f"{where}: expected height and width >= 1, got {h} and {w}")
        sizes[int(im["id"])] = (h, w)
    category_ids = _unique_ids(categories, "categories")
    for i, cat in enumerate(categories):
        name = _require(cat, "name", f"categories[{i}] (id {cat['id']})")
        if not isinstance(name, str):
            raise DetectionError(f"categories[{i}] (id {cat['id']}): expected a string 'name', "
                                 f"got {_describe(name)}")
    _unique_ids(annotations, "annotations")

    out_annotations = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}] (id {ann['id']})"
        image_id = _int_field(ann, "image_id", where)
        if image_id not in image_ids:
            raise DetectionError(f"{where}: expected image_id of a listed image, got {image_id}")
        category_id = _int_field(ann, "category_id", where)
        if category_id not in category_ids:
            raise DetectionError(f"{where}: expected category_id of a listed category, got "
                                 f"{category_id}")
        _check_bbox(_require(ann, "bbox", where), where)
        _number_field(ann, "area", where, minimum=0)
        if "iscrowd" in ann and (ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"],
                                                                            float)):
            raise DetectionError(f"{where}: expected iscrowd 0 or 1, got "
                                 f"{_describe(ann['iscrowd'])}")
        if "segmentation" in ann:
            segm = _check_segmentation(ann["segmentation"], where, sizes[image_id])
            if segm is not ann["segmentation"]:
                ann = {**ann, "segmentation": segm}
        out_annotations.append(ann)
    return {**source, "images": list(images), "annotations": out_annotations,
            "categories": list(categories)}


# ---------------------------------------------------------------------------------------------
# Detections
# ---------------------------------------------------------------------------------------------


def load_detections(source: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
                    gt: Mapping[str, Any], iou_type: str = "bbox") -> list[dict[str, Any]]:
    """Read and validate detection results the way ``pycocotools.coco.COCO.loadRes`` does.

    As ``loadRes``, the first result decides the kind of every result:

    * box results (the first has a non-empty ``bbox``): ``area = w·h`` of the box,
      ``id = i + 1``, ``iscrowd = 0``, and a result without ``segmentation`` gets the box as
      the polygon ``[[x1, y1, x1, y2, x2, y2, x2, y1]]`` (``x2 = x + w``, ``y2 = y + h``), so a
      segm evaluation of box results sees the boxes, as in pycocotools;
    * mask results (otherwise; each needs an RLE ``segmentation``): ``area`` = the mask's pixel
      count, ``bbox`` = its tight box when absent, ``id = i + 1``, ``iscrowd = 0``.

    Beyond ``loadRes``: an empty list is valid (``[]``), category ids must be in ``gt``,
    ``score`` must be a finite number, a given ``bbox`` needs ``w, h >= 0``, an RLE must have
    its image's size (``bytes`` counts become ``str``, uncompressed counts are compressed), and
    ``iou_type="segm"`` asks every result for its own ``segmentation``.

    Args:
        source: path of a JSON list, or the list itself (not modified).
        gt: ground truth from :func:`load_coco`.
        iou_type: ``"bbox"`` or ``"segm"``: the evaluation the results are for.

    Returns:
        New result dicts, in input order.
    """
    if iou_type not in IOU_TYPES:
        raise DetectionError(f"expected iou_type one of {IOU_TYPES}, got {iou_type!r}")
    origin = "detections"
    if isinstance(source, (str, os.PathLike)):
        origin = f"'{source}'"
        source = _read_json(source, "detections")
    if not isinstance(source, Sequence) or isinstance(source, (str, bytes)):
        raise DetectionError(f"{origin}: expected a list of detections, got "
                             f"{type(source).__name__}")
    if not isinstance(gt, Mapping) or not all(k in gt for k in ("images", "categories")):
        raise DetectionError("expected gt to be COCO ground truth with images and categories "
                             "(from load_coco)")
    try:
        sizes = {int(im["id"]): (int(im["height"]), int(im["width"])) for im in gt["images"]}
        category_ids = {int(c["id"]) for c in gt["categories"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectionError(f"expected gt images with id, height and width and categories "
                             f"with id (from load_coco), got an error: {exc!r}") from None
    if len(source) == 0:
        return []
    first = source[0]
    box = first.get("bbox") if isinstance(first, Mapping) else None
    box_results = box is not None and not (hasattr(box, "__len__") and len(box) == 0)
    out = []
    for i, det in enumerate(source):
        where = f"detections[{i}]"
        if not isinstance(det, Mapping):
            raise DetectionError(f"{where}: expected an object, got {type(det).__name__}")
        image_id = _int_field(det, "image_id", where)
        where = f"detections[{i}] (image {image_id})"
        if image_id not in sizes:
            raise DetectionError(f"{where}: expected image_id of a ground-truth image, got "
                                 f"{image_id}")
        category_id = _int_field(det, "category_id", where)
        if category_id not in category_ids:
            raise DetectionError(f"{where}: expected category_id of a ground-truth category, "
                                 f"got {category_id}")
        _number_field(det, "score", where)
        if iou_type == "segm" and "segmentation" not in det:
            raise DetectionError(f"{where}: expected a 'segmentation' for iou_type 'segm', got "
                                 f"keys {sorted(det)}")
        res = dict(det)
        if box_results:
            bb = _require(det, "bbox", where)
            _check_bbox(bb, where)
            if "segmentation" in det:
                res["segmentation"] = _check_segmentation(det["segmentation"], where,
                                                          sizes[image_id])
            else:
                x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
                res["segmentation"] = [[x1, y1, x1, y2, x2, y2, x2, y1]]
            res["area"] = bb[2] * bb[3]
        else:
            segm = _require(det, "segmentation", where)
            if not isinstance(segm, Mapping):
                raise DetectionError(f"{where}: expected an RLE dict 'segmentation' for mask "
                                     f"results (as the first result has no bbox), got "
                                     f"{type(segm).__name__}")
            if "bbox" in det:
                _check_bbox(det["bbox"], where)
        res["id"] = i + 1
        res["iscrowd"] = 0
        out.append(res)
    if not box_results:
        _add_mask_area_and_box(out, sizes)
    return out


def _add_mask_area_and_box(results: list[dict[str, Any]],
                           sizes: Mapping[int, tuple[int, int]]) -> None:
    """Set area (and bbox when absent) of mask results from their RLEs, all in one batch."""
    rles = [r["segmentation"] for r in results]
    try:
        areas, boxes = rle_area(rles), rle_to_bbox(rles)
    except DetectionError:  # find the first bad record again, to name it
        for i, r in enumerate(results):
            _rle(r["segmentation"], f"detections[{i}] (image {r['image_id']})",
                 sizes[r["image_id"]])
        raise
    for i, (r, area, box) in enumerate(zip(results, areas.tolist(), boxes.tolist(),
                                           strict=True)):
        segm = r["segmentation"]
        if [int(v) for v in segm["size"]] != list(sizes[r["image_id"]]):
            r["segmentation"] = _rle(segm, f"detections[{i}] (image {r['image_id']})",
                                     sizes[r["image_id"]])  # raises: wrong size
        if not isinstance(segm["counts"], str):  # bytes or uncompressed: compressed str
            r["segmentation"] = segmentation_to_rle(segm, *sizes[r["image_id"]])
        else:
            r["segmentation"] = {"size": list(sizes[r["image_id"]]), "counts": segm["counts"]}
        r["area"] = area
        r.setdefault("bbox", box)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _to_json(obj: Any) -> Any:
    """``json.dumps`` fallback for NumPy scalars and arrays and bytes RLE counts."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode("ascii")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _dump(path: str | os.PathLike[str], obj: Any) -> None:
    try:
        text = json.dumps(obj, default=_to_json, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise DetectionError(f"expected JSON-serialisable records for '{path}', got "
                             f"{exc}") from None
    atomic_write_text(path, text + "\n")


def save_coco(path: str | os.PathLike[str], dataset: Mapping[str, Any]) -> None:
    """Validate ``dataset`` (as :func:`load_coco`) and write it to ``path`` atomically."""
    _dump(path, load_coco(dataset))


def save_detections(path: str | os.PathLike[str],
                    detections: Sequence[Mapping[str, Any]]) -> None:
    """Write results to ``path`` atomically, as a JSON list.

    Each result needs an integer ``image_id`` and ``category_id``, a finite ``score`` and a
    ``bbox`` or ``segmentation`` (ids are checked against ground truth by
    :func:`load_detections`, not here).
    """
    if not isinstance(detections, Sequence) or isinstance(detections, (str, bytes)):
        raise DetectionError(f"expected a list of detections, got {type(detections).__name__}")
    for i, det in enumerate(detections):
        where = f"detections[{i}]"
        if not isinstance(det, Mapping):
            raise DetectionError(f"{where}: expected an object, got {type(det).__name__}")
        _int_field(det, "image_id", where)
        _int_field(det, "category_id", where)
        _number_field(det, "score", where)
        if "bbox" not in det and "segmentation" not in det:
            raise DetectionError(f"{where}: expected a 'bbox' or a 'segmentation', got keys "
                                 f"{sorted(det)}")
        if "bbox" in det:
            _check_bbox(det["bbox"], where)
    _dump(path, list(detections))
