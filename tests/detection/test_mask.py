"""Tests for foveal.detection.mask.

Oracle: pycocotools 2.0.11 (``pycocotools.mask``, the C ``maskApi``) — every result is compared
for exact equality: compressed counts strings character for character, areas, boxes and IoUs
bit for bit. On the real tiny_coco annotations, ``COCO.annToRLE`` is the oracle.
"""

import json
import re

import numpy as np
import pycocotools.mask as pm
import pytest
from pycocotools.coco import COCO

from foveal.detection.mask import (
    boxes_to_rle,
    polygons_to_rle,
    rle_area,
    rle_compress,
    rle_decode,
    rle_decompress,
    rle_encode,
    rle_iou,
    rle_merge,
    rle_to_bbox,
    segmentation_to_rle,
)
from foveal.errors import DetectionError

# pycocotools' Masks.__array__ predates NumPy 2's copy keyword
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def ref_encode(masks: np.ndarray) -> list[dict]:
    """pycocotools.mask.encode on (N, H, W) masks, counts as str."""
    out = pm.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": list(r["size"]), "counts": r["counts"].decode()} for r in out]


def ref_poly(polygons, h, w) -> str:
    return pm.merge(pm.frPyObjects(polygons, h, w))["counts"].decode()


def random_masks(rng, n, h, w, kind):
    if kind == "empty":
        return np.zeros((n, h, w), np.uint8)
    if kind == "full":
        return np.ones((n, h, w), np.uint8)
    if kind == "blobs":  # a few rectangles: long runs, runs that wrap columns
        m = np.zeros((n, h, w), np.uint8)
        for i in range(n):
            for _ in range(3):
                y0, x0 = rng.integers(0, h), rng.integers(0, w)
                m[i, y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = 1
        return m
    return (rng.random((n, h, w)) < rng.uniform(0.05, 0.95)).astype(np.uint8)


SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (5, 5), (13, 17), (31, 8), (64, 48)]


@pytest.mark.parametrize("h, w", SHAPES)
@pytest.mark.parametrize("kind", ["noise", "blobs", "empty", "full"])
def test_encode_decode_match_pycocotools(h, w, kind):
    rng = np.random.default_rng(h * 100 + w)
    masks = random_masks(rng, 4, h, w, kind)
    ours = rle_encode(masks)
    assert ours == ref_encode(masks)
    assert all(isinstance(r["counts"], str) for r in ours)
    assert rle_encode(masks[0]) == ours[0]  # (H, W) gives one dict
    np.testing.assert_array_equal(rle_decode(ours), masks)
    np.testing.assert_array_equal(rle_decode(ours[1]), pm.decode(ref_encode(masks)[1]))


def test_encode_empty_image_and_empty_batch():
    assert rle_encode(np.zeros((0, 5))) == ref_encode(np.zeros((1, 0, 5)))[0]
    assert rle_encode(np.zeros((0, 4, 4))) == []


def test_encode_treats_any_nonzero_value_as_foreground():
    m = np.array([[0, 2, 1], [1, 255, 0]], np.uint8)  # pycocotools would split 2|1 into runs
    assert rle_encode(m) == rle_encode(m != 0) == rle_encode(m.astype(float))


def test_compressed_counts_with_large_and_negative_deltas_match_pycocotools():
    m = np.zeros((1000, 1200), np.uint8)
    m[3:900, 5:1100] = 1
    m[950:, 1150:] = 1
    m[::97, ::89] ^= 1
    (ref,) = ref_encode(m[None])
    assert rle_encode(m) == ref
    unc = rle_decompress(ref)
    assert sum(unc["counts"]) == 1000 * 1200 and max(unc["counts"]) > 2**15
    assert pm.frPyObjects(unc, 1000, 1200)["counts"].decode() == ref["counts"]
    assert rle_compress(unc) == ref
    assert rle_compress({"size": ref["size"], "counts": ref["counts"].encode()}) == ref


