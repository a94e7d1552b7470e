"""Tests for foveal.detection.nms.

Oracles: a brute-force greedy loop (one pair at a time, plain Python floats) on random boxes,
``cv2.dnn.NMSBoxes`` (OpenCV's greedy NMS on xywh ``Rect2d``: area w·h with no "+1", suppress
when overlap > threshold, scores sorted by a stable descending sort, so ties go to the lower
index, the same as ours: the keep lists agree element for element, order included), closed
forms for Soft-NMS, and per-class NMS for batched_nms.
"""

import math

import cv2
import numpy as np
import pytest
import torch

from foveal.detection import nms as nms_module
from foveal.detection.nms import batched_nms, nms, soft_nms
from foveal.errors import DetectionError


def random_boxes(n: int, seed: int, dtype=torch.float64, ties: bool = False):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * 100
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * 40 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(n, generator=g, dtype=dtype)
    if ties:  # duplicate boxes and a handful of score levels
        dup = torch.randint(0, n, (n // 4,), generator=g)
        boxes[torch.randint(0, n, (n // 4,), generator=g)] = boxes[dup]
        scores = torch.randint(0, 4, (n,), generator=g).to(dtype) / 4
    return boxes, scores


def brute_force_nms(boxes, scores, t):
    b, s = boxes.tolist(), scores.tolist()
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))

    def iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = w * h
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
        return inter / union if union > 0 else 0.0

    keep = []
    for i in order:
        if all(iou(b[i], b[k]) <= t for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("block", [16, 1024])  # 16 exercises the cross-block suppression path
@pytest.mark.parametrize("ties", [False, True])
def test_nms_matches_brute_force_greedy_loop(monkeypatch, block, ties):
    monkeypatch.setattr(nms_module, "_BLOCK", block)
    monkeypatch.setattr(nms_module, "_KEPT_CHUNK", 24)
    for seed in range(6):
        boxes, scores = random_boxes(120, seed, ties=ties)
        for t in (0.0, 0.4, 0.7):
            keep = nms(boxes, scores, t)
            assert keep.dtype == torch.int64
            assert keep.tolist() == brute_force_nms(boxes, scores, t), (seed, t)


def test_nms_float32_matches_brute_force():
    boxes, scores = random_boxes(150, 99, dtype=torch.float32)
    assert nms(boxes, scores, 0.5).tolist() == brute_force_nms(boxes, scores, 0.5)


@pytest.mark.parametrize("n, seeds, thresholds", [(300, 3, (0.3, 0.5, 0.7)), (2500, 1, (0.5,))])
def test_nms_matches_opencv_nmsboxes(n, seeds, thresholds):  # 2500 spans three 1024-box blocks
    for seed in range(seeds):
        boxes, scores = random_boxes(n, seed)
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()
        for t in thresholds:
            # OpenCV keeps score > score_threshold and asserts it is >= 0; our scores are > 0
            ref = cv2.dnn.NMSBoxes(xywh, scores.tolist(), 0.0, t)
            assert nms(boxes, scores, t).tolist() == np.asarray(ref).ravel().tolist()


def test_nms_iou_equal_to_threshold_does_not_suppress():
    # strictly greater, as torchvision: a box at exactly the threshold survives
    boxes = torch.tensor([[0.0, 0, 4, 1], [1.0, 0, 5, 1]])  # inter 3, union 5: IoU 0.6
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.6).tolist() == [0, 1]
    assert nms(boxes, scores, 0.59).tolist() == [0]


def test_nms_ties_go_to_lower_index():
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 3)
    assert nms(boxes, torch.tensor([0.5, 0.7, 0.7]), 0.5).tolist() == [1]


def test_nms_empty_input_returns_empty_int64():
    for fn in (lambda b, s: nms(b, s, 0.5),
               lambda b, s: batched_nms(b, s, torch.zeros(0, dtype=torch.int64), 0.5),
               lambda b, s: soft_nms(b, s)[0]):
        keep = fn(torch.zeros(0, 4), torch.zeros(0))
        assert keep.shape == (0,) and keep.dtype == torch.int64


def test_nms_bad_input_raises_detection_error():
    boxes, scores = random_boxes(5, 0)
    with pytest.raises(DetectionError, match="scores of shape"):
        nms(boxes, scores[:4], 0.5)
    with pytest.raises(DetectionError, match=r"\(N, 4\)"):
        nms(boxes[:, :3], scores, 0.5)
    with pytest.raises(DetectionError, match="NaN"):
        nms(boxes, torch.tensor([0.1, float("nan"), 0.3, 0.4, 0.5], dtype=torch.float64), 0.5)
    with pytest.raises(DetectionError, match="idxs"):
        batched_nms(boxes, scores, torch.zeros(4, dtype=torch.int64), 0.5)
    with pytest.raises(DetectionError, match="method"):
        soft_nms(boxes, scores, method="cubic")


def test_batched_nms_equals_per_class_nms_concatenated():
    for seed in range(5):
        boxes, scores = random_boxes(400, seed, ties=seed % 2 == 1)
        boxes = boxes - 50  # negative coordinates: offsets must still separate classes
        idxs = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(seed))
        expected = []
        for c in idxs.unique():
            members = torch.nonzero(idxs == c).squeeze(1)
            expected += members[nms(boxes[members], scores[members], 0.5)].tolist()
        s = scores.tolist()
        expected.sort(key=lambda i: (-s[i], i))
        assert batched_nms(boxes, scores, idxs, 0.5).tolist() == expected


# Soft-NMS closed forms: A = [0,0,10,10] (0.9), B = [5,0,15,10] (0.8), IoU(A, B) = 50/150 = 1/3;
# C = [100,100,110,110] (0.6) overlaps nothing.
SOFT_BOXES = torch.tensor([[0.0, 0, 10, 10], [5.0, 0, 15, 10], [100.0, 100, 110, 110]],
                          dtype=torch.float64)
SOFT_SCORES = torch.tensor([0.9, 0.8, 0.6], dtype=torch.float64)


def test_soft_nms_linear_decay_closed_form():
    keep, s = soft_nms(SOFT_BOXES, SOFT_SCORES, iou_threshold=0.3, method="linear")
    assert keep.tolist() == [0, 2, 1]  # B: 0.8 (1 − 1/3) = 0.5333 < 0.6
    torch.testing.assert_close(s, torch.tensor([0.9, 0.6, 0.8 * 2 / 3], dtype=torch.float64))
    # o = 1/3 < N_t = 0.5: linear Soft-NMS leaves B untouched
    keep, s = soft_nms(SOFT_BOXES, SOFT_SCORES, iou_threshold=0.5, method="linear")
    assert keep.tolist() == [0, 1, 2]
    torch.testing.assert_close(s, SOFT_SCORES)


def test_soft_nms_gaussian_decay_closed_form():
    keep, s = soft_nms(SOFT_BOXES, SOFT_SCORES, sigma=0.5, method="gaussian")
    assert keep.tolist() == [0, 1, 2]  # B: 0.8 exp(−(1/9) / 0.5) = 0.6406 > 0.6
    torch.testing.assert_close(
        s, torch.tensor([0.9, 0.8 * math.exp(-2 / 9), 0.6], dtype=torch.float64))


def test_soft_nms_score_threshold_drops_decayed_boxes():
    keep, s = soft_nms(SOFT_BOXES, SOFT_SCORES, iou_threshold=0.3, score_threshold=0.55)
    assert keep.tolist() == [0, 2]
    torch.testing.assert_close(s, torch.tensor([0.9, 0.6], dtype=torch.float64))


def test_soft_nms_linear_keeps_everything_hard_nms_keeps_and_scores_non_increasing():
    boxes, scores = random_boxes(80, 3)
    keep, s = soft_nms(boxes, scores, iou_threshold=0.5, score_threshold=0.0)
    assert set(nms(boxes, scores, 0.5).tolist()) <= set(keep.tolist())
    assert (s[1:] <= s[:-1]).all()
