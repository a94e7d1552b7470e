"""Tests for foveal.detection.coco.

Oracles: pycocotools 2.0.11 ``COCO.loadRes`` (result loading, compared field by field) and
``COCOeval`` (segm evaluation of box results, every stat and the precision / recall / scores
arrays to 1e-6), the real tiny_coco annotation files (read with ``json`` for the round trip),
and hand-made invalid records whose error messages must name the record, also when the bad
record hides among many valid ones, some of them of types only the record-by-record checks
accept (NumPy scalars, tuples).
"""

import contextlib
import copy
import io
import json
import math
import re

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from foveal.detection.coco import load_coco, load_detections, save_coco, save_detections
from foveal.detection.coco_eval import evaluate_coco
from foveal.detection.mask import rle_encode
from foveal.errors import DataError, DetectionError


def tiny_gt() -> dict:
    """Two images (the second without annotations), two categories, three annotations."""
    crowd = np.zeros((20, 30), np.uint8)
    crowd[2:9, 4:20] = 1
    counts = [int(c) for c in np.diff(np.flatnonzero(np.diff(np.r_[2, crowd.T.ravel(), 2])))]
    return {
        "info": {"description": "test"},
        "images": [{"id": 1, "height": 20, "width": 30, "file_name": "a.jpg"},
                   {"id": 2, "height": 10, "width": 10, "file_name": "b.jpg"}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "bbox": [1.0, 2.0, 5.0, 4.0],
             "area": 20.0, "iscrowd": 0, "segmentation": [[1, 2, 6, 2, 6, 6, 1, 6]]},
            {"id": 11, "image_id": 1, "category_id": 7, "bbox": [10, 5, 3, 3], "area": 9,
             "iscrowd": 0, "segmentation": [[10, 5, 13, 5, 13, 8]]},
            {"id": 12, "image_id": 1, "category_id": 3, "bbox": [4, 2, 16, 7], "area": 112,
             "iscrowd": 1, "segmentation": {"size": [20, 30], "counts": counts}},
        ],
    }


def test_load_coco_round_trips_tiny_coco(tiny_coco_dir, tmp_path):
    for split in ("train", "val"):
        path = tiny_coco_dir / "annotations" / f"instances_{split}2017.json"
        raw = json.loads(path.read_text())
        data = load_coco(path)
        assert data == raw
        save_coco(tmp_path / f"{split}.json", data)
        assert load_coco(tmp_path / f"{split}.json") == raw
        assert json.loads((tmp_path / f"{split}.json").read_text()) == raw


def test_load_coco_accepts_a_dict_and_leaves_it_alone():
    gt = tiny_gt()
    before = copy.deepcopy(gt)
    out = load_coco(gt)
    assert out == before and gt == before
    assert out is not gt and out["annotations"] is not gt["annotations"]


def test_images_without_annotations_and_no_annotations_are_valid():
    gt = tiny_gt()
    gt["annotations"] = []
    assert load_coco(gt)["images"] == gt["images"]


def test_bytes_rle_counts_become_str():
    gt = tiny_gt()
    rle = rle_encode(np.eye(10, dtype=np.uint8))
    gt["annotations"].append({"id": 13, "image_id": 2, "category_id": 3, "bbox": [0, 0, 10, 10],
                              "area": 10, "segmentation": {**rle,
                                                           "counts": rle["counts"].encode()}})
    assert load_coco(gt)["annotations"][-1]["segmentation"] == rle


def bad_gt(change):
    gt = tiny_gt()
    change(gt)
    return gt


def _set(path, value):
    def change(gt):
        *keys, last = path
        obj = gt
        for k in keys:
            obj = obj[k]
        if value is _DELETE:
            del obj[last]
        else:
            obj[last] = value
    return change


_DELETE = object()

