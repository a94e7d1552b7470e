"""Tests for foveal.detection.matcher.

Oracles: a brute-force Python loop for the IoU matcher (the torchvision ``Matcher`` rules written
out one prediction and one ground truth at a time, ties included); for the Hungarian matcher,
brute force over every injective assignment on small matrices, and scipy's
``linear_sum_assignment`` total cost; DETR's cost written out entry by entry with ``math``; and
torchvision's ``Matcher`` where torchvision is installed.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from foveal.detection.boxes import box_iou
from foveal.detection.matcher import (
    BELOW_LOW_THRESHOLD,
    BETWEEN_THRESHOLDS,
    HungarianMatcher,
    Matcher,
    detr_matching_cost,
    hungarian_match,
    match_by_iou,
)
from foveal.errors import DetectionError


def brute_force_match(iou, high, low, allow):
    rows = iou.tolist()
    num_gt, num_pred = iou.shape
    best_gt, out = [], []
    for p in range(num_pred):
        col = [rows[g][p] for g in range(num_gt)]
        m = col.index(max(col))  # first maximum
        best_gt.append(m)
        out.append(-1 if col[m] < low else -2 if col[m] < high else m)
    if allow:
        for g in range(num_gt):
            for p in range(num_pred):
                if rows[g][p] == max(rows[g]):
                    out[p] = best_gt[p]
    return out


def random_iou(num_gt, num_pred, seed, levels=None):
    g = torch.Generator().manual_seed(seed)
    if levels:  # few distinct values: many ties, within columns and within rows
        return torch.randint(0, levels + 1, (num_gt, num_pred), generator=g).double() / levels
    xy = torch.rand(num_gt + num_pred, 2, generator=g, dtype=torch.float64) * 50
    boxes = torch.cat([xy, xy + torch.rand(num_gt + num_pred, 2, generator=g) * 30 + 1], 1)
    return box_iou(boxes[:num_gt], boxes[num_gt:])


@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("levels", [None, 4, 10])
def test_match_by_iou_matches_brute_force_loop(allow, levels):
    for seed in range(8):
        for num_gt, num_pred in ((1, 7), (5, 40), (9, 3)):
            iou = random_iou(num_gt, num_pred, seed, levels)
            for high, low in ((0.7, 0.3), (0.5, 0.5), (0.5, 0.0)):
                got = match_by_iou(iou, high, low, allow)
                assert got.dtype == torch.int64 and got.shape == (num_pred,)
                assert got.tolist() == brute_force_match(iou, high, low, allow), (seed, high, low)


def test_thresholds_are_inclusive_at_high_and_exclusive_at_low():
    iou = torch.tensor([[0.7, 0.69, 0.3, 0.29]])
    assert match_by_iou(iou, 0.7, 0.3).tolist() == [0, BETWEEN_THRESHOLDS, BETWEEN_THRESHOLDS,
                                                    BELOW_LOW_THRESHOLD]
    assert (BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS) == (-1, -2)


def test_low_quality_matches_restore_every_tied_best_prediction():
    # gt 0 peaks at 0.4 on predictions 0 and 2 (a tie); gt 1 peaks at 0.6 on prediction 1
    iou = torch.tensor([[0.4, 0.1, 0.4, 0.2],
                        [0.1, 0.6, 0.3, 0.1]])
    assert match_by_iou(iou, 0.7, 0.3).tolist() == [-2, -2, -2, -1]
    assert match_by_iou(iou, 0.7, 0.3, allow_low_quality_matches=True).tolist() == [0, 1, 0, -1]


def test_low_quality_match_restores_the_predictions_own_best_gt_not_the_gt_it_is_best_for():
    # prediction 0 is gt 1's best (0.5) but overlaps gt 0 more (0.6): torchvision restores
    # its argmax, gt 0, so gt 1 stays without a match
    iou = torch.tensor([[0.6, 0.9],
                        [0.5, 0.1]])
    assert match_by_iou(iou, 0.7, 0.3, allow_low_quality_matches=True).tolist() == [0, 0]


def test_no_ground_truth_or_no_predictions():
    assert match_by_iou(torch.zeros(0, 5), 0.7, 0.3, True).tolist() == [BELOW_LOW_THRESHOLD] * 5
    out = match_by_iou(torch.zeros(3, 0), 0.7, 0.3, True)
    assert out.shape == (0,) and out.dtype == torch.int64


def test_matcher_class_is_the_function_with_fixed_thresholds():
    iou = random_iou(6, 50, 3)
    m = Matcher(0.6, 0.4, allow_low_quality_matches=True)
    assert torch.equal(m(iou), match_by_iou(iou, 0.6, 0.4, True))
    assert m.BELOW_LOW_THRESHOLD == -1 and m.BETWEEN_THRESHOLDS == -2
    assert "0.6" in repr(m)


@pytest.mark.parametrize("call", [
    lambda: match_by_iou(torch.zeros(2, 3), 0.3, 0.7),
    lambda: Matcher(0.3, 0.7),
    lambda: match_by_iou(torch.zeros(3), 0.7, 0.3),
    lambda: match_by_iou([[0.5]], 0.7, 0.3),
    lambda: match_by_iou(torch.tensor([[float("nan"), 0.5]]), 0.7, 0.3),
    lambda: hungarian_match(torch.zeros(3)),
    lambda: hungarian_match(torch.tensor([[1.0, float("nan")], [0.0, 1.0]])),
    lambda: hungarian_match(torch.tensor([[1.0, float("inf")], [0.0, 1.0]])),
    lambda: hungarian_match(torch.tensor([[1.0, -float("inf")], [0.0, 1.0]])),
])
def test_bad_input_raises_one_line_detection_error(call):
    with pytest.raises(DetectionError) as info:
        call()
    assert "\n" not in str(info.value)


def brute_force_assignment_cost(cost):
    c = cost.tolist()
    num_pred, num_gt = cost.shape
    if num_pred >= num_gt:
        return min(sum(c[p][g] for g, p in enumerate(perm))
                   for perm in itertools.permutations(range(num_pred), num_gt))
    return min(sum(c[p][g] for p, g in enumerate(perm))
               for perm in itertools.permutations(range(num_gt), num_pred))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 5), (6, 3), (2, 5), (4, 6)])
def test_hungarian_match_is_optimal_against_all_permutations(shape):
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        cost = torch.randn(*shape, generator=g, dtype=torch.float64)
        if seed % 2:
            cost = cost.round()  # integer costs: many optimal assignments tie
        rows, cols = hungarian_match(cost)
        k = min(shape)
        assert rows.dtype == cols.dtype == torch.int64 and rows.shape == cols.shape == (k,)
        assert len(set(rows.tolist())) == k and len(set(cols.tolist())) == k
        assert rows.tolist() == sorted(rows.tolist())
        assert cost[rows, cols].sum().item() == pytest.approx(brute_force_assignment_cost(cost),
                                                              abs=1e-12)


def test_hungarian_match_total_cost_equals_scipy_on_a_large_float32_matrix():
    cost = torch.rand(80, 50, generator=torch.Generator().manual_seed(0))
    rows, cols = hungarian_match(cost)
    r, c = linear_sum_assignment(cost.double().numpy())
    assert cost.double()[rows, cols].sum().item() == pytest.approx(
        cost.double().numpy()[r, c].sum(), abs=1e-9)


def test_hungarian_match_empty_sides():
    for shape in ((0, 4), (4, 0), (0, 0)):
        rows, cols = hungarian_match(torch.zeros(shape))
        assert rows.shape == cols.shape == (0,) and rows.dtype == torch.int64


def detr_cost_by_hand(logits, boxes, labels, gt, weights):
    """DETR's cost, entry by entry, with math only."""
    w_class, w_bbox, w_giou = weights

    def xyxy(b):
        return (b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2)

    def giou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
        c = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
        return iw * ih / union - (c - union) / c

    out = []
    for lq, bq in zip(logits.tolist(), boxes.tolist(), strict=True):
        z = sum(math.exp(v) for v in lq)
        out.append([-w_class * math.exp(lq[c]) / z
                    + w_bbox * sum(abs(u - v) for u, v in zip(bq, bg, strict=True))
                    - w_giou * giou(xyxy(bq), xyxy(bg))
                    for c, bg in zip(labels.tolist(), gt.tolist(), strict=True)])
    return torch.tensor(out, dtype=torch.float64)


