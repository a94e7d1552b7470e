"""Tests for foveal.data.shapes.

Oracles: pycocotools (``mask.decode`` / ``toBbox`` / ``area`` of every annotation's RLE against
the generator's per-pixel instance map, and ``pycocotools.coco.COCO`` loading the ground truth),
a brute-force per-pixel Python loop (even-odd ray casting on each shape's outline, the ellipse
equation) for the rasteriser, PIL for the written PNGs, and re-generation for determinism.
"""

import json
import math

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image
from pycocotools.coco import COCO

from foveal.data import shapes
from foveal.data.shapes import SHAPE_CLASSES, generate_shapes, write_shapes_dataset
from foveal.errors import DataError

# pycocotools' C extension predates NumPy 2's __array__(copy=...) protocol
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def dataset():
    """60 default images with their instance maps (shared: generation is the slow part)."""
    return generate_shapes(60, seed=7, return_instance_map=True)


def as_pycocotools_rle(rle):
    return {"size": rle["size"], "counts": rle["counts"].encode()}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_arrays_and_ground_truth():
    a_images, a_gt = generate_shapes(6, seed=3)
    b_images, b_gt = generate_shapes(6, seed=3)
    assert a_images.tobytes() == b_images.tobytes()
    assert json.dumps(a_gt, sort_keys=True) == json.dumps(b_gt, sort_keys=True)
    c_images, _ = generate_shapes(6, seed=4)
    assert not np.array_equal(a_images, c_images)


def test_larger_n_extends_smaller_n():
    small_images, small_gt = generate_shapes(3, seed=5)
    big_images, big_gt = generate_shapes(6, seed=5)
    np.testing.assert_array_equal(big_images[:3], small_images)
    assert big_gt["annotations"][: len(small_gt["annotations"])] == small_gt["annotations"]


# --------------------------------------------------------------------------- annotations


def test_annotations_equal_pycocotools_decode_bbox_and_area_of_visible_pixels(dataset):
    images, gt, instance_map = dataset
    assert images.shape == (60, 128, 128, 3) and images.dtype == np.uint8
    assert instance_map.shape == (60, 128, 128)
    anns = gt["annotations"]
    assert [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    # every pixel of the map that shows an object belongs to exactly one annotation
    assert set(np.unique(instance_map)) == {0, *(a["id"] for a in anns)}
    for ann in anns:
        rle = as_pycocotools_rle(ann["segmentation"])
        visible = instance_map[ann["image_id"] - 1] == ann["id"]
        np.testing.assert_array_equal(mask_utils.decode(rle), visible.astype(np.uint8))
        assert ann["bbox"] == mask_utils.toBbox(rle).tolist()
        assert ann["area"] == int(mask_utils.area(rle)) == int(visible.sum())
        assert ann["iscrowd"] == 0
        assert 1 <= ann["category_id"] <= len(SHAPE_CLASSES)
        assert set(ann) == {"id", "image_id", "category_id", "bbox", "area", "segmentation",
                            "iscrowd"}


def test_bbox_is_inclusive_pixel_extent_plus_one():
    """The pitfall: a one-pixel-wide visible region has width 1, not x1 − x0 = 0."""
    _, gt, instance_map = generate_shapes(10, seed=1, return_instance_map=True)
    for ann in gt["annotations"]:
        ys, xs = np.nonzero(instance_map[ann["image_id"] - 1] == ann["id"])
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                               ys.max() - ys.min() + 1]


def test_images_categories_and_info_records(dataset):
    _, gt, _ = dataset
    assert gt["images"][0] == {"id": 1, "file_name": "000001.png", "height": 128, "width": 128}
    assert [i["id"] for i in gt["images"]] == list(range(1, 61))
    assert [c["name"] for c in gt["categories"]] == list(SHAPE_CLASSES)
    assert [c["id"] for c in gt["categories"]] == list(range(1, len(SHAPE_CLASSES) + 1))
    assert {c["supercategory"] for c in gt["categories"]} == {"shape"}
    assert gt["info"]["seed"] == 7 and gt["info"]["n"] == 60


def test_ground_truth_loads_with_pycocotools_coco(dataset, tmp_path):
    _, gt, instance_map = dataset
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == list(range(1, 61))
    assert sorted(coco.getCatIds()) == list(range(1, len(SHAPE_CLASSES) + 1))
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[1, 2, 3])):
        np.testing.assert_array_equal(coco.annToMask(ann),
                                      instance_map[ann["image_id"] - 1] == ann["id"])


