"""Tests for foveal.detection.train.

Oracles: the run-folder contract (files present, JSON readable), bit-for-bit equality of a run
interrupted after its first epoch and resumed with one that was never interrupted, closed forms
for the data path (boxes scaled by S/W and S/H, crowd annotations dropped from the targets,
x ↦ W − x for flips), and pycocotools-compatible COCO evaluation (AP of the ground truth
itself is 1).
"""

import json

import numpy as np
import pytest
import torch

from foveal.data.shapes import generate_shapes, write_shapes_dataset
from foveal.detection import train as train_module
from foveal.detection.train import (
    DetectorTrainConfig,
    detection_data_from_coco,
    detections_to_coco,
    evaluate_detector,
    load_detection_data,
    load_detector,
    predict,
    train_detector,
)
from foveal.errors import CheckpointError, ConfigError, DataError, FovealError, TrainingError

TINY_MODEL = {"widths": [8, 8, 16, 16], "fpn_channels": 8, "representation_size": 16,
              "anchor_sizes": [[8], [16], [32], [64], [128]],
              "rpn": {"pre_nms_top_n_train": 50, "post_nms_top_n_train": 30,
                      "pre_nms_top_n_test": 50, "post_nms_top_n_test": 20},
              "roi_heads": {"batch_size_per_image": 16}}


def _shapes(n, seed):
    pixels, gt = generate_shapes(n, image_size=64, seed=seed, min_size=10, max_size=30,
                                 max_objects=3)
    return detection_data_from_coco(f"tiny/{seed}", gt, lambda rec: pixels[rec["id"] - 1], 64)


@pytest.fixture(scope="module")
def tiny_data():
    return _shapes(6, 0), _shapes(3, 1)


def _config(**changes):
    return DetectorTrainConfig(image_size=64, epochs=2, batch_size=3, warmup_steps=1,
                               eval_batch_size=3, model=TINY_MODEL).replace(**changes)