def random_cxcywh(n, g):
    return torch.cat([torch.rand(n, 2, generator=g, dtype=torch.float64) * 0.6 + 0.2,
                      torch.rand(n, 2, generator=g, dtype=torch.float64) * 0.3 + 0.05], 1)


def test_detr_matching_cost_matches_the_cost_written_out():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64)
    boxes = random_cxcywh(7, g)
    labels = torch.tensor([0, 4, 2])
    gt = random_cxcywh(3, g)
    for weights in ((1.0, 5.0, 2.0), (2.0, 0.0, 1.0)):
        got = detr_matching_cost(logits, boxes, labels, gt, *weights)
        assert torch.allclose(got, detr_cost_by_hand(logits, boxes, labels, gt, weights),
                              atol=1e-12)


def test_hungarian_matcher_is_optimal_per_image_and_handles_images_without_objects():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    boxes = torch.stack([random_cxcywh(6, g) for _ in range(3)])
    targets = [{"labels": torch.tensor([1, 3, 0]), "boxes": random_cxcywh(3, g)},
               {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)},
               {"labels": torch.tensor([2, 2]), "boxes": random_cxcywh(2, g)}]
    out = HungarianMatcher()(logits, boxes, targets)
    assert len(out) == 3
    assert out[1][0].shape == out[1][1].shape == (0,)
    for b in (0, 2):
        pred_idx, gt_idx = out[b]
        t = targets[b]
        cost = detr_cost_by_hand(logits[b], boxes[b], t["labels"], t["boxes"], (1.0, 5.0, 2.0))
        assert sorted(gt_idx.tolist()) == list(range(len(t["labels"])))
        assert cost[pred_idx, gt_idx].sum().item() == pytest.approx(
            brute_force_assignment_cost(cost), abs=1e-9)


