"""Tests for foveal.detection.coco_eval.

Oracles: pycocotools' ``COCOeval`` (``evaluate`` + ``accumulate`` + ``summarize``) on the real
tiny_coco ground truth with many seeded detection sets and on small hand-built cases for each
COCO quirk — every stat, and the precision / recall / scores arrays, equal to 1e-6; closed forms
for ``voc_ap`` (11-point and all-point); and a plain-Python transliteration of py-faster-rcnn's
``voc_eval`` loop for ``evaluate_voc``.
"""

import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest

from foveal.detection.coco import load_coco, load_detections
from foveal.detection.coco_eval import (
    COCO_AREA_RANGES,
    STAT_NAMES,
    CocoEvaluation,
    evaluate_coco,
    evaluate_voc,
    voc_ap,
)
from foveal.errors import DetectionError

pycocotools = pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

ATOL = 1e-6


# ---------------------------------------------------------------------------------------------
# helpers


def load_dets(gt, dets, iou_type="bbox"):
    """Our loader (COCO.loadRes semantics)."""
    return load_detections(copy.deepcopy(dets), gt, iou_type)


def reference(gt, dets, iou_type="bbox", **params):
    """pycocotools COCOeval after evaluate/accumulate/summarize, and its printed summary."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        else:  # loadRes cannot take an empty list (it reads anns[0])
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "annotations": [],
                               "categories": copy.deepcopy(gt["categories"])}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        for key, value in params.items():
            setattr(evaluator.params, key, value)
        evaluator.evaluate()
        evaluator.accumulate()
        start = out.tell()
        evaluator.summarize()
    text = out.getvalue()[start:]
    return evaluator, text


def assert_equal_to_reference(ours: CocoEvaluation, ref: COCOeval, arrays: bool = True):
    np.testing.assert_allclose(ours.stats, ref.stats, atol=ATOL, rtol=0)
    if arrays:
        for name in ("precision", "recall", "scores"):
            np.testing.assert_allclose(getattr(ours, name), ref.eval[name], atol=ATOL, rtol=0,
                                       err_msg=name)


def check(gt, dets, iou_type="bbox", ours_kwargs=None, ref_params=None, arrays=True):
    ref, text = reference(gt, dets, iou_type, **(ref_params or {}))
    ours = evaluate_coco(load_coco(gt), load_dets(gt, dets, iou_type), iou_type,
                         **(ours_kwargs or {}))
    assert_equal_to_reference(ours, ref, arrays)
    return ours, ref, text


def jittered_detections(gt, seed, *, keep=0.8, dup=0.2, wrong_class=0.05, false_pos=200,
                        jitter=0.1, score_levels=None, drop_images=0.1, drop_categories=3,
                        crowd_hits=True):
    """Detections built from the ground truth: jittered boxes of most objects, some twice,
    some with the wrong class, random false positives, boxes on crowd regions, whole images
    and categories without detections; scores rounded to ``score_levels`` levels for ties."""
    rng = np.random.default_rng(seed)
    images = [im["id"] for im in gt["images"]]
    cats = [c["id"] for c in gt["categories"]]
    size = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    skip_images = set(rng.choice(images, int(drop_images * len(images)), replace=False).tolist())
    used = sorted({a["category_id"] for a in gt["annotations"]})
    skip_cats = set(rng.choice(used, min(drop_categories, len(used)), replace=False).tolist())
    dets = []
    for a in gt["annotations"]:
        if a["image_id"] in skip_images or a["category_id"] in skip_cats:
            continue
        if a["iscrowd"] and not crowd_hits:
            continue
        x, y, w, h = a["bbox"]
        copies = int(rng.random() < keep) + int(rng.random() < dup) + 2 * int(a["iscrowd"])
        for _ in range(copies):
            j = rng.normal(0, jitter, 4)
            cat = a["category_id"] if rng.random() > wrong_class else int(rng.choice(cats))
            box = [x + j[0] * w, y + j[1] * h, w * math.exp(j[2]), h * math.exp(j[3])]
            if a["iscrowd"]:  # a small box inside the crowd region
                box = [x + rng.random() * w / 2, y + rng.random() * h / 2, w / 4, h / 4]
            dets.append({"image_id": a["image_id"], "category_id": cat, "bbox": box})
    for _ in range(false_pos):
        im = int(rng.choice(images))
        if im in skip_images:
            continue
        W, H = size[im]
        w, h = math.exp(rng.uniform(1, 6)), math.exp(rng.uniform(1, 6))
        dets.append({"image_id": im, "category_id": int(rng.choice(cats)),
                     "bbox": [rng.uniform(0, W), rng.uniform(0, H), w, h]})
    scores = rng.random(len(dets))
    if score_levels:
        scores = np.floor(scores * score_levels) / score_levels
    for d, s in zip(dets, scores, strict=True):
        d["score"] = float(s)
        d["bbox"] = [float(v) for v in d["bbox"]]
    order = rng.permutation(len(dets))
    return [dets[i] for i in order]


@pytest.fixture(scope="module", params=["val2017", "train2017"])
def tiny_gt(request, tiny_coco_dir):
    with open(tiny_coco_dir / "annotations" / f"instances_{request.param}.json") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def val_gt(tiny_coco_dir):
    with open(tiny_coco_dir / "annotations" / "instances_val2017.json") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# equality with COCOeval on real ground truth


@pytest.mark.parametrize("seed", range(2))
def test_bbox_matches_cocoeval_on_tiny_coco(tiny_gt, seed):
    dets = jittered_detections(tiny_gt, seed, score_levels=[None, 3][seed])
    ours, _, _ = check(tiny_gt, dets)
    assert ours.stats[0] > 0


def test_bbox_heavy_duplicates_and_false_positives(val_gt):
    dets = jittered_detections(val_gt, 11, keep=1.0, dup=0.9, false_pos=2000, jitter=0.05,
                               score_levels=5)
    check(val_gt, dets)


def test_more_detections_than_max_dets_are_truncated_per_image_and_category(val_gt):
    # 150+ detections per (image, category) in a few groups: the 100-budget cut matters
    dets = jittered_detections(val_gt, 5, false_pos=0)
    rng = np.random.default_rng(0)
    anns = [a for a in val_gt["annotations"] if not a["iscrowd"]][:4]
    for a in anns:
        x, y, w, h = a["bbox"]
        for _ in range(160):
            j = rng.normal(0, 0.15, 4)
            dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": [x + j[0] * w, y + j[1] * h, w * (1 + abs(j[2])),
                                  h * (1 + abs(j[3]))],
                         "score": float(rng.integers(0, 20) / 20)})
    check(val_gt, dets)
    check(val_gt, dets, ours_kwargs={"max_dets": (1, 10, 50)},
          ref_params={"maxDets": [1, 10, 50]})


def test_empty_detection_file(val_gt):
    ours, _, _ = check(val_gt, [])
    assert ours.stats[0] == 0 and ours.num_detections == 0


def test_detections_only_on_some_images(val_gt):
    keep = {im["id"] for im in val_gt["images"][:3]}
    dets = [d for d in jittered_detections(val_gt, 2) if d["image_id"] in keep]
    check(val_gt, dets)


def test_non_default_parameters(val_gt):
    dets = jittered_detections(val_gt, 20, score_levels=4)
    iou = np.array([0.3, 0.5, 0.75, 0.9])
    rec = np.linspace(0, 1, 21)
    check(val_gt, dets, ours_kwargs={"iou_thresholds": iou, "recall_thresholds": rec},
          ref_params={"iouThrs": iou, "recThrs": rec})
    # no budget of exactly 100: COCOeval's first summary line (AP) is -1
    ours, _, _ = check(val_gt, dets, ours_kwargs={"max_dets": (3, 1, 20)},
                       ref_params={"maxDets": [1, 3, 20]})
    assert ours.stats[0] == -1
    ranges = {"all": (0, 1e10), "small": (0, 50 ** 2), "medium": (50 ** 2, 150 ** 2),
              "large": (150 ** 2, 1e10)}
    check(val_gt, dets, ours_kwargs={"area_ranges": ranges},
          ref_params={"areaRng": [list(v) for v in ranges.values()],
                      "areaRngLbl": list(ranges)})


def test_class_agnostic_use_categories_false(tiny_gt):
    dets = jittered_detections(tiny_gt, 30, wrong_class=0.5, score_levels=6)
    ours, _, _ = check(tiny_gt, dets, ours_kwargs={"use_categories": False},
                       ref_params={"useCats": 0})
    assert ours.precision.shape[2] == 1 and ours.category_ids == (-1,)


def test_image_subset(val_gt):
    dets = jittered_detections(val_gt, 3)
    ids = sorted(im["id"] for im in val_gt["images"])[::3]
    check(val_gt, dets, ours_kwargs={"image_ids": ids}, ref_params={"imgIds": ids})


def test_summary_text_matches_cocoeval_print(val_gt):
    ours, _, text = check(val_gt, jittered_detections(val_gt, 4))
    assert ours.summary() == text.rstrip("\n")


# ---------------------------------------------------------------------------------------------
# segmentation


def jittered_masks(gt, seed, iou_type_bbox_key=False):
    """Compressed-RLE detections from the ground-truth masks, shifted by a few pixels, plus
    false positives (boxes drawn as masks) and duplicates."""
    from foveal.detection.mask import rle_decode, rle_encode, rle_to_bbox, segmentation_to_rle

    rng = np.random.default_rng(seed)
    size = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    dets = []
    for a in gt["annotations"]:
        if rng.random() < 0.2:
            continue
        h, w = size[a["image_id"]]
        m = rle_decode(segmentation_to_rle(a["segmentation"], h, w))
        for _ in range(1 + int(rng.random() < 0.2)):
            dy, dx = rng.integers(-4, 5, 2)
            shifted = np.roll(np.roll(m, dy, 0), dx, 1)
            det = {"image_id": a["image_id"], "category_id": a["category_id"],
                   "segmentation": rle_encode(shifted),
                   "score": float(np.round(rng.random(), 2))}
            if iou_type_bbox_key:
                det["bbox"] = [float(v) for v in rle_to_bbox([det["segmentation"]])[0]]
            dets.append(det)
    images = list(size)
    for _ in range(60):
        im = int(rng.choice(images))
        h, w = size[im]
        box = np.zeros((h, w), np.uint8)
        y0, x0 = rng.integers(0, h - 10), rng.integers(0, w - 10)
        box[y0:y0 + rng.integers(5, 80), x0:x0 + rng.integers(5, 80)] = 1
        det = {"image_id": im, "category_id": int(rng.choice([c["id"] for c in gt["categories"]])),
               "segmentation": rle_encode(box), "score": float(rng.random())}
        if iou_type_bbox_key:
            det["bbox"] = [float(v) for v in rle_to_bbox([det["segmentation"]])[0]]
        dets.append(det)
    return dets


@pytest.fixture(scope="module")
def segm_gt(val_gt):
    """The first 20 images of val2017 (masks are slow to make and compare)."""
    keep = {im["id"] for im in val_gt["images"][:20]}
    return {**val_gt, "images": [im for im in val_gt["images"] if im["id"] in keep],
            "annotations": [a for a in val_gt["annotations"] if a["image_id"] in keep]}


def test_segm_matches_cocoeval_on_tiny_coco(segm_gt):
    ours, _, _ = check(segm_gt, jittered_masks(segm_gt, 0), "segm")
    assert ours.stats[0] > 0


def test_segm_detections_with_bbox_key_use_box_area_like_loadres(segm_gt):
    # loadRes looks at the first result: with a 'bbox' key it takes the box branch, so the area
    # used for the area ranges of unmatched detections is w*h, not the mask area
    check(segm_gt, jittered_masks(segm_gt, 7, iou_type_bbox_key=True), "segm")


# ---------------------------------------------------------------------------------------------
# hand-built cases, one COCO rule each


def tiny(objects, images=((1, 100, 100),), categories=(1, 2)):
    """A ground truth from ``(image_id, category_id, [x, y, w, h], iscrowd[, id])`` tuples."""
    anns = []
    for i, o in enumerate(objects):
        img, cat, box, crowd = o[:4]
        anns.append({"id": o[4] if len(o) > 4 else i + 1, "image_id": img, "category_id": cat,
                     "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
                     "iscrowd": crowd,
                     "segmentation": ([[box[0], box[1], box[0] + box[2], box[1],
                                        box[0] + box[2], box[1] + box[3], box[0],
                                        box[1] + box[3]]] if not crowd else
                                      mask_utils.frPyObjects([[box[0], box[1], box[0] + box[2],
                                                               box[1], box[0] + box[2],
                                                               box[1] + box[3], box[0],
                                                               box[1] + box[3]]], 100, 100)[0])})
    for a in anns:
        if isinstance(a["segmentation"], dict):
            a["segmentation"]["counts"] = a["segmentation"]["counts"].decode()
    return {"images": [{"id": i, "height": h, "width": w, "file_name": f"{i}.jpg"}
                       for i, h, w in images],
            "annotations": anns,
            "categories": [{"id": c, "name": f"c{c}"} for c in categories]}


def dets_of(*rows):
    return [{"image_id": img, "category_id": cat, "bbox": [float(v) for v in box], "score": s}
            for img, cat, box, s in rows]


def test_crowd_region_can_be_matched_many_times():
    gt = tiny([(1, 1, [0, 0, 60, 60], 1), (1, 1, [70, 70, 20, 20], 0)])
    dets = dets_of((1, 1, [0, 0, 10, 10], 0.9), (1, 1, [10, 10, 10, 10], 0.8),
                   (1, 1, [70, 70, 20, 20], 0.7), (1, 1, [20, 20, 10, 10], 0.95))
    ours, _, _ = check(gt, dets)
    assert ours.stats[0] == pytest.approx(1.0)  # crowd hits ignored, the one object found


def test_crowd_iou_is_intersection_over_detection_area():
    # detection inside the crowd region: IoU = 1 under COCO's rule, 0.0625 under the usual one
    gt = tiny([(1, 1, [0, 0, 40, 40], 1), (1, 1, [50, 50, 10, 10], 0)])
    check(gt, dets_of((1, 1, [0, 0, 10, 10], 0.9), (1, 1, [50, 50, 10, 10], 0.5)))


def test_non_ignored_object_preferred_over_better_crowd_match():
    gt = tiny([(1, 1, [0, 0, 20, 20], 1), (1, 1, [0, 0, 20, 30], 0)])
    # IoU with the crowd region 1.0, with the object 0.667: still matched to the object
    ours, _, _ = check(gt, dets_of((1, 1, [0, 0, 20, 20], 0.9)))
    assert ours.recall[0, 0, 0, -1] == 1.0


def test_equal_iou_goes_to_the_later_object():
    # two identical objects, then a second detection: ties go to the later object first
    gt = tiny([(1, 1, [10, 10, 20, 20], 0), (1, 1, [10, 10, 20, 20], 0),
               (1, 1, [10, 10, 40, 40], 0)], categories=(1,))
    check(gt, dets_of((1, 1, [10, 10, 20, 20], 0.9), (1, 1, [10, 10, 30, 30], 0.8),
                      (1, 1, [10, 10, 20, 20], 0.7)))


def test_iou_exactly_at_threshold_matches():
    # IoU = 100/200 = 0.5 exactly, and 0.75 exactly: >= threshold is a match
    gt = tiny([(1, 1, [0, 0, 10, 20], 0), (1, 2, [0, 0, 30, 40], 0)])
    ours, _, _ = check(gt, dets_of((1, 1, [0, 0, 10, 10], 0.9), (1, 2, [0, 0, 30, 30], 0.9)))
    assert ours.recall[0, 0, 0, -1] == 1.0 and ours.recall[1, 0, 0, -1] == 0.0


def test_out_of_area_range_objects_are_ignored_and_sorted_last():
    # a large object and a small one overlapping the same detection; in area "small" the large
    # one is ignored; unmatched detections outside the range are ignored too
    gt = tiny([(1, 1, [0, 0, 99, 99], 0), (1, 1, [0, 0, 30, 30], 0), (1, 2, [60, 60, 5, 5], 0)])
    check(gt, dets_of((1, 1, [0, 0, 95, 95], 0.9), (1, 1, [0, 0, 28, 30], 0.8),
                      (1, 1, [0, 0, 99, 98], 0.7), (1, 2, [0, 0, 50, 50], 0.6),
                      (1, 2, [60, 60, 5, 6], 0.5)))


def test_object_id_zero_counts_as_unmatched_like_cocoeval():
    # COCOeval stores matched ids with 0 meaning "none": the object with id 0 is consumed but
    # its detection counts as a false positive
    gt = tiny([(1, 1, [0, 0, 20, 20], 0, 0), (1, 1, [50, 50, 20, 20], 0, 7)])
    check(gt, dets_of((1, 1, [0, 0, 20, 20], 0.9), (1, 1, [50, 50, 20, 20], 0.8),
                      (1, 1, [1, 1, 20, 20], 0.7)))


def test_score_ties_keep_file_order_and_image_order():
    gt = tiny([(1, 1, [0, 0, 20, 20], 0), (2, 1, [0, 0, 20, 20], 0), (2, 1, [40, 40, 20, 20], 0)],
              images=((1, 100, 100), (2, 100, 100)))
    dets = dets_of((2, 1, [0, 0, 20, 20], 0.5), (1, 1, [60, 0, 20, 20], 0.5),
                   (1, 1, [0, 0, 20, 20], 0.5), (2, 1, [80, 80, 10, 10], 0.5),
                   (2, 1, [40, 40, 20, 20], 0.5))
    check(gt, dets)


def test_category_without_objects_is_minus_one_and_left_out_of_means():
    gt = tiny([(1, 1, [0, 0, 20, 20], 0)], categories=(1, 2, 3))
    ours, _, _ = check(gt, dets_of((1, 2, [0, 0, 20, 20], 0.9), (1, 1, [0, 0, 20, 20], 0.8)))
    assert (ours.precision[:, :, 1:] == -1).all()
    assert ours.stats[0] == pytest.approx(1.0)
    ap = ours.per_class_ap()
    assert ap["c1"] == pytest.approx(1.0) and math.isnan(ap["c2"]) and math.isnan(ap["c3"])


def test_to_dict_is_json_ready(val_gt):
    ours = evaluate_coco(val_gt, load_dets(val_gt, jittered_detections(val_gt, 1)))
    d = json.loads(json.dumps(ours.to_dict()))
    assert list(d["stats"]) == list(STAT_NAMES)
    assert d["stats"]["AP"] == pytest.approx(ours.stats[0])
    assert len(d["per_class_ap"]) == len(val_gt["categories"])


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_parameters_raise_detection_error(val_gt):
    with pytest.raises(DetectionError, match="iou_type"):
        evaluate_coco(val_gt, [], "keypoints")
    with pytest.raises(DetectionError, match="iou_thresholds"):
        evaluate_coco(val_gt, [], iou_thresholds=[1.5])
    with pytest.raises(DetectionError, match="max_dets"):
        evaluate_coco(val_gt, [], max_dets=(0, 10))
    with pytest.raises(DetectionError, match="image_ids"):
        evaluate_coco(val_gt, [], image_ids=[-5])
    with pytest.raises(DetectionError, match="ground truth"):
        evaluate_coco({"images": []}, [])


def test_detection_without_score_names_the_record(val_gt):
    dets = [{"image_id": val_gt["images"][0]["id"], "category_id": 1, "bbox": [0, 0, 1, 1],
             "area": 1.0}]
    with pytest.raises(DetectionError, match=r"detections\[0\].*'score'"):
        evaluate_coco(val_gt, dets)


def test_default_area_ranges_are_cocos():
    assert COCO_AREA_RANGES == {"all": (0, 1e10), "small": (0, 1024), "medium": (1024, 9216),
                                "large": (9216, 1e10)}


# ---------------------------------------------------------------------------------------------
# VOC


def test_voc_ap_all_point_closed_form():
    # precision 1, 0.5, 2/3 at recall 1/3, 1/3, 2/3: envelope 1 on (0, 1/3], 2/3 on (1/3, 2/3],
    # 0 beyond: AP = 1/3 + (1/3)(2/3) = 5/9
    rec = [1 / 3, 1 / 3, 2 / 3]
    prec = [1.0, 0.5, 2 / 3]
    assert voc_ap(rec, prec) == pytest.approx(5 / 9, abs=1e-12)
    assert voc_ap([1.0], [1.0]) == pytest.approx(1.0)
    assert voc_ap([], []) == 0.0


def test_voc_ap_11_point_closed_form():
    # recall reaches 0.5 at precision 1 and 1.0 at precision 0.5: 6 points at 1, 5 at 0.5
    rec = [0.25, 0.5, 0.75, 1.0]
    prec = [1.0, 1.0, 0.6, 0.5]
    assert voc_ap(rec, prec, use_07_metric=True) == pytest.approx((6 * 1.0 + 2 * 0.6 + 3 * 0.5)
                                                                  / 11, abs=1e-12)
    # recall never above 0.45: points 0..0.4 get the max precision, the rest 0
    assert voc_ap([0.2, 0.45], [0.8, 0.4], use_07_metric=True) == pytest.approx(
        (3 * 0.8 + 2 * 0.4) / 11, abs=1e-12)


def test_voc_ap_11_point_uses_arange_thresholds():
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004: a recall of exactly 0.3 misses it
    assert voc_ap([0.3], [1.0], use_07_metric=True) == pytest.approx(3 / 11, abs=1e-12)


def voc_eval_loop(gt, dets, thr, use_07):
    """py-faster-rcnn ``voc_eval``, one class at a time, crowd = difficult, no "+1"."""
    out = {}
    names = {c["id"]: c["name"] for c in gt["categories"]}
    for cid, name in names.items():
        recs = {}
        npos = 0
        for a in gt["annotations"]:
            if a["category_id"] == cid:
                recs.setdefault(a["image_id"], []).append(a)
                npos += not a["iscrowd"]
        det = [d for d in dets if d["category_id"] == cid]
        det = sorted(det, key=lambda d: -d["score"])
        taken = set()
        tp, fp = [], []
        for d in det:
            objs = recs.get(d["image_id"], [])
            best, arg = -math.inf, None
            for j, g in enumerate(objs):
                x1, y1 = max(d["bbox"][0], g["bbox"][0]), max(d["bbox"][1], g["bbox"][1])
                x2 = min(d["bbox"][0] + d["bbox"][2], g["bbox"][0] + g["bbox"][2])
                y2 = min(d["bbox"][1] + d["bbox"][3], g["bbox"][1] + g["bbox"][3])
                inter = max(x2 - x1, 0) * max(y2 - y1, 0)
                uni = d["bbox"][2] * d["bbox"][3] + g["bbox"][2] * g["bbox"][3] - inter
                ov = inter / uni
                if ov > best:
                    best, arg = ov, j
            if best > thr:
                if objs[arg]["iscrowd"]:
                    tp.append(0)
                    fp.append(0)
                elif (d["image_id"], arg) not in taken:
                    taken.add((d["image_id"], arg))
                    tp.append(1)
                    fp.append(0)
                else:
                    tp.append(0)
                    fp.append(1)
            else:
                tp.append(0)
                fp.append(1)
        if npos == 0:
            out[name] = math.nan
            continue
        tpc, fpc = np.cumsum(tp), np.cumsum(fp)
        rec = tpc / npos
        prec = tpc / np.maximum(tpc + fpc, np.finfo(np.float64).eps)
        out[name] = voc_ap(rec, prec, use_07)
    return out


@pytest.mark.parametrize("use_07", [False, True])
def test_evaluate_voc_matches_devkit_loop(val_gt, use_07):
    dets = jittered_detections(val_gt, 8)  # continuous scores: no tie order question
    ours = evaluate_voc(val_gt, load_dets(val_gt, dets), use_07_metric=use_07)
    expected = voc_eval_loop(val_gt, dets, 0.5, use_07)
    assert set(ours["ap"]) == set(expected)
    for name, v in expected.items():
        if math.isnan(v):
            assert math.isnan(ours["ap"][name])
        else:
            assert ours["ap"][name] == pytest.approx(v, abs=1e-12), name
    assert ours["map"] == pytest.approx(np.nanmean(list(expected.values())), abs=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_bbox_and_segm_sweep_slow(tiny_gt, seed):
    dets = jittered_detections(tiny_gt, 100 + seed, keep=0.5 + seed / 30, dup=seed / 12,
                               false_pos=100 * seed, score_levels=[None, 2, 7][seed % 3])
    check(tiny_gt, dets)
    check(tiny_gt, dets, ours_kwargs={"use_categories": False}, ref_params={"useCats": 0})
    check(tiny_gt, jittered_masks(tiny_gt, 200 + seed), "segm")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_non_default_parameters_sweep_slow(tiny_gt, seed):
    dets = jittered_detections(tiny_gt, 40 + seed, score_levels=[None, 3, 8][seed])
    iou = np.array([0.1, 0.5, 0.75, 0.95, 1.0])
    check(tiny_gt, dets, ours_kwargs={"iou_thresholds": iou, "max_dets": (1, 2, 5)},
          ref_params={"iouThrs": iou, "maxDets": [1, 2, 5]})
    check(tiny_gt, dets, ours_kwargs={"use_categories": False, "max_dets": (1, 10, 30)},
          ref_params={"useCats": 0, "maxDets": [1, 10, 30]})