def test_run_folder_holds_checkpoints_metrics_and_report(tmp_path, tiny_data):
    run = train_detector(_config(), tmp_path / "run", train_data=tiny_data[0],
                         val_data=tiny_data[1], progress=False, log=lambda m: None)
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "checkpoint.safetensors", "model.safetensors", "metrics.json",
            "history.jsonl", "report.html", "plots"} <= names
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["ap50"] == run.evaluation.stats[1] and len(metrics["coco_stats"]) == 12
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert all(np.isfinite(r[k]) for r in metrics["history"]
               for k in ("loss", "loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                         "loss_box_reg"))
    model, spec = load_detector(tmp_path / "run")
    assert spec.classes == tiny_data[0].classes and spec.image_size == 64
    for a, b in zip(model.state_dict().values(), run.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(FovealError, match="already holds a run"):
        train_detector(_config(), tmp_path / "run", train_data=tiny_data[0],
                       val_data=tiny_data[1], progress=False, log=lambda m: None)


def test_resume_after_interruption_is_bit_identical(tmp_path, tiny_data, monkeypatch):
    full = train_detector(_config(), tmp_path / "full", train_data=tiny_data[0],
                          val_data=tiny_data[1], progress=False, log=lambda m: None)
    real_epoch = train_module._train_epoch

    def interrupted(model, optimizer, scheduler, data, config, epoch, progress):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(model, optimizer, scheduler, data, config, epoch, progress)

    monkeypatch.setattr(train_module, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_detector(_config(), tmp_path / "cut", train_data=tiny_data[0],
                       val_data=tiny_data[1], progress=False, log=lambda m: None)
    monkeypatch.setattr(train_module, "_train_epoch", real_epoch)
    resumed = train_detector(_config(), tmp_path / "cut", resume=True, train_data=tiny_data[0],
                             val_data=tiny_data[1], progress=False, log=lambda m: None)
    for (name, a), b in zip(full.model.state_dict().items(),
                            resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    strip = ("train_time_s", "images_per_s", "eval_time_s", "elapsed_s")
    assert [{k: v for k, v in r.items() if k not in strip} for r in full.history] == \
        [{k: v for k, v in r.items() if k not in strip} for r in resumed.history]
    with pytest.raises(CheckpointError, match="other settings"):
        train_detector(_config(lr=0.5), tmp_path / "cut", resume=True,
                       train_data=tiny_data[0], val_data=tiny_data[1], progress=False)


def test_boxes_are_scaled_and_crowd_annotations_are_not_targets():
    pixels, gt = generate_shapes(2, image_size=64, seed=0, min_size=10, max_size=30)
    gt["annotations"][0]["iscrowd"] = 1
    data = detection_data_from_coco("s", gt, lambda rec: pixels[rec["id"] - 1], 32)
    assert data.images.shape == (2, 3, 32, 32)
    first = [a for a in gt["annotations"] if a["image_id"] == 1]
    assert len(data.targets[0]["boxes"]) == len(first) - 1
    x, y, w, h = first[1]["bbox"]
    torch.testing.assert_close(data.targets[0]["boxes"][0],
                               torch.tensor([x, y, x + w, y + h], dtype=torch.float32) / 2)
    assert data.ground_truth["annotations"][0]["iscrowd"] == 1  # kept for the evaluation


def test_ground_truth_as_detections_scores_ap_one():
    data = _shapes(4, 2)
    truth = [{**t, "scores": torch.ones(len(t["labels"]))} for t in data.targets]
    evaluation = evaluate_detector(None, data, detections=truth)
    assert evaluation.stats[0] == pytest.approx(1.0) and evaluation.stats[1] == pytest.approx(1.0)
    records = detections_to_coco(truth, data.image_ids, data.category_ids, data.scales)
    assert records[0]["bbox"] == pytest.approx(data.ground_truth["annotations"][0]["bbox"],
                                               abs=1e-4)


def test_flip_mirrors_boxes():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.uint8).view(2, 3, 4, 6)
    targets = [{"boxes": torch.tensor([[1.0, 0, 3, 2]]), "labels": torch.tensor([1])}] * 2
    out, flipped = train_module._flip(images, targets, torch.tensor([True, False]))
    assert torch.equal(out[0], images[0].flip(-1)) and torch.equal(out[1], images[1])
    assert flipped[0]["boxes"].tolist() == [[3.0, 0, 5, 2]]
    assert flipped[1]["boxes"].tolist() == [[1.0, 0, 3, 2]]


def test_dataset_folder_holds_out_the_last_images(tmp_path):
    write_shapes_dataset(tmp_path / "ds", 10, image_size=64, min_size=10, max_size=30)
    train = load_detection_data(tmp_path / "ds", "train", image_size=64)
    val = load_detection_data(tmp_path / "ds", "val", image_size=64)
    whole = load_detection_data(tmp_path / "ds" / "annotations.json", "all", image_size=64)
    assert (len(train), len(val), len(whole)) == (9, 1, 10)
    assert val.image_ids == [10] and [im["id"] for im in val.ground_truth["images"]] == [10]
    assert torch.equal(whole.images[9], val.images[0])


def test_tiny_coco_val_split_loads_resized(tiny_coco_dir):
    data = load_detection_data(tiny_coco_dir, "val", image_size=64)
    assert data.images.shape[1:] == (3, 64, 64) and len(data) == len(data.image_ids)
    assert len(data.classes) == 80
    record = next(r for r in data.ground_truth["images"] if r["id"] == data.image_ids[0])
    assert data.scales[0] == pytest.approx((64 / record["width"], 64 / record["height"]))
    labels = torch.cat([t["labels"] for t in data.targets])
    assert labels.min() >= 1 and labels.max() <= 80


class _FixedBoxModel(torch.nn.Module):
    """Stands in for the detector: one box at (8, 8, 32, 32) in the resized image."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def normalize(self, images):
        return images.float()

    def forward(self, images):
        self.seen = tuple(images.shape)
        return [{"boxes": torch.tensor([[8.0, 8, 32, 32]]), "labels": torch.tensor([1]),
                 "scores": torch.tensor([0.9])} for _ in images]


def test_predict_rescales_boxes_to_each_image():
    model = _FixedBoxModel()
    tall = np.zeros((128, 64, 3), np.uint8)
    square = np.zeros((64, 64, 3), np.uint8)
    dets = predict(model, [tall, square], image_size=64)
    assert model.seen == (2, 3, 64, 64)
    assert dets[0]["boxes"].tolist() == [[8.0, 16, 32, 64]]  # (sx, sy) = (1, 0.5)
    assert dets[1]["boxes"].tolist() == [[8.0, 8, 32, 32]]
    assert predict(model, [square], score_threshold=0.95)[0]["boxes"].shape == (0, 4)


def test_bad_data_raises_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_detection_data(tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"annotations\.json"):
        load_detection_data(tmp_path / "empty", "train")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="unreadable JSON"):
        load_detection_data(bad, "all")
    _, gt = generate_shapes(2, image_size=64)
    (tmp_path / "noimg.json").write_text(json.dumps(gt))
    with pytest.raises(DataError, match="expected its images"):
        load_detection_data(tmp_path / "noimg.json", "all")
    with pytest.raises(ConfigError, match="expected split"):
        load_detection_data("shapes", "test")
    with pytest.raises(ConfigError, match="expected batch_size >= 1"):
        DetectorTrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="unknown detector training settings"):
        DetectorTrainConfig.from_json({"epochz": 3})


def test_non_finite_loss_stops_the_run_with_training_error(tmp_path, tiny_data, monkeypatch):
    def nan_losses(self, images, targets=None):
        zero = self.roi_heads.predictor.cls_score.bias.sum() * 0
        return {"loss_objectness": zero + float("nan"), "loss_rpn_box_reg": zero,
                "loss_classifier": zero, "loss_box_reg": zero}

    monkeypatch.setattr(train_module.FasterRCNN, "forward", nan_losses)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, step 1"):
        train_detector(_config(), tmp_path / "run", train_data=tiny_data[0],
                       val_data=tiny_data[1], progress=False, log=lambda m: None)
