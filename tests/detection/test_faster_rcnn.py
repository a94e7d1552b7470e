"""Tests for foveal.detection.faster_rcnn.

Oracles: the loss contract of Ren et al. 2015 (four finite losses in training, per-image
detections in eval), torch autograd (gradients reach the first backbone convolution), and the
COCO evaluator (foveal.detection.coco_eval, checked against pycocotools in its own tests) on a
single synthetic-shapes image the detector must learn to find (slow: overfitting takes a minute).
"""

import pytest
import torch

from foveal.detection.faster_rcnn import LOSS_NAMES, FasterRCNN, FasterRCNNConfig
from foveal.detection.roi_heads import RoIHeadsConfig
from foveal.detection.rpn import RPNConfig
from foveal.errors import DetectionError

TINY = dict(widths=(8, 16, 16, 32), fpn_channels=16, representation_size=32,
            rpn=RPNConfig(pre_nms_top_n_train=100, post_nms_top_n_train=50,
                          pre_nms_top_n_test=100, post_nms_top_n_test=20),
            roi_heads=RoIHeadsConfig(batch_size_per_image=32))


def _targets():
    return [{"boxes": torch.tensor([[4.0, 6, 30, 28], [40, 30, 60, 62]]),
             "labels": torch.tensor([1, 2])},
            {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]


def test_training_returns_the_four_finite_losses_and_gradients_reach_the_backbone():
    torch.manual_seed(0)
    model = FasterRCNN(FasterRCNNConfig(num_classes=2, **TINY)).train()
    losses = model(torch.randn(2, 3, 64, 64), _targets())
    assert tuple(losses) == LOSS_NAMES
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    stem = model.backbone.body.stem[0].weight.grad
    assert stem is not None and stem.abs().sum() > 0
    assert model.rpn.head.cls_logits.weight.grad.abs().sum() > 0
    assert model.roi_heads.predictor.bbox_pred.weight.grad.abs().sum() > 0


def test_eval_returns_one_detection_dict_per_image():
    torch.manual_seed(0)
    model = FasterRCNN(FasterRCNNConfig(num_classes=3, **TINY)).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 48))
    assert len(out) == 3
    for det in out:
        assert set(det) == {"boxes", "labels", "scores"}
        assert det["boxes"].shape[1] == 4 and len(det["labels"]) == len(det["scores"])
        assert ((det["labels"] >= 1) & (det["labels"] <= 3)).all()
        assert (det["boxes"][:, 2] <= 48).all() and (det["boxes"][:, 3] <= 64).all()


def test_config_json_round_trip():
    config = FasterRCNNConfig(num_classes=5, **TINY)
    assert FasterRCNNConfig.from_json(config.to_json()) == config


def test_bad_input_raises_one_line_errors():
    model = FasterRCNN(FasterRCNNConfig(num_classes=2, **TINY))
    with pytest.raises(DetectionError, match="expected targets in training mode"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(DetectionError, match="normalised float images"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), _targets()[:1])
    with pytest.raises(DetectionError, match=r"targets\[0\]: expected boxes with x2 > x1"):
        model(torch.randn(1, 3, 32, 32), [{"boxes": torch.tensor([[5.0, 5, 5, 9]]),
                                           "labels": torch.tensor([1])}])
    with pytest.raises(DetectionError, match="one target per image"):
        model(torch.randn(2, 3, 32, 32), _targets()[:1])
    with pytest.raises(DetectionError, match="num_classes"):
        FasterRCNN(FasterRCNNConfig(num_classes=0))


@pytest.mark.slow
def test_overfits_one_shapes_image_to_high_ap():
    from foveal.data.shapes import generate_shapes
    from foveal.detection.train import detection_data_from_coco, evaluate_detector

    torch.manual_seed(0)
    pixels, gt = generate_shapes(1, seed=3, min_objects=3, max_objects=3)
    data = detection_data_from_coco("one", gt, lambda rec: pixels[rec["id"] - 1], 128)
    model = FasterRCNN(FasterRCNNConfig(num_classes=len(data.classes)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    x = model.normalize(data.images)
    for _ in range(60):
        model.train()
        loss = sum(model(x.repeat(2, 1, 1, 1), data.targets * 2).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert evaluate_detector(model, data).stats[1] > 0.9