def test_ground_truth_passes_foveal_load_coco_validation(dataset):
    from foveal.detection.coco import load_coco

    _, gt, _ = dataset
    assert len(load_coco(gt)["annotations"]) == len(gt["annotations"])


def test_every_class_appears_in_many_images():
    _, gt = generate_shapes(150, seed=11)
    images_with = {c: set() for c in range(1, len(SHAPE_CLASSES) + 1)}
    for ann in gt["annotations"]:
        images_with[ann["category_id"]].add(ann["image_id"])
    # 150 images × 3 objects on average / 7 classes ≈ 64 objects per class
    assert min(len(s) for s in images_with.values()) >= 30, {
        SHAPE_CLASSES[c - 1]: len(s) for c, s in images_with.items()}


def test_object_count_stays_in_range():
    _, gt = generate_shapes(40, seed=2, min_objects=2, max_objects=3)
    per_image = np.bincount([a["image_id"] for a in gt["annotations"]], minlength=41)[1:]
    assert per_image.max() <= 3 and per_image.min() >= 1
    assert (per_image >= 2).mean() > 0.9  # an object is left out only after 20 rejected tries


def test_zero_objects_allowed_gives_some_empty_images():
    _, gt = generate_shapes(30, seed=0, min_objects=0, max_objects=1)
    used = {a["image_id"] for a in gt["annotations"]}
    assert 0 < len(used) < 30


# --------------------------------------------------------------------------- occlusion


def render(seed, index, **kwargs):
    p = shapes._check_params(1, 128, seed, kwargs.get("min_objects", 1),
                             kwargs.get("max_objects", 5), 12, None,
                             kwargs.get("min_visible", 0.5), 6)
    return shapes._render_image(shapes._image_rng(seed, index), p)


@pytest.mark.parametrize("min_visible", [0.5, 0.8])
def test_every_object_keeps_min_visible_fraction_of_its_area(min_visible):
    occluded = 0
    for index in range(40):
        _, instance, category_ids, areas = render(0, index, max_objects=8,
                                                  min_visible=min_visible)
        visible = np.bincount(instance.ravel(), minlength=len(areas) + 1)[1:]
        assert len(visible) == len(category_ids) == len(areas)
        assert np.all(visible >= min_visible * np.asarray(areas))
        occluded += int(np.sum(visible < np.asarray(areas)))
    assert occluded > 0  # the rule was exercised, not vacuous


def test_min_visible_one_means_no_overlap():
    for index in range(20):
        _, instance, _, areas = render(1, index, max_objects=6, min_visible=1.0)
        np.testing.assert_array_equal(np.bincount(instance.ravel(), minlength=len(areas) + 1)[1:],
                                      areas)


def test_render_matches_public_generator():
    images, gt, instance_map = generate_shapes(3, seed=9, return_instance_map=True)
    for index in range(3):
        image, instance, category_ids, _ = render(9, index)
        np.testing.assert_array_equal(images[index], image)
        ids = [a["id"] for a in gt["annotations"] if a["image_id"] == index + 1]
        assert [a["category_id"] for a in gt["annotations"] if a["image_id"] == index + 1] \
            == category_ids
        lookup = np.array([0, *ids])
        np.testing.assert_array_equal(instance_map[index], lookup[instance])


def test_objects_contrast_with_their_surroundings(dataset):
    """Each object's mean colour differs from the mean colour of the ring of pixels around it."""
    images, gt, instance_map = dataset
    distances = []
    for ann in gt["annotations"]:
        image, ids = images[ann["image_id"] - 1].astype(float), instance_map[ann["image_id"] - 1]
        inside = ids == ann["id"]
        grown = inside.copy()
        for axis in (0, 1):
            for shift in (-2, -1, 1, 2):
                grown |= np.roll(inside, shift, axis=axis)
        ring = grown & ~inside
        if ring.sum() < 10:
            continue
        distances.append(np.linalg.norm(image[inside].mean(0) - image[ring].mean(0)))
    distances = np.asarray(distances)
    assert len(distances) > 100
    assert np.median(distances) > 120 and distances.min() > 60, np.sort(distances)[:10]


def test_objects_lie_inside_the_image_and_respect_the_size_range():
    _, gt = generate_shapes(30, seed=4, min_size=20, max_size=30, min_visible=1.0)
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
        assert max(w, h) <= 31  # diameter 30 at most (+1 for the inclusive pixel extent)
        assert max(w, h) >= 20 * 0.5  # a triangle or ellipse is narrower than its circle


# --------------------------------------------------------------------------- rasteriser