BAD_GT = {
    "short_polygon": (_set(["annotations", 1, "segmentation"], [[10, 5, 13, 5]]),
                      "annotations[1] (id 11): expected a polygon with >= 3 points (6 numbers) "
                      "and an even count, got 4 numbers"),
    "odd_polygon": (_set(["annotations", 1, "segmentation"], [[10, 5, 13, 5, 13, 8, 1]]),
                    "annotations[1] (id 11): expected a polygon with >= 3 points (6 numbers) "
                    "and an even count, got 7 numbers"),
    "polygon_nan": (_set(["annotations", 0, "segmentation", 0, 3], math.nan),
                    "annotations[0] (id 10): expected finite polygon coordinates, got nan"),
    "segmentation_string": (_set(["annotations", 0, "segmentation"], "abc"),
                            "annotations[0] (id 10): expected segmentation as a list of "
                            "polygons or an RLE dict, got str"),
    "missing_bbox": (_set(["annotations", 2, "bbox"], _DELETE),
                     "annotations[2] (id 12): expected key 'bbox'"),
    "missing_area": (_set(["annotations", 0, "area"], _DELETE),
                     "annotations[0] (id 10): expected key 'area'"),
    "missing_id": (_set(["annotations", 1, "id"], _DELETE), "annotations[1]: expected key 'id'"),
    "string_category_id": (_set(["annotations", 0, "category_id"], "3"),
                           "annotations[0] (id 10): expected integer 'category_id', got '3'"),
    "bool_image_id": (_set(["annotations", 0, "image_id"], True),
                      "annotations[0] (id 10): expected integer 'image_id', got True"),
    "duplicate_annotation_id": (_set(["annotations", 2, "id"], 10),
                                "annotations[2] (id 10): expected a unique id, got the id of "
                                "annotations[0]"),
    "duplicate_image_id": (_set(["images", 1, "id"], 1),
                           "images[1] (id 1): expected a unique id, got the id of images[0]"),
    "duplicate_category_id": (_set(["categories", 1, "id"], 3),
                              "categories[1] (id 3): expected a unique id"),
    "unknown_image_id": (_set(["annotations", 1, "image_id"], 99),
                         "annotations[1] (id 11): expected image_id of a listed image, got 99"),
    "unknown_category_id": (_set(["annotations", 1, "category_id"], 5),
                            "annotations[1] (id 11): expected category_id of a listed category, "
                            "got 5"),
    "negative_width": (_set(["annotations", 1, "bbox", 2], -3.0),
                       "annotations[1] (id 11): expected bbox width >= 0, got -3.0"),
    "negative_height": (_set(["annotations", 0, "bbox", 3], -1),
                        "annotations[0] (id 10): expected bbox height >= 0, got -1"),
    "bbox_three_numbers": (_set(["annotations", 0, "bbox"], [1, 2, 3]),
                           "annotations[0] (id 10): expected bbox [x, y, width, height] of 4 "
                           "numbers, got [1, 2, 3]"),
    "bbox_infinite": (_set(["annotations", 0, "bbox", 0], math.inf),
                      "annotations[0] (id 10): expected finite bbox numbers"),
    "area_nan": (_set(["annotations", 0, "area"], math.nan),
                 "annotations[0] (id 10): expected a finite number 'area', got nan"),
    "area_negative": (_set(["annotations", 0, "area"], -2.0),
                      "annotations[0] (id 10): expected 'area' >= 0, got -2.0"),
    "iscrowd_two": (_set(["annotations", 0, "iscrowd"], 2),
                    "annotations[0] (id 10): expected iscrowd 0 or 1, got 2"),
    "rle_size_mismatch": (_set(["annotations", 2, "segmentation", "size"], [30, 20]),
                          "annotations[2] (id 12): segmentation: expected RLE size [20, 30] of "
                          "the image, got [30, 20]"),
    "rle_counts_sum": (_set(["annotations", 2, "segmentation", "counts"], [5, 5]),
                       "annotations[2] (id 12): segmentation: expected counts summing to "
                       "height*width = 20*30 = 600, got 10"),
    "rle_bad_character": (_set(["annotations", 2, "segmentation", "counts"], "a b"),
                          "annotations[2] (id 12): segmentation: expected counts characters "
                          "'0'..'o', got ' ' at position 1"),
    "image_without_height": (_set(["images", 1, "height"], _DELETE),
                             "images[1] (id 2): expected key 'height'"),
    "image_zero_width": (_set(["images", 0, "width"], 0),
                         "images[0] (id 1): expected height and width >= 1, got 20 and 0"),
    "category_without_name": (_set(["categories", 0, "name"], _DELETE),
                              "categories[0] (id 3): expected key 'name'"),
    "annotation_not_object": (_set(["annotations", 1], [1, 2]),
                              "annotations[1]: expected an object, got list"),
    "images_not_list": (_set(["images"], {"id": 1}),
                        "ground truth: expected 'images' to be a list, got dict"),
    "missing_categories": (_set(["categories"], _DELETE),
                           "ground truth: expected key 'categories'"),
}