def test_hungarian_matcher_recovers_a_permutation_of_perfect_predictions():
    g = torch.Generator().manual_seed(3)
    gt = random_cxcywh(5, g)
    labels = torch.tensor([0, 1, 2, 1, 0])
    perm = torch.tensor([3, 0, 4, 1, 2, 5, 6])  # queries 5, 6 predict nothing useful
    boxes = torch.cat([gt, random_cxcywh(2, g)])[perm]
    logits = torch.full((7, 3), -5.0, dtype=torch.float64)
    logits[torch.arange(7), torch.cat([labels, torch.tensor([0, 0])])[perm]] = 5.0
    (pred_idx, gt_idx), = HungarianMatcher()(logits[None], boxes[None],
                                             [{"labels": labels, "boxes": gt}])
    matched = dict(zip(gt_idx.tolist(), pred_idx.tolist(), strict=True))
    assert matched == {3: 0, 0: 1, 4: 2, 1: 3, 2: 4}


def test_hungarian_matcher_bad_input_raises_one_line_detection_error():
    m = HungarianMatcher()
    logits, boxes = torch.zeros(2, 4, 3), torch.rand(2, 4, 4)
    target = {"labels": torch.tensor([0]), "boxes": torch.rand(1, 4)}
    for call in (lambda: m(logits, boxes[:, :, :3], [target, target]),
                 lambda: m(logits, boxes, [target]),
                 lambda: m(logits, boxes, [target, {"boxes": torch.rand(1, 4)}]),
                 lambda: m(logits, boxes, [target, {"labels": torch.tensor([3]),
                                                    "boxes": torch.rand(1, 4)}]),
                 lambda: HungarianMatcher(0, 0, 0)):
        with pytest.raises(DetectionError) as info:
            call()
        assert "\n" not in str(info.value)


def test_matcher_equals_torchvision_matcher():
    pytest.importorskip("torchvision")
    from torchvision.models.detection._utils import Matcher as TorchvisionMatcher

    for seed in range(6):
        for levels in (None, 5):
            iou = random_iou(7, 60, seed, levels).float()
            for high, low, allow in ((0.7, 0.3, True), (0.5, 0.5, False), (0.6, 0.2, False)):
                ref = TorchvisionMatcher(high, low, allow)(iou)
                assert torch.equal(match_by_iou(iou, high, low, allow), ref)


def test_hungarian_match_accepts_half_precision_costs():
    cost = torch.tensor(np.array([[1.0, 2.0], [2.0, 0.5]]), dtype=torch.float16)
    rows, cols = hungarian_match(cost)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
