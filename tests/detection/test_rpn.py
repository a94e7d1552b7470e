"""Tests for foveal.detection.rpn.

Oracles: a brute-force Python loop over anchors and boxes for the training targets (Faster R-CNN
Sec. 3.1.2 labelling with plain-float IoU), the loss written out by hand when every anchor is
sampled, and properties of the proposals (clipped, sorted, no same-level pair above the NMS IoU).
"""

import math

import torch

from foveal.detection.boxes import box_iou, encode_boxes
from foveal.detection.fpn import FPNBackbone
from foveal.detection.rpn import (
    RegionProposalNetwork,
    RPNConfig,
    flatten_head_outputs,
    rpn_loss,
    rpn_targets,
    select_proposals,
)


def _iou(p, q):
    w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
    h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
    inter = w * h
    return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter)


def brute_force_targets(anchors, gts, hi=0.7, lo=0.3):
    a, g = anchors.tolist(), gts.tolist()
    iou = [[_iou(x, y) for x in a] for y in g]
    labels, match = [], []
    for p in range(len(a)):
        col = [iou[j][p] for j in range(len(g))]
        best = max(col)
        m = col.index(best)
        match.append(m)
        labels.append(1 if best >= hi else (0 if best < lo else -1))
    for j in range(len(g)):  # each ground truth keeps its best anchors (ties included)
        best = max(iou[j])
        for p in range(len(a)):
            if iou[j][p] == best:
                labels[p] = 1
    return labels, match


def test_rpn_targets_match_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=g) * 50
    anchors = torch.cat([xy, xy + 4 + torch.rand(60, 2, generator=g) * 20], 1)
    gts = torch.tensor([[5.0, 5, 20, 25], [30, 28, 50, 40], [0, 40, 9, 55]])
    labels, matched = rpn_targets(anchors, gts)
    want_labels, want_match = brute_force_targets(anchors, gts)
    assert labels.tolist() == want_labels
    pos = labels == 1
    torch.testing.assert_close(matched[pos], gts[torch.tensor(want_match)[pos]])


def test_rpn_targets_without_ground_truth_are_all_background():
    labels, matched = rpn_targets(torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]]), torch.zeros(0, 4))
    assert labels.tolist() == [0, 0] and matched.shape == (2, 4)


def test_rpn_loss_equals_hand_written_formula_when_all_anchors_are_sampled():
    torch.manual_seed(0)
    anchors = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [30, 30, 40, 45], [2, 2, 8, 8]])
    gts = [torch.tensor([[1.0, 1, 11, 11]]), torch.tensor([[29.0, 31, 41, 44]])]
    targets = [rpn_targets(anchors, g) for g in gts]
    labels = [t[0] for t in targets]
    logits, deltas = torch.randn(2, 4), torch.randn(2, 4, 4)
    obj, box = rpn_loss(logits, deltas, anchors, labels, [t[1] for t in targets],
                        batch_size_per_image=100, positive_fraction=1.0)
    bce, smooth, n = 0.0, 0.0, 0
    beta = 1 / 9
    for i in range(2):
        for p in range(4):
            y = int(labels[i][p])
            if y < 0:
                continue
            n += 1
            s = 1 / (1 + math.exp(-float(logits[i, p])))
            bce -= math.log(s) if y == 1 else math.log(1 - s)
            if y == 1:
                t = encode_boxes(targets[i][1][p], anchors[p])
                for d in (deltas[i, p] - t).tolist():
                    smooth += 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta
    assert math.isclose(obj.item(), bce / n, rel_tol=1e-5)
    assert math.isclose(box.item(), smooth / n, rel_tol=1e-5)


def test_flatten_order_is_position_major_anchor_minor():
    n, a, h, w = 2, 3, 4, 5
    logits = torch.arange(n * a * h * w, dtype=torch.float32).view(n, a, h, w)
    deltas = torch.arange(n * 4 * a * h * w, dtype=torch.float32).view(n, 4 * a, h, w)
    flat_l, flat_d, counts = flatten_head_outputs([logits], [deltas])
    assert counts == [h * w * a]
    y, x, k = 2, 3, 1
    index = (y * w + x) * a + k
    assert flat_l[1, index] == logits[1, k, y, x]
    assert flat_d[1, index].tolist() == deltas[1, 4 * k:4 * k + 4, y, x].tolist()


def test_proposals_are_clipped_sorted_and_nms_per_level():
    torch.manual_seed(0)
    xy = torch.rand(400, 2) * 90
    anchors = torch.cat([xy, xy + 8 + torch.rand(400, 2) * 40], 1)
    counts = [250, 150]
    logits, deltas = torch.randn(2, 400), torch.randn(2, 400, 4) * 0.3
    boxes, scores = select_proposals(logits, deltas, anchors, counts, (64, 80),
                                     pre_nms_top_n=100, post_nms_top_n=60, nms_thresh=0.5)
    for b, s in zip(boxes, scores, strict=True):
        assert 0 < len(b) <= 60
        assert (b[:, 0::2] >= 0).all() and (b[:, 0::2] <= 80).all()
        assert (b[:, 1::2] >= 0).all() and (b[:, 1::2] <= 64).all()
        assert (s[:-1] >= s[1:]).all()
    # NMS runs per level: the result is the union of the levels run one at a time
    _, full = select_proposals(logits, deltas, anchors, counts, (64, 80), 400, 400, 0.5)
    per_level = []
    for sel in (slice(0, 250), slice(250, 400)):
        part, part_scores = select_proposals(logits[:, sel], deltas[:, sel], anchors[sel],
                                             [sel.stop - sel.start], (64, 80), 400, 400, 0.5)
        iou = box_iou(part[0], part[0]).fill_diagonal_(0)
        assert iou.max() <= 0.5
        per_level.append(part_scores[0])
    union = torch.cat(per_level).sort(descending=True).values
    torch.testing.assert_close(full[0], union)


def test_region_proposal_network_train_and_eval_modes():
    torch.manual_seed(0)
    features = FPNBackbone(widths=(8, 8, 16, 16), out_channels=8)(torch.randn(2, 3, 64, 64))
    rpn = RegionProposalNetwork(8, ((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5,
                                RPNConfig(post_nms_top_n_train=50, post_nms_top_n_test=20))
    gts = [torch.tensor([[4.0, 4, 30, 20]]), torch.zeros(0, 4)]
    proposals, losses = rpn(features, (64, 64), gts)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(len(p) <= 50 for p in proposals)
    rpn.eval()
    proposals, losses = rpn(features, (64, 64))
    assert losses == {} and all(len(p) <= 20 for p in proposals)
