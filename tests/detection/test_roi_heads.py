"""Tests for foveal.detection.roi_heads.

Oracles: a brute-force Python loop for the RoI labels (Fast R-CNN Sec. 2.3: IoU ≥ 0.5 takes the
ground truth's class, below is background), the loss written out by hand (cross-entropy and
smooth L1 on the true class's deltas), and a closed form for post-processing (zero deltas give
back the proposals; softmax scores; per-class NMS).
"""

import math

import torch

from foveal.detection.boxes import encode_boxes
from foveal.detection.roi_heads import (
    BOX_WEIGHTS,
    RoIHeads,
    RoIHeadsConfig,
    fastrcnn_loss,
    postprocess_detections,
    roi_targets,
)


def _iou(p, q):
    w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    inter = w * h
    return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)


def test_roi_targets_match_brute_force_loop():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(80, 2, generator=g) * 40
    proposals = torch.cat([xy, xy + 5 + torch.rand(80, 2, generator=g) * 25], 1)
    gts = torch.tensor([[5.0, 5, 25, 30], [30, 20, 60, 50]])
    gt_labels = torch.tensor([3, 1])
    labels, matched = roi_targets(proposals, gts, gt_labels)
    for p, (lab, box) in enumerate(zip(labels.tolist(), matched, strict=True)):
        ious = [_iou(proposals[p].tolist(), g.tolist()) for g in gts]
        best = max(ious)
        if best >= 0.5:
            assert lab == gt_labels[ious.index(best)]
            assert box.tolist() == gts[ious.index(best)].tolist()
        else:
            assert lab == 0


def test_fastrcnn_loss_equals_hand_written_formula():
    torch.manual_seed(0)
    logits, regression = torch.randn(5, 4), torch.randn(5, 16)
    labels = torch.tensor([0, 2, 0, 3, 1])
    targets = torch.randn(5, 4)
    loss_cls, loss_box = fastrcnn_loss(logits, regression, labels, targets)
    ce = -sum(math.log(torch.softmax(logits[r], 0)[labels[r]].item()) for r in range(5)) / 5
    beta, smooth = 1 / 9, 0.0
    for r in range(5):
        k = int(labels[r])
        if k > 0:
            for d in (regression[r, 4 * k:4 * k + 4] - targets[r]).tolist():
                smooth += 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta
    assert math.isclose(loss_cls.item(), ce, rel_tol=1e-5)
    assert math.isclose(loss_box.item(), smooth / 5, rel_tol=1e-5)


def test_postprocess_zero_deltas_return_the_proposals_with_softmax_scores():
    proposals = [torch.tensor([[10.0, 10, 30, 30], [50, 50, 70, 90]])]
    logits = torch.tensor([[0.0, 3.0, 0.0], [0.0, 0.0, 4.0]])
    dets = postprocess_detections(logits, torch.zeros(2, 12), proposals, (100, 100),
                                  score_thresh=0.3)
    probs = torch.softmax(logits, 1)
    assert dets[0]["labels"].tolist() == [2, 1]
    torch.testing.assert_close(dets[0]["scores"], torch.stack([probs[1, 2], probs[0, 1]]))
    torch.testing.assert_close(dets[0]["boxes"], proposals[0].flip(0))


def test_postprocess_nms_is_per_class_and_boxes_are_clipped():
    proposals = [torch.tensor([[10.0, 10, 30, 30], [11, 11, 31, 31], [90, 90, 130, 120]])]
    logits = torch.tensor([[0.0, 5.0, 5.0], [0.0, 4.0, -9.0], [0.0, 6.0, -9.0]])
    dets = postprocess_detections(logits, torch.zeros(3, 12), proposals, (100, 110))
    boxes, labels = dets[0]["boxes"], dets[0]["labels"]
    # class 1: proposal 0 (score 0.50) overlaps proposal 1 (0.98) with IoU 0.82 and goes;
    # class 2 keeps proposal 0; the clipped third box wins with 0.998
    assert labels.tolist() == [1, 1, 2]
    assert boxes.tolist() == [[90.0, 90, 110, 100], [11, 11, 31, 31], [10, 10, 30, 30]]


def test_training_samples_include_ground_truth_and_regress_to_it():
    torch.manual_seed(0)
    heads = RoIHeads(4, num_classes=2, representation_size=16,
                     config=RoIHeadsConfig(batch_size_per_image=8, positive_fraction=0.5))
    gt = {"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([2])}
    far = torch.tensor([[50.0, 50, 60, 60], [0, 50, 10, 60]])
    rois, labels, regression = heads.sample([far], [gt])
    # only the added ground truth can be foreground; its own target is zero
    assert labels.tolist().count(2) == 1 and labels.tolist().count(0) == 2
    torch.testing.assert_close(regression[labels == 2], torch.zeros(1, 4))
    torch.testing.assert_close(encode_boxes(gt["boxes"], rois[0][labels == 2], BOX_WEIGHTS),
                               torch.zeros(1, 4))


def test_roi_heads_forward_train_and_eval():
    torch.manual_seed(0)
    heads = RoIHeads(4, num_classes=3, representation_size=16)
    features = [torch.randn(2, 4, 16 // 2**i, 16 // 2**i) for i in range(4)]
    proposals = [torch.tensor([[1.0, 1, 30, 30], [20, 20, 60, 50]]), torch.zeros(0, 4)]
    targets = [{"boxes": torch.tensor([[2.0, 2, 28, 31]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    _, losses = heads(features, proposals, (64, 64), targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    heads.eval()
    dets, losses = heads(features, proposals, (64, 64))
    assert losses == {} and len(dets) == 2 and len(dets[1]["boxes"]) == 0
    assert set(dets[0]) == {"boxes", "labels", "scores"}