def test_decompress_matches_pycocotools_runs_on_random_masks():
    rng = np.random.default_rng(1)
    for h, w in SHAPES:
        masks = random_masks(rng, 3, h, w, "noise")
        for ref, m in zip(ref_encode(masks), masks, strict=True):
            counts = rle_decompress(ref)["counts"]
            runs = np.diff(np.flatnonzero(np.diff(np.r_[2, m.T.ravel(), 2])))  # brute force
            assert counts == ([0] if m.T.ravel()[0] else []) + runs.tolist()


@pytest.mark.parametrize("kind", ["noise", "blobs"])
def test_area_bbox_merge_iou_match_pycocotools(kind):
    rng = np.random.default_rng(2)
    for h, w in [(1, 1), (3, 9), (20, 15), (40, 61)]:
        a = ref_encode(random_masks(rng, 5, h, w, kind))
        b = ref_encode(random_masks(rng, 4, h, w, kind))
        ref_a = [{**r, "counts": r["counts"].encode()} for r in a]
        np.testing.assert_array_equal(rle_area(a), pm.area(ref_a))
        assert rle_area(a).dtype == np.int64 and rle_area(a[0]) == pm.area(ref_a[0])
        np.testing.assert_array_equal(rle_to_bbox(a), pm.toBbox(ref_a))
        np.testing.assert_array_equal(rle_to_bbox(a[0]), pm.toBbox(ref_a[0]))
        for intersect in (False, True):
            for group in (a[:1], a[:2], a + b):
                want = pm.merge(group, intersect)["counts"].decode()
                assert rle_merge(group, intersect)["counts"] == want
        crowd = rng.random(len(b)) < 0.5
        got = rle_iou(a, b, crowd)
        assert got.dtype == np.float64 and got.shape == (5, 4)
        np.testing.assert_array_equal(got, pm.iou(a, b, crowd.astype(np.uint8)))


def test_iou_empty_sides_give_empty_matrix():
    (r,) = rle_encode(np.ones((1, 3, 3)))
    assert rle_iou([], [r], [False]).shape == (0, 1)
    assert rle_iou([r, r], [], []).shape == (2, 0)


def test_iou_crowd_divides_by_detection_area():
    gt = np.zeros((10, 10), np.uint8)
    gt[:, :5] = 1
    dt = np.zeros((10, 10), np.uint8)
    dt[:4, 3:7] = 1  # 16 pixels, 8 inside the crowd
    got = rle_iou([rle_encode(dt)], [rle_encode(gt)] * 2, [True, False])
    np.testing.assert_array_equal(got, [[8 / 16, 8 / (16 + 50 - 8)]])


def test_iou_of_masks_with_overlapping_boxes_but_no_common_pixel_is_zero():
    a = np.zeros((6, 6), np.uint8)
    b = np.zeros((6, 6), np.uint8)
    a[0, 0] = a[5, 5] = 1  # box covers everything
    b[2, 3] = 1
    assert rle_iou([rle_encode(a)], [rle_encode(b)], [False])[0, 0] == 0.0


def test_iou_on_many_masks_matches_pycocotools():
    rng = np.random.default_rng(3)
    a = ref_encode(random_masks(rng, 60, 48, 64, "blobs"))
    b = ref_encode(random_masks(rng, 25, 48, 64, "blobs"))
    crowd = rng.random(25) < 0.3
    np.testing.assert_array_equal(rle_iou(a, b, crowd), pm.iou(a, b, crowd.astype(np.uint8)))