def brute_force_inside(parts, x, y):
    """Even-odd ray casting on each polygon part, the implicit equation for ellipses."""
    for kind, geometry in parts:
        if kind == "ellipse":
            cx, cy, a, b, theta = geometry
            u = math.cos(theta) * (x - cx) + math.sin(theta) * (y - cy)
            v = math.cos(theta) * (y - cy) - math.sin(theta) * (x - cx)
            if (u / a) ** 2 + (v / b) ** 2 <= 1:
                return True
            continue
        for polygon in geometry:
            inside = False
            pts = [tuple(map(float, p)) for p in polygon]
            for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1], strict=True):
                if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
            if inside:
                return True
    return False


def star_outline(parts):
    """The star's 10-vertex non-convex outline, rebuilt from its tip triangles
    (inner vertex, tip, next inner vertex)."""
    (_, triangles), = (part for part in parts if part[1].shape[0] == 5)
    return [("polygons", triangles[:, :2].reshape(1, 10, 2))]


@pytest.mark.parametrize("name", SHAPE_CLASSES)
def test_rasterize_matches_brute_force_ray_casting(name):
    rng = np.random.default_rng(0)
    for _ in range(3):
        cx, cy, r, theta = 20 + rng.random(), 20 + rng.random(), rng.uniform(6, 18), rng.random()
        parts = shapes._shape_parts(name, cx, cy, r, 2 * math.pi * theta, rng)
        xs, ys = np.arange(40)[None, :] + 0.5, np.arange(40)[:, None] + 0.5
        mask = shapes._rasterize(parts, xs, ys)
        oracle_parts = star_outline(parts) if name == "star" else parts
        expected = np.array([[brute_force_inside(oracle_parts, x + 0.5, y + 0.5)
                              for x in range(40)] for y in range(40)])
        np.testing.assert_array_equal(mask, expected)
        assert mask.sum() > 0.15 * math.pi * r * r  # not degenerate


# --------------------------------------------------------------------------- files


def test_written_files_round_trip(tmp_path):
    images, gt = generate_shapes(4, seed=6)
    path = write_shapes_dataset(tmp_path / "ds", 4, seed=6)
    assert path == tmp_path / "ds" / "annotations.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(gt))
    for record, image in zip(gt["images"], images, strict=True):
        with Image.open(tmp_path / "ds" / "images" / record["file_name"]) as png:
            assert png.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(png), image)
    assert not list((tmp_path / "ds").rglob("*.tmp"))


def test_written_bytes_are_identical_for_the_same_seed(tmp_path):
    a = write_shapes_dataset(tmp_path / "a", 3, seed=2, image_size=64).parent
    b = write_shapes_dataset(tmp_path / "b", 3, seed=2, image_size=64).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 4
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_write_into_a_file_path_raises(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(DataError, match="expected an output directory"):
        write_shapes_dataset(target, 1)


# --------------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "expected n >= 1, got 0"),
    ({"n": 2.5}, "expected n to be an integer, got float 2.5"),
    ({"n": True}, "expected n to be an integer"),
    ({"image_size": 16}, "expected image_size >= 32, got 16"),
    ({"seed": -1}, "expected seed >= 0, got -1"),
    ({"min_objects": -1}, "expected min_objects >= 0, got -1"),
    ({"min_objects": 4, "max_objects": 3}, r"expected max_objects in \[4, 1000\], got 3"),
    ({"max_objects": 0}, r"expected max_objects in \[1, 1000\], got 0"),
    ({"min_size": 4}, "expected 8 <= min_size <= max_size"),
    ({"min_size": 40, "max_size": 30}, "got min_size 40 and max_size 30"),
    ({"image_size": 48, "max_size": 56}, r"<= image_size \(48\)"),
    ({"max_size": float("nan")}, "expected max_size to be a finite number, got nan"),
    ({"min_visible": 0}, r"expected min_visible in \(0, 1\], got 0"),
    ({"min_visible": 1.5}, r"expected min_visible in \(0, 1\], got 1.5"),
    ({"noise": -1}, r"expected noise in \[0, 127\], got -1"),
])
def test_bad_parameters_raise_one_line_data_error(kwargs, message):
    kwargs = {"n": 1, **kwargs}
    n = kwargs.pop("n")
    for call in (lambda: generate_shapes(n, **kwargs),
                 lambda: write_shapes_dataset("/nonexistent/never-written", n, **kwargs)):
        with pytest.raises(DataError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_small_images_get_a_fitting_default_max_size():
    images, gt = generate_shapes(3, image_size=32)
    assert images.shape == (3, 32, 32, 3)
    assert gt["info"]["max_size"] == 32
