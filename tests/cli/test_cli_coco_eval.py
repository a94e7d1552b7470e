"""`foveal coco-eval` from the command line: the printed summary equals pycocotools' COCOeval
``summarize()`` output, the JSON and report outputs exist, and malformed input gives a one-line
error with exit status 2."""

import contextlib
import io
import json

import numpy as np
import pytest

from foveal.cli.main import main
from foveal.detection.coco_eval import STAT_NAMES

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def files(tmp_path, tiny_coco_dir, n_images=10, polygons=False):
    """A ground truth of the first ``n_images`` val2017 images and jittered box results (with
    the boxes as polygon segmentations when ``polygons``)."""
    with open(tiny_coco_dir / "annotations" / "instances_val2017.json") as f:
        gt = json.load(f)
    keep = {im["id"] for im in gt["images"][:n_images]}
    gt = {**gt, "images": [im for im in gt["images"] if im["id"] in keep],
          "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}
    rng = np.random.default_rng(0)
    dets = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        j = rng.normal(0, 0.08, 4)
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [x + j[0] * w, y + j[1] * h, w * (1 + j[2]), h * (1 + j[3])],
                     "score": float(rng.random())})
        if polygons:
            bx, by, bw, bh = dets[-1]["bbox"]
            dets[-1]["segmentation"] = [[bx, by, bx + bw, by, bx + bw, by + bh, bx, by + bh]]
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dets))
    return gt_path, dt_path


def reference_summary(gt_path, dt_path, iou_type="bbox"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(str(dt_path)), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        start = out.tell()
        evaluator.summarize()
    return out.getvalue()[start:], evaluator.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_eval_prints_cocoeval_summary(tmp_path, tiny_coco_dir, capsys, iou_type):
    gt_path, dt_path = files(tmp_path, tiny_coco_dir, polygons=iou_type == "segm")
    code = main(["coco-eval", str(gt_path), str(dt_path), "--iou-type", iou_type,
                 "--json", str(tmp_path / "m.json")])
    out = capsys.readouterr().out
    assert code == 0
    expected, stats = reference_summary(gt_path, dt_path, iou_type)
    assert out.startswith(expected)
    metrics = json.loads((tmp_path / "m.json").read_text())
    ours = [metrics["stats"][name] for name in STAT_NAMES]  # the file's keys are sorted
    np.testing.assert_allclose(ours, stats, atol=1e-6, rtol=0)


def test_coco_eval_writes_report(tmp_path, tiny_coco_dir, capsys):
    gt_path, dt_path = files(tmp_path, tiny_coco_dir, n_images=5)
    code = main(["coco-eval", str(gt_path), str(dt_path), "--out", str(tmp_path / "rep")])
    assert code == 0, capsys.readouterr().err
    for name in ("metrics.json", "report.html", "plots/pr_curves.png", "plots/pr_per_class.png"):
        assert (tmp_path / "rep" / name).is_file(), name
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "data:image/png;base64," in html and "Average Precision" in html


def run_error(args, capsys):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("foveal: error: ") and err.count("\n") == 1, err
    return err


def test_missing_ground_truth_file(tmp_path, capsys):
    (tmp_path / "dt.json").write_text("[]")
    err = run_error(["coco-eval", tmp_path / "nope.json", tmp_path / "dt.json"], capsys)
    assert "nope.json" in err


def test_malformed_detections(tmp_path, tiny_coco_dir, capsys):
    gt_path, dt_path = files(tmp_path, tiny_coco_dir, n_images=3)
    dets = json.loads(dt_path.read_text())
    dets[1]["bbox"] = [0, 0, -3]
    dt_path.write_text(json.dumps(dets))
    err = run_error(["coco-eval", gt_path, dt_path], capsys)
    assert "detections[1]" in err
    dt_path.write_text("{not json")
    run_error(["coco-eval", gt_path, dt_path], capsys)
    dt_path.write_text(json.dumps([{**dets[0], "image_id": 999999999}]))
    err = run_error(["coco-eval", gt_path, dt_path], capsys)
    assert "999999999" in err


def test_segm_result_without_box_or_segmentation_is_an_error(tmp_path, tiny_coco_dir, capsys):
    # box-only results are valid for segm (evaluated as box polygons, as COCO.loadRes);
    # a result with neither a box nor a segmentation is not
    gt_path, dt_path = files(tmp_path, tiny_coco_dir, n_images=3)
    dets = json.loads(dt_path.read_text())
    del dets[1]["bbox"]
    dt_path.write_text(json.dumps(dets))
    err = run_error(["coco-eval", gt_path, dt_path, "--iou-type", "segm"], capsys)
    assert "[1]" in err