def random_polygon(rng, kind):
    k = int(rng.integers(3, 12))
    if kind == "convex":
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = rng.uniform(2, 20)
        pts = np.c_[np.cos(ang), np.sin(ang)] * r + rng.uniform(0, 40, 2)
    elif kind == "concave":  # a star
        ang = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False)
        r = np.where(np.arange(2 * k) % 2, 4.0, 15.0)
        pts = np.c_[np.cos(ang), np.sin(ang)] * r[:, None] + 20
    elif kind == "self_intersecting":
        pts = rng.uniform(0, 40, (k, 2))
    elif kind == "outside":  # partly left of, above, right of and below the image
        pts = rng.uniform(-15, 60, (k, 2))
    elif kind == "tiny":
        pts = rng.uniform(0, 1.5, (k, 2)) + rng.uniform(0, 30, 2)
    else:  # "grid": half-pixel coordinates hit every rounding tie
        pts = np.round(rng.uniform(-2, 40, (k, 2)) * 2) / 2
    return pts.ravel().tolist()


@pytest.mark.parametrize("kind", ["convex", "concave", "self_intersecting", "outside", "tiny",
                                  "grid"])
def test_polygon_matches_pycocotools_frpoly(kind):
    rng = np.random.default_rng(len(kind))
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 45, 2))
        poly = random_polygon(rng, kind)
        assert polygons_to_rle([poly], h, w)["counts"] == ref_poly([poly], h, w), (poly, h, w)


def test_multi_polygon_union_matches_pycocotools_merge():
    rng = np.random.default_rng(5)
    for i in range(60):
        polys = [random_polygon(rng, ["convex", "outside", "tiny"][i % 3]) for _ in range(3)]
        assert polygons_to_rle(polys, 37, 41)["counts"] == ref_poly(polys, 37, 41)


def test_polygon_with_repeated_vertices_matches_pycocotools():
    poly = [5.0, 5.0, 5.0, 5.0, 20.0, 5.0, 20.0, 5.0, 12.0, 18.0, 5.0, 5.0]
    assert polygons_to_rle([poly], 25, 25)["counts"] == ref_poly([poly], 25, 25)


def test_empty_polygon_list_gives_empty_mask():
    assert polygons_to_rle([], 4, 5) == rle_encode(np.zeros((4, 5)))


def test_boxes_match_pycocotools_frbbox():
    rng = np.random.default_rng(6)
    boxes = np.c_[rng.uniform(-10, 50, (200, 2)), rng.uniform(0, 30, (200, 2))]
    boxes[::4] = np.round(boxes[::4])
    boxes[1::9, 2:] = 0  # zero-size boxes
    ours = boxes_to_rle(boxes, 41, 37)
    ref = pm.frPyObjects(boxes, 41, 37)
    assert [r["counts"] for r in ours] == [r["counts"].decode() for r in ref]
    m = rle_decode(boxes_to_rle([[2, 3, 4, 5]], 10, 10))[0]  # integer box = its pixels
    assert m.sum() == 20 and m[3:8, 2:6].all()


def test_segmentation_to_rle_equals_anntorle_on_tiny_coco(tiny_coco_dir):
    for split in ("train", "val"):
        path = tiny_coco_dir / "annotations" / f"instances_{split}2017.json"
        coco = COCO(str(path))
        data = json.loads(path.read_text())
        images = {im["id"]: im for im in data["images"]}
        kinds = set()
        for ann in data["annotations"]:
            im = images[ann["image_id"]]
            ours = segmentation_to_rle(ann["segmentation"], im["height"], im["width"])
            ref = coco.annToRLE(coco.anns[ann["id"]])
            ref_counts = ref["counts"] if isinstance(ref["counts"], str) else ref["counts"].decode()
            assert ours["counts"] == ref_counts and ours["size"] == list(ref["size"]), ann["id"]
            kinds.add(type(ann["segmentation"]).__name__)
        assert kinds == {"list", "dict"}  # polygons and crowd RLEs both exercised


def test_segmentation_to_rle_keeps_compressed_string():
    (r,) = ref_encode(np.eye(5, dtype=np.uint8)[None])
    assert segmentation_to_rle(r, 5, 5) == r
    assert segmentation_to_rle(rle_decompress(r), 5, 5) == r