@pytest.mark.parametrize("case", list(BAD_GT))
def test_bad_ground_truth_raises_naming_the_record(case):
    change, message = BAD_GT[case]
    with pytest.raises(DetectionError, match=re.escape(message)) as err:
        load_coco(bad_gt(change))
    assert "\n" not in str(err.value)


def test_ground_truth_not_an_object_raises():
    with pytest.raises(DetectionError, match=r"expected a COCO object .* got list"):
        load_coco([1, 2])


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text('{\n  "images": [],\n  "annotations": [}\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:3:")):
        load_coco(path)
    with pytest.raises(DataError, match=re.escape(f"{path}:3:")):
        load_detections(path, tiny_gt())


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="ground truth file not found"):
        load_coco(tmp_path / "nope.json")


def test_save_coco_is_validated_and_round_trips(tmp_path):
    gt = tiny_gt()
    gt["annotations"][0]["area"] = np.float32(20.0)  # NumPy scalars are written as numbers
    save_coco(tmp_path / "gt.json", gt)
    back = load_coco(tmp_path / "gt.json")
    assert back["annotations"][0]["area"] == 20.0 and back["info"] == gt["info"]
    message = "annotations[0] (id 10): expected image_id of a listed image, got 5"
    with pytest.raises(DetectionError, match=re.escape(message)):
        save_coco(tmp_path / "bad.json", bad_gt(_set(["annotations", 0, "image_id"], 5)))
    assert not (tmp_path / "bad.json").exists()


# ------------------------------------------------------------------------- detections


def _compare_with_loadres(gt_path, results, ours):
    ref = COCO(str(gt_path)).loadRes(copy.deepcopy(results))
    assert [a["id"] for a in ours] == list(range(1, len(results) + 1))
    for a in ours:
        r = ref.anns[a["id"]]
        assert set(a) == set(r), a["id"]
        for key, value in r.items():
            if key == "segmentation" and isinstance(value, dict):
                counts = value["counts"]
                counts = counts.decode() if isinstance(counts, bytes) else counts
                assert a[key] == {"size": list(value["size"]), "counts": counts}
            elif isinstance(value, np.ndarray):
                np.testing.assert_array_equal(a[key], value)
            else:
                assert a[key] == value, (key, a[key], value)
                assert type(a[key]) is type(value) or key == "area"


def _box_results(gt, rng, n=120):
    images = [im["id"] for im in gt["images"]]
    cats = [c["id"] for c in gt["categories"]]
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 400, 2).round(2).tolist()
        w, h = rng.uniform(1, 200, 2).round(2).tolist()
        out.append({"image_id": int(rng.choice(images)), "category_id": int(rng.choice(cats)),
                    "bbox": [x, y, w, h], "score": float(rng.random())})
    return out


def test_load_detections_box_results_equal_loadres(tiny_coco_dir):
    path = tiny_coco_dir / "annotations" / "instances_val2017.json"
    gt = load_coco(path)
    results = _box_results(gt, np.random.default_rng(0))
    results[3]["bbox"] = [5, 6, 7, 8]  # integer boxes keep an integer area, as loadRes
    before = copy.deepcopy(results)
    ours = load_detections(results, gt)
    assert results == before  # input untouched (loadRes edits its input in place)
    _compare_with_loadres(path, results, ours)
    x, y, w, h = results[3]["bbox"]
    assert ours[3]["segmentation"] == [[x, y, x, y + h, x + w, y + h, x + w, y]]


