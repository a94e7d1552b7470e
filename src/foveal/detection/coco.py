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

Speed: the checks run a column at a time (all ids, all boxes, all polygon coordinates, ...):
values of the exact types ``json.loads`` gives (``int``, ``float``, ``list``, ``dict``) are
checked together, types with one ``set(map(type, column))`` and finiteness and signs on one
float64 array. A record that the column checks cannot vouch for (a bad value, but also a
``bool``, a NumPy scalar, a tuple or an RLE to decode) goes through the field-by-field checks,
in file order, so the first bad record and its message are those of a record-by-record pass.

Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the data format
at https://cocodataset.org/#format-data; ``pycocotools.coco.COCO.loadRes`` for results.
"""

from __future__ import annotations

import gc
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from numbers import Integral, Real
from operator import itemgetter
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
    return type(v) is int or (isinstance(v, Integral) and not isinstance(v, bool))


def _is_number(v: object) -> bool:
    return (type(v) is float or type(v) is int
            or (isinstance(v, Real) and not isinstance(v, bool)))


def _is_finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float64
        return False


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
    if not _is_number(v) or not _is_finite(v):
        raise DetectionError(f"{where}: expected a finite number '{key}', got {_describe(v)}")
    if minimum is not None and v < minimum:
        raise DetectionError(f"{where}: expected '{key}' >= {minimum:g}, got {v!r}")
    return float(v)


def _check_bbox(bbox: object, where: str) -> None:
    if (not isinstance(bbox, (Sequence, np.ndarray)) or isinstance(bbox, (str, bytes))
            or len(bbox) != 4 or not all(_is_number(v) for v in bbox)):
        raise DetectionError(f"{where}: expected bbox [x, y, width, height] of 4 numbers, got "
                             f"{_describe(bbox)}")
    if not all(_is_finite(v) for v in bbox):
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
        if not all(_is_finite(v) for v in poly):
            raise DetectionError(f"{where}: expected finite polygon coordinates, got "
                                 f"{next(v for v in poly if not _is_finite(v))}")
    return segm


# ---------------------------------------------------------------------------------------------
# Column checks: (N,) bool masks of the records whose field is certainly valid. They accept only
# exact plain types (what json.loads gives: int, float, list, dict, str); everything else (bool,
# NumPy scalars, tuples, an absent key, a bad value) is False and left to the field checks above.
# ---------------------------------------------------------------------------------------------

_INT = frozenset({int})  # exact types: bool is not an int here
_NUMBER = frozenset({int, float})
_FLOAT = frozenset({float})
_LIST = frozenset({list})
_DICT = frozenset({dict})
_MISSING = object()  # stands for an absent key in a column
_NO_BOX = (0.0, 0.0, 0.0, 0.0)  # stands for a malformed box, which the mask already rejects


def _field(records: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """``records[i][key]`` for every ``i``, with ``_MISSING`` where the key is absent."""
    try:
        return list(map(itemgetter(key), records))
    except KeyError:
        return [r.get(key, _MISSING) for r in records]


def _of_types(values: Sequence[Any], types: frozenset[type],
              kinds: set[type] | None = None) -> np.ndarray:
    """``(N,)`` bool: ``type(values[i])`` is one of ``types`` (subclasses not included);
    ``kinds``: ``set(map(type, values))`` when already known."""
    if (set(map(type, values)) if kinds is None else kinds) <= types:
        return np.ones(len(values), dtype=bool)
    return np.fromiter((type(v) in types for v in values), dtype=bool, count=len(values))


def _finite_numbers(values: list[Any], kinds: set[type] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``values`` as ``(N,)`` float64 (0 where not a number) and ``(N,)`` bool: a plain int or
    float, and finite; ``kinds`` as for :func:`_of_types`."""
    ok = _of_types(values, _NUMBER, kinds)
    if not ok.all():
        values = [v if k else 0.0 for v, k in zip(values, ok.tolist(), strict=True)]
    try:
        x = np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64: the field checks say so
        return np.zeros(len(values)), np.zeros(len(values), dtype=bool)
    return x, ok & np.isfinite(x)