@pytest.mark.parametrize("rle, message", [
    ({"size": [3], "counts": "9"}, "two non-negative integers"),
    ({"size": [3, 3.0], "counts": "9"}, "two non-negative integers"),
    ({"size": [3, 3], "counts": [4, 4]}, "summing to height*width = 3*3 = 9, got 8"),
    ({"size": [3, 3], "counts": "8"}, "summing to height*width"),
    ({"size": [3, 3], "counts": "9~"}, "'~' at position 1"),
    ({"size": [3, 3], "counts": "9 "}, "' ' at position 1"),
    ({"size": [3, 3], "counts": "9P"}, "truncated last value"),
    ({"size": [3, 3], "counts": [10, -1]}, "non-negative counts"),
    ({"size": [3, 3], "counts": [4.5, 4.5]}, "list of integers"),
    ({"size": [3, 3], "counts": None}, "string or a list of integers"),
    ({"counts": "9"}, "with 'size' and 'counts'"),
    ([9], "rles[0]: expected an RLE dict with 'size' and 'counts', got int"),
    ("9", "expected rles to be an RLE dict or a list of them, got str"),
])
def test_malformed_rle_raises_one_line(rle, message):
    with pytest.raises(DetectionError, match=re.escape(message)) as err:
        rle_area(rle)
    assert "\n" not in str(err.value)


def test_list_errors_name_the_element():
    good = rle_encode(np.ones((2, 2)))
    with pytest.raises(DetectionError, match=r"rles\[1\]: expected counts summing"):
        rle_decode([good, {"size": [2, 2], "counts": [1, 1]}])


@pytest.mark.parametrize("polygons, message", [
    ([[1, 2, 3, 4]], r"polygon\[0\]: expected a polygon with >= 3 points \(6 numbers\)"),
    ([[0, 0, 5, 0, 5, 5, 1]], "got 7 numbers"),
    ([[0, 0, 5, 0, 5, float("nan")]], "finite polygon coordinates"),
    ([[0, 0, 5, 0, "5", 5]], "flat list of numbers"),
    ([0, 0, 5, 0, 5, 5], "list of polygons"),
])
def test_bad_polygon_raises(polygons, message):
    with pytest.raises(DetectionError, match=message):
        polygons_to_rle(polygons, 10, 10)


def test_size_mismatch_raises():
    a, b = rle_encode(np.ones((2, 3))), rle_encode(np.ones((3, 2)))
    with pytest.raises(DetectionError, match="of one size"):
        rle_merge([a, b])
    with pytest.raises(DetectionError, match="of one size"):
        rle_iou([a], [b], [False])
    with pytest.raises(DetectionError, match=r"expected RLE size \[3, 2\] of the image"):
        segmentation_to_rle(a, 3, 2)
    with pytest.raises(DetectionError, match="one flag per gt"):
        rle_iou([a], [a], [False, True])
    with pytest.raises(DetectionError, match=r"shape \(N, 4\)"):
        boxes_to_rle([1, 2, 3, 4], 5, 5)


def test_mixed_compressed_bytes_and_uncompressed_inputs_in_one_call():
    rng = np.random.default_rng(7)
    masks = random_masks(rng, 6, 9, 11, "blobs")
    ref = ref_encode(masks)
    mixed = [ref[0], rle_decompress(ref[1]), {**ref[2], "counts": ref[2]["counts"].encode()},
             rle_decompress(ref[3]), ref[4], ref[5]]
    np.testing.assert_array_equal(rle_decode(mixed), masks)
    np.testing.assert_array_equal(rle_area(mixed), masks.sum((1, 2)))
    np.testing.assert_array_equal(rle_to_bbox(mixed), pm.toBbox(ref))
    crowd = [False, True, False, False, True, False]
    np.testing.assert_array_equal(rle_iou(mixed, mixed[::-1], crowd),
                                  pm.iou(ref, ref[::-1], np.array(crowd, np.uint8)))
    assert rle_merge(mixed)["counts"] == pm.merge(ref)["counts"].decode()