def test_load_detections_mask_results_equal_loadres(tiny_coco_dir):
    path = tiny_coco_dir / "annotations" / "instances_val2017.json"
    gt = load_coco(path)
    coco = COCO(str(path))
    results = []
    for k, ann in enumerate(gt["annotations"][:150]):
        rle = coco.annToRLE(ann)
        counts = rle["counts"] if isinstance(rle["counts"], bytes) else rle["counts"].encode()
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                        "segmentation": {"size": list(rle["size"]),
                                         "counts": counts.decode() if k % 2 else counts},
                        "score": 0.5 + k / 1000})
    ours = load_detections(results, gt, "segm")
    _compare_with_loadres(path, results, ours)
    assert all(isinstance(a["area"], int) and isinstance(a["segmentation"]["counts"], str)
               for a in ours)


def test_mask_results_that_carry_a_bbox_take_the_box_area_as_loadres(tiny_coco_dir):
    """loadRes decides by the first result: with a bbox, area = w·h, not the mask's area."""
    path = tiny_coco_dir / "annotations" / "instances_val2017.json"
    gt = load_coco(path)
    coco = COCO(str(path))
    ann = next(a for a in gt["annotations"] if not a["iscrowd"])
    rle = coco.annToRLE(ann)
    results = [{"image_id": ann["image_id"], "category_id": ann["category_id"],
                "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.9,
                "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode()}}]
    ours = load_detections(results, gt, "segm")
    assert ours[0]["area"] == 12.0
    _compare_with_loadres(path, results, ours)


def test_empty_detections_list_is_valid(tmp_path):
    assert load_detections([], tiny_gt()) == []
    save_detections(tmp_path / "dt.json", [])
    assert load_detections(tmp_path / "dt.json", tiny_gt(), "segm") == []


def test_save_and_load_detections_file(tmp_path):
    gt = tiny_gt()
    dets = [{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": np.float32(0.5)},
            {"image_id": 2, "category_id": 7, "bbox": [0.5, 0, 2, 2], "score": 0.25}]
    save_detections(tmp_path / "dt.json", dets)
    out = load_detections(tmp_path / "dt.json", gt)
    assert [d["score"] for d in out] == [0.5, 0.25]
    assert [d["area"] for d in out] == [12, 4]


def _det(**change):
    det = {"image_id": 1, "category_id": 3, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}
    det.update(change)
    return {k: v for k, v in det.items() if v is not _DELETE}


_RLE = rle_encode(np.ones((20, 30), np.uint8))

BAD_DETECTIONS = {
    "unknown_image": ([_det(), _det(image_id=42)],
                      "detections[1] (image 42): expected image_id of a ground-truth image, "
                      "got 42"),
    "unknown_category": ([_det(category_id=4)],
                         "detections[0] (image 1): expected category_id of a ground-truth "
                         "category, got 4"),
    "score_nan": ([_det(), _det(score=math.nan)],
                  "detections[1] (image 1): expected a finite number 'score', got nan"),
    "score_missing": ([_det(score=_DELETE)], "detections[0] (image 1): expected key 'score'"),
    "negative_box": ([_det(bbox=[1, 2, -3, 4])],
                     "detections[0] (image 1): expected bbox width >= 0, got -3"),
    "box_missing_later": ([_det(), _det(bbox=_DELETE)],
                          "detections[1] (image 1): expected key 'bbox'"),
    "image_id_float": ([_det(image_id=1.0)], "detections[0]: expected integer 'image_id'"),
    "mask_result_polygon": ([_det(bbox=_DELETE, segmentation=[[1, 2, 5, 2, 5, 6]])],
                            "detections[0] (image 1): expected an RLE dict 'segmentation'"),
    "mask_result_wrong_size": ([_det(bbox=_DELETE, image_id=2, segmentation=_RLE)],
                               "detections[0] (image 2): segmentation: expected RLE size "
                               "[10, 10] of the image, got [20, 30]"),
    "not_an_object": ([_det(), "x"], "detections[1]: expected an object, got str"),
    "not_a_list": ({"image_id": 1}, "detections: expected a list of detections, got dict"),
}


@pytest.mark.parametrize("case", list(BAD_DETECTIONS))
def test_bad_detections_raise_naming_the_record(case):
    dets, message = BAD_DETECTIONS[case]
    with pytest.raises(DetectionError, match=re.escape(message)) as err:
        load_detections(dets, tiny_gt())
    assert "\n" not in str(err.value)


def test_bad_iou_type_raises():
    with pytest.raises(DetectionError, match="iou_type one of"):
        load_detections([], tiny_gt(), "keypoints")


def test_save_detections_rejects_bad_records(tmp_path):
    with pytest.raises(DetectionError, match=r"detections\[0\]: expected a 'bbox' or a "):
        save_detections(tmp_path / "dt.json", [{"image_id": 1, "category_id": 1, "score": 1}])
    assert not (tmp_path / "dt.json").exists()


# ------------------------------------------------------------------ segm of box results


def test_box_results_for_segm_get_the_box_polygon_as_loadres(tiny_coco_dir):
    """loadRes does not know the evaluation: box results without a segmentation get their box
    as a polygon, also when they are loaded for a segm evaluation."""
    path = tiny_coco_dir / "annotations" / "instances_val2017.json"
    gt = load_coco(path)
    results = _box_results(gt, np.random.default_rng(1), n=40)
    ours = load_detections(results, gt, "segm")
    _compare_with_loadres(path, results, ours)


def test_segm_evaluation_of_box_results_equals_cocoeval(tiny_coco_dir):
    """COCOeval(iouType='segm') on loadRes'd box results rasterises the box polygons; so does
    evaluate_coco on load_detections' output (boxes crossing the image border included)."""
    raw = json.loads((tiny_coco_dir / "annotations" / "instances_val2017.json").read_text())
    keep = {im["id"] for im in raw["images"][:15]}
    gt = {**raw, "images": [im for im in raw["images"] if im["id"] in keep],
          "annotations": [a for a in raw["annotations"] if a["image_id"] in keep]}
    rng = np.random.default_rng(3)
    results = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        for _ in range(1 + int(rng.random() < 0.3)):
            j = rng.normal(0, 0.1, 4)
            results.append({"image_id": a["image_id"], "category_id": a["category_id"],
                            "bbox": [x + j[0] * w, y + j[1] * h, w * math.exp(j[2]),
                                     h * math.exp(j[3])], "score": 0.0})
    results += _box_results(gt, rng, n=40)  # false positives, some past the image border
    for r, score in zip(results, rng.random(len(results)).round(2), strict=True):
        r["score"] = float(score)
        r["bbox"] = [float(v) for v in r["bbox"]]

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ref = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "segm")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    g = load_coco(gt)
    ours = evaluate_coco(g, load_detections(results, g, "segm"), "segm")
    np.testing.assert_allclose(ours.stats, ref.stats, atol=1e-6, rtol=0)
    for name in ("precision", "recall", "scores"):
        np.testing.assert_allclose(getattr(ours, name), ref.eval[name], atol=1e-6, rtol=0,
                                   err_msg=name)
    assert ours.stats[0] > 0
    boxes = evaluate_coco(g, load_detections(results, g), "bbox")
    assert not np.allclose(ours.stats, boxes.stats)  # masks, not boxes, were compared


# ------------------------------------------------------- many records: the first bad is named


DET_CORRUPTIONS = [
    ({"score": math.inf}, "expected a finite number 'score', got inf"),
    ({"score": True}, "expected a finite number 'score', got True"),
    ({"image_id": 10 ** 9}, "expected image_id of a ground-truth image"),
    ({"category_id": "3"}, "expected integer 'category_id', got '3'"),
    ({"bbox": [1.0, 2.0, 3.0]}, "expected bbox [x, y, width, height] of 4 numbers"),
    ({"bbox": [1.0, 2.0, 3.0, math.nan]}, "expected finite bbox numbers"),
    ({"bbox": [1.0, 2.0, 3.0, -0.5]}, "expected bbox height >= 0, got -0.5"),
    ({"bbox": [1.0, False, 3.0, 4.0]}, "expected bbox [x, y, width, height] of 4 numbers"),
    ({"bbox": [1.0, 2.0, 3.0, 10 ** 400]}, "expected finite bbox numbers"),
    ({"segmentation": [[1, 2, 3]]}, "expected a polygon with >= 3 points"),
]


@pytest.mark.parametrize("change, message", DET_CORRUPTIONS)
def test_first_bad_detection_among_many_is_named(change, message):
    """Whole-column checks must still name the first bad record, after records that only the
    record-by-record checks accept (NumPy numbers, a tuple box) and before other bad ones."""
    rng = np.random.default_rng(0)
    dets = _box_results(tiny_gt(), rng, n=300)
    dets[20] = {**dets[20], "score": np.float32(0.5), "bbox": (1, 2, 3, np.float64(4))}
    dets[40]["image_id"] = np.int64(dets[40]["image_id"])
    dets[200].update(change)
    dets[250]["score"] = math.nan  # a later bad record is not the one named
    dets[260]["bbox"] = [0.0, 0.0, -1.0, 1.0]
    image = dets[200]["image_id"] if "image_id" not in change else None
    where = f"detections[200] (image {image}): " if image else "detections[200] (image "
    with pytest.raises(DetectionError, match=re.escape(where) + ".*" + re.escape(message)):
        load_detections(dets, tiny_gt())
    del dets[250:]
    dets[200] = _det()
    out = load_detections(dets, tiny_gt())
    assert out[20]["area"] == np.float32(3) * np.float64(4)
    assert type(out[20]["area"]) is np.float64 and type(out[40]["image_id"]) is np.int64


def test_integer_and_float_boxes_keep_loadres_arithmetic():
    """Float boxes are done as arrays, others as Python numbers: both equal loadRes's."""
    dets = [_det(bbox=[0.1, 0.2, 0.7, 0.3]), _det(bbox=[1, 2, 3, 4]),
            _det(bbox=[1, 0.25, 3, 4.5]), _det(bbox=[2 ** 60 + 1, 1, 2 ** 60 + 3, 1])]
    out = load_detections(dets, tiny_gt())
    for d, o in zip(dets, out, strict=True):
        x, y, w, h = d["bbox"]
        assert o["segmentation"] == [[x, y, x, y + h, x + w, y + h, x + w, y]]
        assert [type(v) for v in o["segmentation"][0]] == [type(v) for v in (
            x, y, x, y + h, x + w, y + h, x + w, y)]
        assert o["area"] == w * h and type(o["area"]) is type(w * h)


GT_CORRUPTIONS = [
    ({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, math.nan]]},
     "expected finite polygon coordinates, got nan"),
    ({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0]]},
     "expected a polygon with >= 3 points (6 numbers) and an even count, got 5 numbers"),
    ({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, True]]},
     "expected segmentation[0] a polygon [x1, y1, x2, y2, ...] of numbers"),
    ({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "abc"]},
     "expected segmentation[1] a polygon"),
    ({"area": -1}, "expected 'area' >= 0, got -1"),
    ({"iscrowd": 1.0}, "expected iscrowd 0 or 1, got 1.0"),
    ({"bbox": [1, 2, 3, math.inf]}, "expected finite bbox numbers"),
    ({"category_id": 10 ** 6}, "expected category_id of a listed category"),
]


@pytest.mark.parametrize("change, message", GT_CORRUPTIONS)
def test_first_bad_annotation_among_many_is_named(tiny_coco_dir, change, message):
    raw = json.loads((tiny_coco_dir / "annotations" / "instances_val2017.json").read_text())
    anns = raw["annotations"]
    anns[5]["segmentation"] = [tuple(np.float32(v) for v in anns[5]["segmentation"][0])] \
        if isinstance(anns[5]["segmentation"], list) else anns[5]["segmentation"]
    anns[7]["iscrowd"] = False  # accepted, as 0
    anns[300].update(change)
    anns[350]["area"] = math.nan
    with pytest.raises(DetectionError, match=re.escape(f"annotations[300] (id {anns[300]['id']}"
                                                       f"): {message}")):
        load_coco(raw)
    del anns[300:]
    assert load_coco(raw)["annotations"] == anns