def _known_ints(values: list[Any], known: Mapping[int, Any] | set[int]) -> np.ndarray:
    """``(N,)`` bool: a plain int that is a key of ``known``."""
    ok = _of_types(values, _INT)
    if ok.all():
        if set(values) <= (known.keys() if isinstance(known, Mapping) else known):
            return ok
        return np.fromiter(map(known.__contains__, values), dtype=bool, count=len(values))
    return np.fromiter((k and v in known for v, k in zip(values, ok.tolist(), strict=True)),
                       dtype=bool, count=len(values))


def _boxes_ok(boxes: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes as ``(N, 4)`` float64 xywh (0 where not a number), and two ``(N,)`` bool masks: a
    list of 4 plain finite numbers with width and height >= 0; and 4 plain floats."""
    n = len(boxes)
    if set(map(type, boxes)) <= _LIST and set(map(len, boxes)) <= {4}:
        shaped = np.ones(n, dtype=bool)
    else:
        shaped = np.fromiter((type(b) is list and len(b) == 4 for b in boxes), dtype=bool,
                             count=n)
        boxes = [b if k else _NO_BOX for b, k in zip(boxes, shaped.tolist(), strict=True)]
    flat = list(chain.from_iterable(boxes))
    kinds = set(map(type, flat))
    x, ok = _finite_numbers(flat, kinds)
    x = x.reshape(n, 4)
    floats = shaped & _of_types(flat, _FLOAT, kinds).reshape(n, 4).all(axis=1)
    return x, shaped & ok.reshape(n, 4).all(axis=1) & (x[:, 2:] >= 0).all(axis=1), floats


def _crowd_ok(values: list[Any]) -> np.ndarray:
    """``(N,)`` bool: absent, or the plain int 0 or 1."""
    if set(map(type, values)) <= _INT and set(values) <= {0, 1}:
        return np.ones(len(values), dtype=bool)
    return np.fromiter((v is _MISSING or (type(v) is int and v in (0, 1)) for v in values),
                       dtype=bool, count=len(values))


def _polygons_ok(segms: list[Any]) -> np.ndarray:
    """``(N,)`` bool: absent, or a list of polygons that are lists of >= 6 plain finite numbers,
    an even count (an RLE dict is False: it is decoded by the field checks)."""
    n = len(segms)
    lists = _of_types(segms, _LIST)
    ok = lists | np.fromiter((s is _MISSING for s in segms), dtype=bool, count=n)
    owners = np.flatnonzero(lists)
    if owners.size == 0:
        return ok
    groups = [segms[i] for i in owners.tolist()]
    polys = list(chain.from_iterable(groups))
    shaped = _of_types(polys, _LIST)
    if not shaped.all():
        polys = [p if k else [] for p, k in zip(polys, shaped.tolist(), strict=True)]
    lengths = np.fromiter(map(len, polys), dtype=np.int64, count=len(polys))
    shaped &= (lengths >= 6) & (lengths % 2 == 0)
    _, finite = _finite_numbers(list(chain.from_iterable(polys)))
    bad_coords = np.bincount(np.repeat(np.arange(len(polys)), lengths), weights=~finite,
                             minlength=len(polys))
    bad_polys = (bad_coords > 0) | ~shaped
    counts = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
    bad = np.bincount(np.repeat(np.arange(len(groups)), counts), weights=bad_polys,
                      minlength=len(groups))
    ok[owners[bad > 0]] = False
    return ok


def _absent(records: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``(N,)`` bool: the record has no ``key``."""
    return np.fromiter((key not in r for r in records), dtype=bool, count=len(records))


def _records(data: Mapping[str, Any], key: str, origin: str) -> list[Mapping[str, Any]]:
    if key not in data:
        raise DetectionError(f"{origin}: expected key '{key}' (COCO needs images, annotations "
                             f"and categories), got keys {sorted(data)}")
    items = data[key]
    if not isinstance(items, list):
        raise DetectionError(f"{origin}: expected '{key}' to be a list, got "
                             f"{type(items).__name__}")
    if not _of_types(items, _DICT).all():
        for i, r in enumerate(items):
            if not isinstance(r, Mapping):
                raise DetectionError(f"{key}[{i}]: expected an object, got {type(r).__name__}")
    return items


def _unique_ids(items: Sequence[Mapping[str, Any]], key: str) -> dict[int, int]:
    """``{id: index}``; raises on a missing, non-integer or repeated id."""
    ids = _field(items, "id")
    if set(map(type, ids)) <= _INT:
        seen = dict(zip(ids, range(len(ids)), strict=True))
        if len(seen) == len(ids):
            return seen
    seen = {}
    for i, r in enumerate(items):
        rid = _int_field(r, "id", f"{key}[{i}]")
        if rid in seen:
            raise DetectionError(f"{key}[{i}] (id {rid}): expected a unique id, got the id of "
                                 f"{key}[{seen[rid]}]")
        seen[rid] = i
    return seen


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a loader runs.

    Parsing a results file and copying its records allocate ~10⁶ lists and dicts, and every
    few thousand allocations would start a collection that walks the live records again (half
    the loading time at 100k detections). Nothing built here forms a cycle, so nothing is
    left for the collector to find afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


@_collector_paused()
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
    sizes = _image_sizes(images)
    category_ids = _unique_ids(categories, "categories")
    if not _of_types(_field(categories, "name"), frozenset({str})).all():
        for i, cat in enumerate(categories):
            name = _require(cat, "name", f"categories[{i}] (id {cat['id']})")
            if not isinstance(name, str):
                raise DetectionError(f"categories[{i}] (id {cat['id']}): expected a string "
                                     f"'name', got {_describe(name)}")
    _unique_ids(annotations, "annotations")

    area, area_ok = _finite_numbers(_field(annotations, "area"))
    valid = (_known_ints(_field(annotations, "image_id"), image_ids)
             & _known_ints(_field(annotations, "category_id"), category_ids)
             & _boxes_ok(_field(annotations, "bbox"))[1] & area_ok & (area >= 0)
             & _crowd_ok(_field(annotations, "iscrowd"))
             & _polygons_ok(_field(annotations, "segmentation")))
    out_annotations = list(annotations)
    for i in np.flatnonzero(~valid).tolist():  # in order: the first bad record raises
        ann = annotations[i]
        segm = _check_annotation(ann, f"annotations[{i}] (id {ann['id']})", image_ids,
                                 category_ids, sizes)
        if segm is not _MISSING and segm is not ann["segmentation"]:
            out_annotations[i] = {**ann, "segmentation": segm}
    return {**source, "images": list(images), "annotations": out_annotations,
            "categories": list(categories)}


def _image_sizes(images: Sequence[Mapping[str, Any]]) -> dict[int, tuple[int, int]]:
    """``{id: (height, width)}``; raises on a missing or non-integer size or one < 1."""
    heights, widths = _field(images, "height"), _field(images, "width")
    if (set(map(type, heights)) | set(map(type, widths))) <= _INT and min(
            heights, default=1) >= 1 and min(widths, default=1) >= 1:
        return dict(zip(map(int, _field(images, "id")), zip(heights, widths, strict=True),
                        strict=True))
    sizes: dict[int, tuple[int, int]] = {}
    for i, im in enumerate(images):
        where = f"images[{i}] (id {im['id']})"
        h, w = _int_field(im, "height", where), _int_field(im, "width", where)
        if h < 1 or w < 1:
            raise DetectionError(f"{where}: expected height and width >= 1, got {h} and {w}")
        sizes[int(im["id"])] = (h, w)
    return sizes


def _check_annotation(ann: Mapping[str, Any], where: str, image_ids: Mapping[int, int],
                      category_ids: Mapping[int, int],
                      sizes: Mapping[int, tuple[int, int]]) -> object:
    """Field-by-field checks of one annotation; returns its checked segmentation (or
    ``_MISSING`` when it has none)."""
    image_id = _int_field(ann, "image_id", where)
    if image_id not in image_ids:
        raise DetectionError(f"{where}: expected image_id of a listed image, got {image_id}")
    category_id = _int_field(ann, "category_id", where)
    if category_id not in category_ids:
        raise DetectionError(f"{where}: expected category_id of a listed category, got "
                             f"{category_id}")
    _check_bbox(_require(ann, "bbox", where), where)
    _number_field(ann, "area", where, minimum=0)
    if "iscrowd" in ann and (ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], float)):
        raise DetectionError(f"{where}: expected iscrowd 0 or 1, got "
                             f"{_describe(ann['iscrowd'])}")
    if "segmentation" in ann:
        return _check_segmentation(ann["segmentation"], where, sizes[image_id])
    return _MISSING


