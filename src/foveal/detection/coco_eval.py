"""COCO detection metrics (AP/AR over IoU thresholds, areas and detection budgets) and VOC AP.

:func:`evaluate_coco` gives the same numbers as ``pycocotools.cocoeval.COCOeval`` (``evaluate``,
``accumulate``, ``summarize``) for ``bbox`` and ``segm``, quirks included, but computes them with
whole-array NumPy passes instead of per-image, per-detection Python loops.

The COCO protocol, per image ``i`` and category ``k`` (a *group*):

* Detections are sorted by score, highest first (a stable sort, so ties keep file order), and
  only the first ``max(max_dets)`` are kept.
* A ground-truth object is *ignored* in area range ``[lo, hi]`` when it is a crowd region or its
  ``area`` lies outside the range (``area < lo or area > hi``).
* IoU is ``|d ∩ g| / |d ∪ g|`` for a normal object and ``|d ∩ g| / |d|`` for a crowd region
  (boxes: ``xywh``, areas ``w·h``; masks: RLE, :func:`foveal.detection.mask.rle_iou`).
* Greedy matching at each IoU threshold ``t`` (used as ``min(t, 1 − 1e-10)``): each detection in
  score order takes, among the still-unmatched objects with ``IoU ≥ t``, a non-ignored one with
  the highest IoU (on equal IoU the later object in file order); only when there is none may it
  take an ignored one the same way. A crowd region can be taken any number of times.
* A detection matched to an ignored object is ignored; so is an unmatched detection whose own
  ``area`` is outside the range. An object whose ``id`` is 0 counts as "no match" for the
  detection that took it (COCOeval stores match ids with 0 meaning none).

Accumulation, per category, area range and budget ``m`` (the first ``m`` detections of each
image): all images' detections sorted by score (ties: image order, then rank), cumulative true
and false positives over the non-ignored ones, recall ``TP/n_pos`` and precision
``TP/(TP + FP + ε)`` with ε = 2⁻⁵² (``np.spacing(1)``); precision is made non-increasing from the
right (the interpolated PR curve), then read at the recall thresholds ``r`` at the first index
with ``recall ≥ r`` (zero past the end). A category and area with no non-ignored object gets −1,
and −1 entries are left out of every mean.

Speed: detections and objects are grouped with one sort; the IoUs of all (detection, object)
pairs of all groups are computed in one vectorised pass (and pairs below the lowest threshold
dropped); the greedy matching runs rank by rank — the r-th detection of every group at once, for
all area ranges and IoU thresholds together — and the accumulation is one pass per category.

Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014, and the COCO
detection evaluation page (cocodataset.org/#detection-eval); pycocotools ``cocoeval.py``.

VOC: :func:`voc_ap` and :func:`evaluate_voc` follow the PASCAL VOC devkit as ported in
py-faster-rcnn's ``voc_eval.py`` (Everingham et al., "The PASCAL Visual Object Classes (VOC)
Challenge", IJCV 2010, section 4.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from foveal.errors import DetectionError

__all__ = [
    "COCO_AREA_RANGES",
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "STAT_NAMES",
    "CocoEvaluation",
    "evaluate_coco",
    "evaluate_voc",
    "voc_ap",
]

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
              "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2),
    "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e5 ** 2),
}
# as COCOeval's Params: linspace, not arange (whose 0.75 is not exactly 0.75)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
COCO_IOU_THRESHOLDS.flags.writeable = False
COCO_RECALL_THRESHOLDS.flags.writeable = False
_EPS = float(np.spacing(1))
_PAIR_BITS = 30  # a match key packs (non-ignored, IoU rank, pair index) into one int64
_IOU_TYPES = ("bbox", "segm")
# (is AP, IoU threshold or None for the mean over all, area label, index into sorted max_dets
# or the literal budget 100 that COCOeval's first summary line asks for)
_SUMMARY = (
    (True, None, "all", "100"), (True, 0.5, "all", 2), (True, 0.75, "all", 2),
    (True, None, "small", 2), (True, None, "medium", 2), (True, None, "large", 2),
    (False, None, "all", 0), (False, None, "all", 1), (False, None, "all", 2),
    (False, None, "small", 2), (False, None, "medium", 2), (False, None, "large", 2),
)


@dataclass(frozen=True)
class CocoEvaluation:
    """The result of :func:`evaluate_coco`: COCOeval's ``eval`` arrays and ``stats``.

    Attributes:
        iou_type: ``"bbox"`` or ``"segm"``.
        stats: ``(12,)`` float64 in the order of :data:`STAT_NAMES` (AP@[.5:.95], AP50, AP75,
            AP small/medium/large, AR with 1/10/100 detections, AR small/medium/large); −1 where
            nothing was evaluated.
        precision: ``(T, R, K, A, M)`` interpolated precision at each IoU threshold, recall
            threshold, category, area range and detection budget; −1 where the category has no
            non-ignored object in that area range.
        recall: ``(T, K, A, M)`` final recall; −1 likewise.
        scores: ``(T, R, K, A, M)`` the score at which each recall threshold is reached.
        category_ids: ``K`` category ids (sorted), or ``(-1,)`` when categories were pooled.
        category_names: ``K`` names (``"all"`` when pooled).
        iou_thresholds: ``(T,)``. recall_thresholds: ``(R,)``. max_dets: ``M`` sorted budgets.
        area_ranges: ``A`` ``(label, lo, hi)`` triples.
        num_images: images evaluated. num_detections: detections kept (within the largest
            budget of their image and category).
    """

    iou_type: str
    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    max_dets: tuple[int, ...]
    area_ranges: tuple[tuple[str, float, float], ...]
    num_images: int = 0
    num_detections: int = 0

    def _area_index(self, label: str) -> int | None:
        labels = [a[0] for a in self.area_ranges]
        return labels.index(label) if label in labels else None

    def per_class_ap(self, iou_threshold: float | None = None) -> dict[str, float]:
        """AP of each category: the mean of ``precision`` over IoU thresholds (or at the one
        given) and recall thresholds, area ``all``, the largest budget; NaN for a category with
        no ground truth. Keys are category names."""
        a = self._area_index("all")
        out: dict[str, float] = {}
        t_sel = (slice(None) if iou_threshold is None
                 else np.flatnonzero(self.iou_thresholds == iou_threshold))
        for k, name in enumerate(self.category_names):
            if a is None:
                out[name] = math.nan
                continue
            s = self.precision[t_sel, :, k, a, -1]
            s = s[s > -1]
            out[name] = float(np.mean(s)) if s.size else math.nan
        return out

    def summary(self) -> str:
        """The twelve summary lines, formatted as COCOeval's ``summarize()`` prints them."""
        lines = []
        t0, t1 = self.iou_thresholds[0], self.iou_thresholds[-1]
        for value, (is_ap, thr, area, m) in zip(self.stats, _SUMMARY, strict=True):
            title, kind = ("Average Precision", "(AP)") if is_ap else ("Average Recall", "(AR)")
            iou = f"{t0:0.2f}:{t1:0.2f}" if thr is None else f"{thr:0.2f}"
            budget = _budget(self.max_dets, m)
            lines.append(f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | "
                         f"maxDets={budget:>3d} ] = {value:0.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the 12 stats by name, per-class AP and the parameters."""
        per_class = {k: (None if math.isnan(v) else v) for k, v in self.per_class_ap().items()}
        return {
            "iou_type": self.iou_type,
            "stats": {name: float(v) for name, v in zip(STAT_NAMES, self.stats, strict=True)},
            "per_class_ap": per_class,
            "num_images": self.num_images,
            "num_detections": self.num_detections,
            "iou_thresholds": [float(t) for t in self.iou_thresholds],
            "recall_thresholds": len(self.recall_thresholds),
            "max_dets": list(self.max_dets),
            "area_ranges": {label: [lo, hi] for label, lo, hi in self.area_ranges},
            "category_ids": list(self.category_ids),
        }


def _budget(max_dets: Sequence[int], m: int | str) -> int:
    """The detection budget of a summary line: a literal (``"100"``) or an index, clamped."""
    return int(m) if isinstance(m, str) else int(max_dets[min(m, len(max_dets) - 1)])


# ---------------------------------------------------------------------------------------------
# input gathering


def _column(records: Sequence[Mapping[str, Any]], key: str, what: str,
            dtype: Any = np.float64) -> np.ndarray:
    """``records[i][key]`` for all i as an array, or DetectionError naming the first bad one."""
    try:
        return np.fromiter(map(itemgetter(key), records), dtype=dtype, count=len(records))
    except (KeyError, TypeError, ValueError):
        for i, r in enumerate(records):
            try:
                np.array(r[key], dtype=dtype)
            except (KeyError, TypeError, ValueError) as exc:
                got = (repr(r.get(key, "nothing"))[:60] if isinstance(r, Mapping)
                       else type(r).__name__)
                raise DetectionError(f"{what}[{i}]: expected {key!r} convertible to "
                                     f"{np.dtype(dtype).name}, got {got}") from exc
        raise


def _boxes(records: Sequence[Mapping[str, Any]], what: str) -> np.ndarray:
    """``(N, 4)`` float64 xywh boxes of the records."""
    if not records:
        return np.zeros((0, 4))
    try:
        raw = list(map(itemgetter("bbox"), records))
        if set(map(len, raw)) != {4}:
            raise ValueError
        boxes = np.fromiter(chain.from_iterable(raw), dtype=np.float64,
                            count=4 * len(raw)).reshape(-1, 4)
    except (KeyError, TypeError, ValueError):
        boxes = None
    if boxes is None:
        for i, r in enumerate(records):
            b = r.get("bbox") if isinstance(r, Mapping) else None
            if not isinstance(b, Sequence) or len(b) != 4:
                raise DetectionError(f"{what}[{i}]: expected 'bbox' as 4 numbers [x, y, w, h], "
                                     f"got {repr(b)[:60]}")
        raise DetectionError(f"{what}: expected every 'bbox' as 4 numbers [x, y, w, h]")
    return boxes


def _index_of(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Position of each id in the sorted unique ``table``, or −1 when absent."""
    pos = np.searchsorted(table, ids)
    pos = np.minimum(pos, max(len(table) - 1, 0))
    found = (table[pos] == ids) if len(table) else np.zeros(len(ids), bool)
    return np.where(found, pos, -1)


@dataclass
class _Objects:
    """Ground-truth objects or detections as arrays, in evaluation order: by group (image,
    category), and within a group in COCOeval's order — file order for ground truth, score
    descending (a stable sort, so ties keep file order) for detections."""

    source: np.ndarray  # (N,) index of each object in the input list
    group: np.ndarray  # (N,) group index: image·K + category, or image when pooled
    category: np.ndarray  # (N,) category index into K (0 when pooled)
    image: np.ndarray  # (N,) image index
    boxes: np.ndarray  # (N, 4) xywh
    area: np.ndarray  # (N,)
    score: np.ndarray  # (N,) detections; empty for ground truth
    rank: np.ndarray  # (N,) detections: position within the group; empty for ground truth
    crowd: np.ndarray  # (N,) ground truth: iscrowd; empty for detections
    ids: np.ndarray  # (N,) ground truth: annotation id; empty for detections

    def take(self, index: np.ndarray) -> _Objects:
        return _Objects(*(getattr(self, f.name)[index] if len(getattr(self, f.name)) else
                          getattr(self, f.name) for f in fields(self)))


@dataclass
class _Inputs:
    images: np.ndarray  # (I,) evaluated image ids, sorted
    category_ids: np.ndarray  # (K0,) category ids, sorted
    names: dict[int, str]
    num_k: int  # K: categories evaluated (1 when pooled)
    gt: _Objects
    dt: _Objects


def _prepare(gt: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
             image_ids: Sequence[int] | None, use_categories: bool) -> _Inputs:
    """Check the inputs and turn them into arrays in evaluation order (see :class:`_Objects`).

    As COCOeval: only images of ``image_ids`` (default: all) and categories of ``gt`` count;
    with ``use_categories=False`` a group is an image and its objects are ordered by category
    first (COCOeval concatenates them category by category).
    """
    if not isinstance(gt, Mapping) or not all(k in gt for k in ("images", "annotations",
                                                               "categories")):
        raise DetectionError("expected ground truth as a COCO dict with 'images', 'annotations' "
                             f"and 'categories', got {type(gt).__name__}")
    if isinstance(detections, (str, bytes)) or not isinstance(detections, Sequence):
        raise DetectionError(f"expected detections as a list of dicts, got "
                             f"{type(detections).__name__}")
    all_images = np.unique(_column(gt["images"], "id", "images", np.int64))
    if image_ids is None:
        images = all_images
    else:
        images = np.unique(np.asarray(list(image_ids), dtype=np.int64))
        unknown = images[_index_of(images, all_images) < 0]
        if unknown.size:
            raise DetectionError(f"expected image_ids from the ground truth, got unknown id "
                                 f"{int(unknown[0])}")
    cat_ids = np.unique(_column(gt["categories"], "id", "categories", np.int64))
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in gt["categories"]}
    num_k = len(cat_ids) if use_categories else 1

    def gather(records: Sequence[Mapping[str, Any]], what: str, is_dt: bool) -> _Objects:
        img = _index_of(_column(records, "image_id", what, np.int64), images)
        cat = _index_of(_column(records, "category_id", what, np.int64), cat_ids)
        source = np.flatnonzero((img >= 0) & (cat >= 0))
        img, cat = img[source], cat[source]
        group = img * num_k + cat if use_categories else img
        empty = np.zeros(0)
        if is_dt:
            score = _column(records, "score", what)[source]
            order = np.lexsort((source, cat, -score, group))
            crowd = ids = empty
        else:
            score = empty
            order = np.lexsort((source, cat, group))
            crowd = np.fromiter((bool(r.get("iscrowd", 0)) for r in records), dtype=bool,
                                count=len(records))[source]
            ids = _column(records, "id", what, np.int64)[source]
        objs = _Objects(source=source, group=group, category=cat if use_categories
                        else np.zeros(len(source), np.int64), image=img,
                        boxes=_boxes(records, what)[source],
                        area=_column(records, "area", what)[source], score=score, rank=empty,
                        crowd=crowd, ids=ids).take(order)
        if is_dt:  # position of each detection within its group
            starts = np.flatnonzero(np.r_[True, objs.group[1:] != objs.group[:-1]])
            lengths = np.diff(np.r_[starts, len(objs.group)])
            objs.rank = np.arange(len(objs.group)) - np.repeat(starts, lengths)
        return objs

    return _Inputs(images=images, category_ids=cat_ids, names=names, num_k=num_k,
                   gt=gather(gt["annotations"], "annotations", is_dt=False),
                   dt=gather(detections, "detections", is_dt=True))


def _pair_iou_boxes(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of boxes paired row by row, in COCO's arithmetic (``maskApi.c`` ``bbIou``).

    ``d``, ``g``: ``(P, 4)`` xywh; ``crowd``: ``(P,)``. ``w = min(x_d + w_d, x_g + w_g) −
    max(x_d, x_g)`` (likewise ``h``), 0 when ``w ≤ 0`` or ``h ≤ 0``; IoU ``= wh / u`` with
    ``u = w_d h_d + w_g h_g − wh``, or ``u = w_d h_d`` for a crowd region. The operations and
    their order are COCO's, so the values are bit-identical (a match at IoU exactly 0.5 is one).
    """
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    da = d[:, 2] * d[:, 3]
    union = np.where(crowd, da, da + g[:, 2] * g[:, 3] - inter)
    ok = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _segm_rles(records: Sequence[Mapping[str, Any]], objs: _Objects, index: np.ndarray,
               sizes: Mapping[int, tuple[int, int]], images: np.ndarray, what: str
               ) -> dict[int, dict]:
    """Masks of ``objs[index]`` as compressed RLE (COCO's ``annToRLE``), keyed by index."""
    from foveal.detection.mask import segmentation_to_rle

    out = {}
    for i in index.tolist():
        src, image_id = int(objs.source[i]), int(images[objs.image[i]])
        if "segmentation" not in records[src]:
            raise DetectionError(f"{what}[{src}] (image {image_id}): expected a 'segmentation' "
                                 "for iou_type 'segm', got none")
        out[i] = segmentation_to_rle(records[src]["segmentation"], *sizes[image_id])
    return out


def _pairs(d_group: np.ndarray, g_group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, object) index pairs within a group, detection-major, objects ascending."""
    lo = np.searchsorted(g_group, d_group, side="left")
    hi = np.searchsorted(g_group, d_group, side="right")
    n = hi - lo
    pd = np.repeat(np.arange(len(d_group)), n)
    first = np.cumsum(n) - n
    pg = np.arange(len(pd)) - np.repeat(first - lo, n)
    return pd, pg


def _match(pair_d: np.ndarray, pair_g: np.ndarray, pair_iou: np.ndarray, rank: np.ndarray,
           g_ignore: np.ndarray, g_crowd: np.ndarray, thresholds: np.ndarray, num_d: int
           ) -> np.ndarray:
    """COCO greedy matching for all area ranges and IoU thresholds at once.

    Pairs must come detection-major with objects ascending, and only pairs with an IoU that can
    pass some threshold. Detections are processed rank by rank (rank ``r`` of every group in one
    step — groups are independent); within a step each detection's choice is one segmented max
    over an int64 key ``(non-ignored, IoU rank, pair index)``, which encodes "non-ignored first,
    then highest IoU, then the later object".

    Returns:
        ``(D, A, T)`` int64: the matched object's index, −1 when unmatched.
    """
    num_a, num_t = g_ignore.shape[1], len(thresholds)
    match = np.full((num_d, num_a, num_t), -1, dtype=np.int64)
    if len(pair_d) == 0:
        return match
    _, iou_rank = np.unique(pair_iou, return_inverse=True)
    key = ((~g_ignore[pair_g]).astype(np.int64) << 61) | (iou_rank.astype(np.int64)[:, None]
                                                         << _PAIR_BITS)
    key |= np.arange(len(pair_d), dtype=np.int64)[:, None]  # (P, A)
    passes = pair_iou[:, None] >= thresholds[None, :]  # (P, T)
    taken = np.zeros((len(g_crowd), num_a, num_t), dtype=bool)
    pair_rank = rank[pair_d]
    by_rank = np.argsort(pair_rank, kind="stable")
    bounds = np.searchsorted(pair_rank[by_rank], np.arange(int(pair_rank.max()) + 2))
    for r in range(len(bounds) - 1):
        sel = by_rank[bounds[r]:bounds[r + 1]]
        if sel.size == 0:
            continue
        gs = pair_g[sel]
        free = ~taken[gs] | g_crowd[gs, None, None]  # (P_r, A, T)
        k = np.where(free & passes[sel, None, :], key[sel, :, None], -1)
        ds = pair_d[sel]
        starts = np.r_[0, np.flatnonzero(np.diff(ds)) + 1]
        best = np.maximum.reduceat(k, starts, axis=0)  # (D_r, A, T)
        hit = best >= 0
        won = np.where(hit, pair_g[np.where(hit, best, 0) & ((1 << _PAIR_BITS) - 1)], -1)
        match[ds[starts]] = won
        di, ai, ti = np.nonzero(hit)
        taken[won[di, ai, ti], ai, ti] = True
    return match


def _check_params(iou_type: str, iou_thresholds: Any, recall_thresholds: Any, max_dets: Any,
                  area_ranges: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...],
                                             tuple[tuple[str, float, float], ...]]:
    if iou_type not in _IOU_TYPES:
        raise DetectionError(f"expected iou_type 'bbox' or 'segm', got {iou_type!r}")
    arrays = []
    for name, v in (("iou_thresholds", iou_thresholds), ("recall_thresholds", recall_thresholds)):
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        if a.size == 0 or not np.all((a >= 0) & (a <= 1)):
            raise DetectionError(f"expected {name} as a non-empty list of numbers in [0, 1], "
                                 f"got {v!r}")
        arrays.append(a)
    dets = sorted(int(m) for m in max_dets)
    if not dets or dets[0] < 1:
        raise DetectionError(f"expected max_dets as positive integers, got {max_dets!r}")
    items = area_ranges.items() if isinstance(area_ranges, Mapping) else area_ranges
    ranges = []
    for label, (lo, hi) in items:
        ranges.append((str(label), float(lo), float(hi)))
    if not ranges:
        raise DetectionError("expected at least one area range, got none")
    return arrays[0], arrays[1], tuple(dets), tuple(ranges)


def evaluate_coco(
    gt: Mapping[str, Any],
    detections: Sequence[Mapping[str, Any]],
    iou_type: str = "bbox",
    *,
    iou_thresholds: Sequence[float] | np.ndarray = COCO_IOU_THRESHOLDS,
    recall_thresholds: Sequence[float] | np.ndarray = COCO_RECALL_THRESHOLDS,
    max_dets: Sequence[int] = (1, 10, 100),
    area_ranges: Mapping[str, tuple[float, float]] = COCO_AREA_RANGES,
    use_categories: bool = True,
    image_ids: Sequence[int] | None = None,
) -> CocoEvaluation:
    """COCO AP/AR of ``detections`` against ``gt``; equal to pycocotools' COCOeval.

    Args:
        gt: ground truth as :func:`foveal.detection.coco.load_coco` returns it (``images``
            with ``id``, ``height``, ``width``; ``annotations`` with ``id``, ``image_id``,
            ``category_id``, ``bbox`` xywh, ``area``, ``iscrowd``, and ``segmentation`` for
            ``segm``; ``categories``).
        detections: results as :func:`foveal.detection.coco.load_detections` returns them
            (``image_id``, ``category_id``, ``score``, ``bbox``, ``area``, ``segmentation`` for
            ``segm``). Detections of unknown images or categories are left out, as COCOeval.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU).
        iou_thresholds: ``T`` thresholds (COCO: 0.50:0.05:0.95).
        recall_thresholds: ``R`` thresholds (COCO: 0:0.01:1).
        max_dets: detection budgets per image (sorted; COCO: 1, 10, 100). The summary uses the
            1st, 2nd and 3rd (the last when there are fewer) and, like COCOeval, AP@[.5:.95]
            uses a budget of exactly 100 (it is −1 when 100 is not one of them).
        area_ranges: ``{label: (lo, hi)}`` in pixels² (bounds inclusive); the summary reads
            the labels ``all``, ``small``, ``medium``, ``large`` (−1 for a missing one).
        use_categories: False pools all categories (class-agnostic, as proposal recall).
        image_ids: evaluate only these images (default: all images of ``gt``).

    Returns:
        A :class:`CocoEvaluation`.
    """
    thr, rec_thr, budgets, ranges = _check_params(iou_type, iou_thresholds, recall_thresholds,
                                                  max_dets, area_ranges)
    inputs = _prepare(gt, detections, image_ids, use_categories)
    g = inputs.gt
    d = inputs.dt.take(np.flatnonzero(inputs.dt.rank < budgets[-1]))  # the largest budget
    inputs.dt = d
    lo = np.array([r[1] for r in ranges])
    hi = np.array([r[2] for r in ranges])
    g_ignore = g.crowd[:, None] | (g.area[:, None] < lo) | (g.area[:, None] > hi)  # (G, A)
    d_outside = (d.area[:, None] < lo) | (d.area[:, None] > hi)  # (D, A)
    thr_eff = np.minimum(thr, 1 - 1e-10)

    pair_d, pair_g = _pairs(d.group, g.group)
    if iou_type == "bbox":
        pair_iou = _pair_iou_boxes(d.boxes[pair_d], g.boxes[pair_g], g.crowd[pair_g])
    else:
        pair_iou = _pair_iou_masks(gt, detections, inputs, pair_d, pair_g)
    useful = pair_iou >= thr_eff.min()  # the others can never match
    pair_d, pair_g, pair_iou = pair_d[useful], pair_g[useful], pair_iou[useful]
    match = _match(pair_d, pair_g, pair_iou, d.rank, g_ignore, g.crowd, thr_eff, len(d.group))

    if len(g.group):
        matched = match >= 0
        safe = np.maximum(match, 0)
        dt_ignore = matched & g_ignore[safe, np.arange(len(ranges))[None, :, None]]  # (D, A, T)
        counted = matched & (g.ids[safe] != 0)  # COCOeval's "dtm != 0": an object id 0 is lost
    else:
        dt_ignore = counted = np.zeros(match.shape, dtype=bool)
    dt_ignore |= ~counted & d_outside[:, :, None]
    tp = counted & ~dt_ignore
    fp = ~counted & ~dt_ignore

    n_pos = np.zeros((inputs.num_k, len(ranges)), dtype=np.int64)
    np.add.at(n_pos, g.category, (~g_ignore).astype(np.int64))
    precision, recall, scores = _accumulate(d.category, d.score, d.image, d.rank, tp, fp, n_pos,
                                            rec_thr, budgets)
    if use_categories:
        cat_ids = tuple(int(c) for c in inputs.category_ids)
        cat_names = tuple(inputs.names[c] for c in cat_ids)
    else:
        cat_ids, cat_names = (-1,), ("all",)
    stats = _stats(precision, recall, thr, budgets, [r[0] for r in ranges])
    return CocoEvaluation(iou_type=iou_type, stats=stats, precision=precision, recall=recall,
                          scores=scores, category_ids=cat_ids, category_names=cat_names,
                          iou_thresholds=thr, recall_thresholds=rec_thr, max_dets=budgets,
                          area_ranges=ranges, num_images=len(inputs.images),
                          num_detections=len(d.group))


def _pair_iou_masks(gt: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
                    inputs: _Inputs, pair_d: np.ndarray, pair_g: np.ndarray) -> np.ndarray:
    """Mask IoU of the pairs, one :func:`~foveal.detection.mask.rle_iou` call per group."""
    from foveal.detection.mask import rle_iou

    out = np.zeros(len(pair_d))
    if len(pair_d) == 0:
        return out
    d, g = inputs.dt, inputs.gt
    sizes = {int(im["id"]): (int(im["height"]), int(im["width"])) for im in gt["images"]}
    d_rle = _segm_rles(detections, d, np.unique(pair_d), sizes, inputs.images, "detections")
    g_rle = _segm_rles(gt["annotations"], g, np.unique(pair_g), sizes, inputs.images,
                       "annotations")
    # pairs come detection-major and group by group: each group is one D×G block
    grp = d.group[pair_d]
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    for s, e in zip(starts.tolist(), np.r_[starts[1:], len(grp)].tolist(), strict=True):
        ds, gs = np.unique(pair_d[s:e]), np.unique(pair_g[s:e])
        iou = rle_iou([d_rle[i] for i in ds.tolist()], [g_rle[j] for j in gs.tolist()],
                      g.crowd[gs].tolist())
        out[s:e] = np.asarray(iou, dtype=np.float64).reshape(len(ds), len(gs)).ravel()
    return out


def _accumulate(category: np.ndarray, score: np.ndarray, image: np.ndarray, rank: np.ndarray,
                tp: np.ndarray, fp: np.ndarray, n_pos: np.ndarray, rec_thr: np.ndarray,
                budgets: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval's ``accumulate``: precision/recall/scores, vectorised over areas and IoUs.

    ``tp``, ``fp``: ``(D, A, T)`` bool; ``n_pos``: ``(K, A)`` non-ignored objects. Detections
    are sorted once (category, score descending, image, rank), so each category is one block of
    columns; per category and budget, all ``A·T`` curves are computed together:

    * cumulative TP/FP counts along the columns (uint8 summed into int32: exact, and much
      faster than a cumsum of bool);
    * recall thresholds are located with integers: ``TP_i / n ≥ r`` iff ``TP_i ≥ c(r)``, the
      smallest count whose float quotient ``c / n`` reaches ``r`` (the division COCOeval
      does), so one :func:`numpy.searchsorted` over the rows, offset by row, replaces the
      ``A·T`` per-curve lookups;
    * the interpolated precision is the reversed running maximum along each row.
    """
    num_k, num_a = n_pos.shape
    num_t, num_r, num_m = tp.shape[2], len(rec_thr), len(budgets)
    rows = num_a * num_t
    precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
    recall = -np.ones((num_t, num_k, num_a, num_m))
    scores = -np.ones((num_t, num_r, num_k, num_a, num_m))
    order = np.lexsort((rank, image, -score, category))
    bounds = np.searchsorted(category[order], np.arange(num_k + 1))
    tp_rows = np.ascontiguousarray(tp[order].reshape(-1, rows).T).view(np.uint8)  # (A·T, D)
    fp_rows = np.ascontiguousarray(fp[order].reshape(-1, rows).T).view(np.uint8)
    rank_sorted, score_sorted = rank[order], score[order]
    row = np.arange(rows)[:, None]
    for k in range(num_k):
        has = n_pos[k] > 0
        if not has.any():
            continue
        n_k = np.maximum(n_pos[k], 1)
        need = np.stack([np.searchsorted(np.arange(n + 1) / n, rec_thr, side="left")
                         for n in n_k.tolist()])  # (A, R)
        query = np.repeat(need, num_t, axis=0)  # (A·T, R)
        cols = slice(bounds[k], bounds[k + 1])
        for m, budget in enumerate(budgets):
            sel = rank_sorted[cols] < budget
            n = int(sel.sum())
            if n == 0:
                recall[:, k, has, m] = 0.0
                precision[:, :, k, has, m] = 0.0
                scores[:, :, k, has, m] = 0.0
                continue
            tp_k, fp_k = tp_rows[:, cols], fp_rows[:, cols]
            if n < len(sel):
                tp_k, fp_k = tp_k[:, sel], fp_k[:, sel]
            tp_cum = np.cumsum(tp_k, axis=1, dtype=np.int32)
            tp_f = tp_cum.astype(np.float64)
            pr = tp_f / (np.cumsum(fp_k, axis=1, dtype=np.int32) + tp_f + _EPS)
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            stride = n + int(n_k.max()) + 2  # > any count and any c(r)
            keys = (tp_cum + row * stride).ravel()
            pos = np.searchsorted(keys, (query + row * stride).ravel()).reshape(rows, num_r)
            pos -= row * n
            inside = pos < n
            pos = np.minimum(pos, n - 1)
            q = np.where(inside, np.take_along_axis(pr, pos, 1), 0.0)
            ss = np.where(inside, score_sorted[cols][sel][pos], 0.0)
            rc = tp_f[:, -1].reshape(num_a, num_t) / n_k[:, None]
            precision[:, :, k, has, m] = q.reshape(num_a, num_t, num_r).transpose(1, 2, 0)[..., has]
            scores[:, :, k, has, m] = ss.reshape(num_a, num_t, num_r).transpose(1, 2, 0)[..., has]
            recall[:, k, has, m] = rc.T[:, has]
    return precision, recall, scores


def _stats(precision: np.ndarray, recall: np.ndarray, thr: np.ndarray,
           budgets: tuple[int, ...], labels: Sequence[str]) -> np.ndarray:
    """COCOeval's 12 summary numbers: means over entries > −1 (−1 when there are none)."""
    stats = np.zeros(12)
    for i, (is_ap, t, area, m) in enumerate(_SUMMARY):
        budget = _budget(budgets, m)
        a_sel = [j for j, lab in enumerate(labels) if lab == area]
        m_sel = [j for j, b in enumerate(budgets) if b == budget]
        s = precision if is_ap else recall
        if t is not None:
            s = s[np.flatnonzero(thr == t)]
        s = s[..., a_sel, :][..., m_sel]
        s = s[s > -1]
        stats[i] = np.mean(s) if s.size else -1.0
    return stats


# ---------------------------------------------------------------------------------------------
# PASCAL VOC


def voc_ap(recall: Sequence[float] | np.ndarray, precision: Sequence[float] | np.ndarray,
           use_07_metric: bool = False) -> float:
    """Average precision of a PR curve, PASCAL VOC style.

    ``use_07_metric=True`` (VOC2007): the 11-point interpolated AP,
    ``AP = (1/11) Σ_{t ∈ {0, 0.1, …, 1}} max_{r ≥ t} p(r)`` (0 when no recall reaches t), with
    the thresholds as ``np.arange(0, 1.1, 0.1)`` (as the VOC devkit's ``0:0.1:1`` and
    py-faster-rcnn; so 0.3 is 0.30000000000000004 there).
    Otherwise (VOC2010+): the area under the monotone envelope,
    ``AP = Σ_i (r_{i+1} − r_i) p̂(r_{i+1})`` with sentinels ``r = 0`` / ``p = 0`` at the start and
    ``r = 1`` / ``p = 0`` at the end and ``p̂(r) = max_{r' ≥ r} p(r')``.

    Args:
        recall: ``(N,)`` non-decreasing recalls of the ranked detections.
        precision: ``(N,)`` precisions at the same ranks.
    """
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise DetectionError(f"expected recall and precision of the same length, got "
                             f"{rec.size} and {prec.size}")
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = prec[rec >= t]
            ap += (float(reached.max()) if reached.size else 0.0) / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def evaluate_voc(gt: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
                 iou_threshold: float = 0.5, use_07_metric: bool = False) -> dict[str, Any]:
    """PASCAL VOC AP per class and its mean (mAP), from COCO-format inputs.

    The devkit rule, per class: detections in score order (ties in file order); each takes the
    object of its image with the highest IoU (the first on a tie, whether or not it is already
    taken); it is a true positive when that IoU is strictly above ``iou_threshold`` and the
    object is not yet taken, a false positive otherwise, and neither when the object is
    "difficult" (here: a crowd region, ``iscrowd = 1``), which does not count as a positive.
    Boxes are COCO's continuous ``xywh`` (no "+1" in the areas). AP from :func:`voc_ap`.

    Returns:
        ``{"ap": {name: AP or NaN for a class without objects}, "map": mean over classes with
        objects, "iou_threshold": …, "use_07_metric": …}``.
    """
    inputs = _prepare(gt, detections, None, True)
    g, d = inputs.gt, inputs.dt
    ap: dict[str, float] = {}
    # per-image (not per-group) matching within the class: group = image·K + category already
    pair_d, pair_g = _pairs(d.group, g.group)
    iou = _pair_iou_boxes(d.boxes[pair_d], g.boxes[pair_g], np.zeros(len(pair_d), bool))
    best_iou = np.full(len(d.group), -np.inf)
    best_g = np.full(len(d.group), -1)
    if len(pair_d):
        # first max per detection: sort by (det, -iou, object index), take each det's first
        order = np.lexsort((pair_g, -iou, pair_d))
        first = np.r_[True, pair_d[order][1:] != pair_d[order][:-1]]
        best = order[first]
        best_iou[pair_d[best]] = iou[best]
        best_g[pair_d[best]] = pair_g[best]
    hit = best_iou > iou_threshold
    difficult = hit & g.crowd[np.maximum(best_g, 0)]
    for k in range(inputs.num_k):
        cid = int(inputs.category_ids[k])
        npos = int(np.count_nonzero((g.category == k) & ~g.crowd))
        sel = np.flatnonzero(d.category == k)
        sel = sel[np.lexsort((d.source[sel], -d.score[sel]))]  # ties in file order
        cand = hit[sel] & ~difficult[sel]
        tp = np.zeros(len(sel), bool)
        if cand.any():
            c = np.flatnonzero(cand)
            _, first_of_gt = np.unique(best_g[sel[c]], return_index=True)
            tp[c[first_of_gt]] = True
        fp = ~tp & ~difficult[sel]
        tp_c, fp_c = np.cumsum(tp), np.cumsum(fp)
        name = inputs.names[cid]
        if npos == 0:
            ap[name] = math.nan
            continue
        rec = tp_c / npos
        prec = tp_c / np.maximum(tp_c + fp_c, np.finfo(np.float64).eps)
        ap[name] = voc_ap(rec, prec, use_07_metric)
    values = [v for v in ap.values() if not math.isnan(v)]
    return {"ap": ap, "map": float(np.mean(values)) if values else math.nan,
            "iou_threshold": float(iou_threshold), "use_07_metric": bool(use_07_metric)}