# ---------------------------------------------------------------------------------------------
# Detections
# ---------------------------------------------------------------------------------------------


@_collector_paused()
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
    ``score`` must be a finite number, a given ``bbox`` needs ``w, h >= 0``, and an RLE must
    have its image's size (``bytes`` counts become ``str``, uncompressed counts are
    compressed).

    Args:
        source: path of a JSON list, or the list itself (not modified).
        gt: ground truth from :func:`load_coco`.
        iou_type: ``"bbox"`` or ``"segm"``: the evaluation the results are for. Both load
            the same way (as ``loadRes``, which does not know the evaluation).

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

    is_dict = _of_types(source, _DICT)
    records = source if is_dict.all() else [r if k else {} for r, k in
                                            zip(source, is_dict.tolist(), strict=True)]
    keys = set().union(*records)
    _, score_ok = _finite_numbers(_field(records, "score"))
    valid = (is_dict & _known_ints(_field(records, "image_id"), sizes)
             & _known_ints(_field(records, "category_id"), category_ids) & score_ok)
    if box_results:  # an own segmentation is checked record by record
        xywh, box_ok, floats = _boxes_ok(_field(records, "bbox"))
        valid &= box_ok
        if "segmentation" in keys:
            valid &= _absent(records, "segmentation")
    else:  # RLEs are checked all at once below; a given bbox record by record
        valid &= _of_types(_field(records, "segmentation"), _DICT)
        if "bbox" in keys:
            valid &= _absent(records, "bbox")
    own_segm = {}
    for i in np.flatnonzero(~valid).tolist():  # in order: the first bad record raises
        segm = _check_detection(source[i], i, sizes, category_ids, box_results)
        if segm is not _MISSING:
            own_segm[i] = segm

    if not box_results:
        out = [dict(det, id=i, iscrowd=0) for i, det in enumerate(source, 1)]
        _add_mask_area_and_box(out, sizes)
        return out
    # loadRes: segmentation = the box as a polygon [[x1, y1, x1, y2, x2, y2, x2, y1]], area w·h;
    # float64 sums and products are Python's own, so boxes of floats are done as arrays
    x, y, w, h = xywh.T
    x2, y2 = x + w, y + h
    polygons = np.stack([x, y, x, y2, x2, y2, x2, y], axis=1).tolist()
    out = [dict(det, segmentation=[poly], area=area, id=i, iscrowd=0)
           for i, (det, poly, area) in enumerate(zip(source, polygons, (w * h).tolist(),
                                                     strict=True), 1)]
    floats[list(own_segm)] = False
    for i in np.flatnonzero(~floats).tolist():  # other numbers keep their type, as in loadRes
        det = source[i]
        x1, y1, bw, bh = det["bbox"]
        segm = (own_segm[i] if i in own_segm else
                [[x1, y1, x1, y1 + bh, x1 + bw, y1 + bh, x1 + bw, y1]])
        out[i] = dict(det, segmentation=segm, area=bw * bh, id=i + 1, iscrowd=0)
    return out


def _check_detection(det: object, i: int, sizes: Mapping[int, tuple[int, int]],
                     category_ids: set[int], box_results: bool) -> object:
    """Field-by-field checks of ``detections[i]``; returns the checked segmentation of a box
    result that has one (``_MISSING`` otherwise)."""
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
    if box_results:
        _check_bbox(_require(det, "bbox", where), where)
        if "segmentation" in det:
            return _check_segmentation(det["segmentation"], where, sizes[image_id])
        return _MISSING
    segm = _require(det, "segmentation", where)
    if not isinstance(segm, Mapping):
        raise DetectionError(f"{where}: expected an RLE dict 'segmentation' for mask "
                             f"results (as the first result has no bbox), got "
                             f"{type(segm).__name__}")
    if "bbox" in det:
        _check_bbox(det["bbox"], where)
    return _MISSING


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
