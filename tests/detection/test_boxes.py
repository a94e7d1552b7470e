"""Tests for foveal.detection.boxes.

Oracles: closed forms on hand-computed boxes, brute-force Python loops (one pair at a time, plain
``math``) over random boxes, round trips (convert, encode → decode), and torch autograd
``gradcheck`` / central differences in float64.
"""

import math

import pytest
import torch

from foveal.detection.boxes import (
    BOX_FORMATS,
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    complete_box_iou,
    decode_boxes,
    distance_box_iou,
    encode_boxes,
    generalized_box_iou,
    remove_small_boxes,
)
from foveal.errors import DetectionError

PAIRWISE = [box_iou, generalized_box_iou, distance_box_iou, complete_box_iou]
EPS = 1e-7


def random_boxes(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * 10
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * 5 + 0.5
    return torch.cat([xy, xy + wh], dim=1)


# ---- brute-force references: one pair at a time, plain Python floats -------------------------


def ref_pair(a, b):
    """(iou, giou, diou, ciou) for two xyxy boxes given as lists, straight from the papers."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    iou = inter / union
    cw = max(ax2, bx2) - min(ax1, bx1)
    ch = max(ay2, by2) - min(ay1, by1)
    giou = iou - (cw * ch - union) / (cw * ch)
    rho2 = ((ax1 + ax2) / 2 - (bx1 + bx2) / 2) ** 2 + ((ay1 + ay2) / 2 - (by1 + by2) / 2) ** 2
    diou = iou - rho2 / (cw**2 + ch**2 + EPS)
    v = 4 / math.pi**2 * (math.atan((bx2 - bx1) / (by2 - by1))
                          - math.atan((ax2 - ax1) / (ay2 - ay1))) ** 2
    alpha = v / (1 - iou + v + EPS)
    return iou, giou, diou, diou - alpha * v


def ref_matrix(boxes1, boxes2, which: int) -> torch.Tensor:
    out = [[ref_pair(a, b)[which] for b in boxes2.tolist()] for a in boxes1.tolist()]
    return torch.tensor(out, dtype=torch.float64)


# ---- closed forms --------------------------------------------------------------------------


def test_iou_of_unit_squares_offset_by_half_is_one_third():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[0.5, 0.0, 1.5, 1.0]])
    # inter 0.5, union 1.5; the enclosing box equals the union, so GIoU = IoU too
    assert box_iou(a, b).item() == pytest.approx(1 / 3)
    assert generalized_box_iou(a, b).item() == pytest.approx(1 / 3)


def test_diagonal_offset_closed_forms():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.5, 0.5, 1.5, 1.5]], dtype=torch.float64)
    iou = 0.25 / 1.75
    assert box_iou(a, b).item() == pytest.approx(iou)
    assert generalized_box_iou(a, b).item() == pytest.approx(iou - (2.25 - 1.75) / 2.25)
    diou = iou - 0.5 / (4.5 + EPS)  # ρ² = 0.5² + 0.5², c² = 1.5² + 1.5²
    assert distance_box_iou(a, b).item() == pytest.approx(diou)
    # equal aspect ratios: v = 0, so CIoU = DIoU
    assert complete_box_iou(a, b).item() == pytest.approx(diou)


def test_giou_of_disjoint_boxes_is_negative():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
    assert box_iou(a, b).item() == 0.0
    assert generalized_box_iou(a, b).item() == pytest.approx(-1 / 3)  # C = 3, union = 2


def test_ciou_aspect_term_on_transposed_rectangles():
    a = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    iou = 1 / 3
    diou = iou - 0.5 / (8 + EPS)  # centres (1, .5) and (.5, 1); enclosing box 2 × 2
    v = 4 / math.pi**2 * (math.atan(2) - math.atan(0.5)) ** 2
    alpha = v / (1 - iou + v + EPS)
    assert complete_box_iou(a, b).item() == pytest.approx(diou - alpha * v, abs=1e-12)


def test_identical_boxes_score_one_everywhere():
    boxes = random_boxes(5, seed=1)
    for fn in PAIRWISE:
        torch.testing.assert_close(fn(boxes, boxes).diagonal(), torch.ones(5, dtype=torch.float64))


# ---- brute force ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", range(4), ids=[fn.__name__ for fn in PAIRWISE])
def test_pairwise_matches_brute_force_loops(which):
    fn = PAIRWISE[which]
    boxes1 = random_boxes(13, seed=2)
    boxes2 = random_boxes(7, seed=3)  # same range: a mix of overlapping and disjoint pairs
    got = fn(boxes1, boxes2)
    assert got.shape == (13, 7)
    want = ref_matrix(boxes1, boxes2, which)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_random_boxes_include_disjoint_pairs():
    # guards the brute-force test against only ever seeing overlaps
    iou = box_iou(random_boxes(13, seed=2), random_boxes(7, seed=3))
    assert (iou == 0).any() and (iou > 0).any()


# ---- single-box operations -----------------------------------------------------------------


def test_box_convert_hand_example():
    xyxy = torch.tensor([[1.0, 2.0, 4.0, 6.0]])
    torch.testing.assert_close(box_convert(xyxy, "xyxy", "xywh"), torch.tensor([[1.0, 2, 3, 4]]))
    torch.testing.assert_close(
        box_convert(xyxy, "xyxy", "cxcywh"), torch.tensor([[2.5, 4.0, 3, 4]])
    )


@pytest.mark.parametrize("in_fmt", BOX_FORMATS)
@pytest.mark.parametrize("out_fmt", BOX_FORMATS)
def test_box_convert_round_trip(in_fmt, out_fmt):
    boxes = box_convert(random_boxes(10, seed=4), "xyxy", in_fmt).reshape(2, 5, 4)
    there = box_convert(boxes, in_fmt, out_fmt)
    assert there.shape == boxes.shape
    torch.testing.assert_close(box_convert(there, out_fmt, in_fmt), boxes)


def test_box_convert_same_format_returns_a_copy():
    boxes = random_boxes(3, seed=5)
    out = box_convert(boxes, "xyxy", "xyxy")
    out[0, 0] = -1.0
    assert boxes[0, 0] != -1.0


def test_box_area_has_no_plus_one():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0]])
    torch.testing.assert_close(box_area(boxes), torch.tensor([6.0, 0.0]))


def test_clip_boxes_to_image_uses_height_width_order():
    boxes = torch.tensor([[-5.0, -1.0, 50.0, 50.0], [1.0, 2.0, 3.0, 4.0]])
    clipped = clip_boxes_to_image(boxes, size=(20, 30))  # h = 20, w = 30
    torch.testing.assert_close(clipped, torch.tensor([[0.0, 0.0, 30.0, 20.0], [1.0, 2, 3, 4]]))


def test_remove_small_boxes_keeps_indices_of_boxes_at_least_min_size():
    boxes = torch.tensor(
        [[0.0, 0, 1, 1], [0, 0, 0.5, 3], [0, 0, 3, 0.99], [2, 2, 5, 5], [0, 0, 1, 2]]
    )
    keep = remove_small_boxes(boxes, min_size=1.0)
    assert keep.dtype == torch.int64
    assert keep.tolist() == [0, 3, 4]


# ---- box coding ----------------------------------------------------------------------------


def test_encode_hand_example():
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    gt = torch.tensor([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 20.0, 20.0]])
    want = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, math.log(2), math.log(2)]])
    torch.testing.assert_close(encode_boxes(gt, proposals), want)
    weighted = encode_boxes(gt, proposals, weights=(10, 10, 5, 5))
    torch.testing.assert_close(weighted, want * torch.tensor([10.0, 10, 5, 5]))


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip(weights):
    proposals = random_boxes(20, seed=6)
    gt = random_boxes(20, seed=7)
    deltas = encode_boxes(gt, proposals, weights)
    torch.testing.assert_close(decode_boxes(deltas, proposals, weights), gt)


def test_decode_clamps_log_scale_at_log_1000_over_16():
    proposals = torch.tensor([[0.0, 0.0, 2.0, 4.0]], dtype=torch.float64)
    deltas = torch.tensor([[0.0, 0.0, 100.0, 100.0]], dtype=torch.float64)  # exp(100) overflows
    out = decode_boxes(deltas, proposals)
    assert torch.isfinite(out).all()
    wh = out[0, 2:] - out[0, :2]
    torch.testing.assert_close(wh, torch.tensor([2.0, 4.0], dtype=torch.float64) * 1000 / 16)


# ---- gradients -----------------------------------------------------------------------------


def overlapping_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.tensor([[0.0, 0.0, 2.0, 1.5], [1.0, 1.0, 4.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([[0.5, 0.3, 2.7, 2.2], [3.1, 0.4, 5.0, 1.1], [0.2, 1.2, 1.3, 3.9]],
                     dtype=torch.float64)
    return a.requires_grad_(), b.requires_grad_()


@pytest.mark.parametrize("fn", [generalized_box_iou, distance_box_iou])
def test_gradcheck(fn):
    assert torch.autograd.gradcheck(fn, overlapping_pairs())


def test_gradcheck_ciou_on_equal_aspect_boxes():
    # v = 0 here, so the detached α contributes nothing and the full gradient is exact
    a = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.7, 0.2, 2.7, 1.2], [3.0, 2.0, 5.0, 3.0]], dtype=torch.float64,
                     requires_grad=True)
    assert torch.autograd.gradcheck(complete_box_iou, (a, b))


def test_ciou_alpha_is_not_differentiated():
    # torchvision and the paper (Sec. 3.3) treat α as a weight; the gradient must equal that of
    # DIoU − α₀·v with α₀ frozen, checked here by central differences.
    a, b = overlapping_pairs()
    complete_box_iou(a, b).sum().backward()
    with torch.no_grad():
        iou = box_iou(a, b)

        def aspect(x, y):
            at = torch.atan((x[:, 2] - x[:, 0]) / (x[:, 3] - x[:, 1]))
            bt = torch.atan((y[:, 2] - y[:, 0]) / (y[:, 3] - y[:, 1]))
            return 4 / math.pi**2 * (at[:, None] - bt[None, :]) ** 2

        v0 = aspect(a, b)
        alpha0 = v0 / (1 - iou + v0 + EPS)

        def frozen(x):
            return (distance_box_iou(x, b) - alpha0 * aspect(x, b)).sum()

        h = 1e-6
        numeric = torch.zeros_like(a)
        for idx in range(a.numel()):
            step = torch.zeros_like(a).view(-1)
            step[idx] = h
            step = step.view_as(a)
            numeric.view(-1)[idx] = (frozen(a + step) - frozen(a - step)) / (2 * h)
    torch.testing.assert_close(a.grad, numeric, atol=1e-6, rtol=1e-5)


# ---- empty and bad input -------------------------------------------------------------------


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_empty_inputs(fn):
    assert fn(torch.zeros(0, 4), random_boxes(3, seed=8).float()).shape == (0, 3)
    assert fn(random_boxes(3, seed=8).float(), torch.zeros(0, 4)).shape == (3, 0)


def test_single_box_operations_on_empty_input():
    empty = torch.zeros(0, 4)
    assert box_convert(empty, "xyxy", "cxcywh").shape == (0, 4)
    assert box_area(empty).shape == (0,)
    assert clip_boxes_to_image(empty, (10, 10)).shape == (0, 4)
    assert remove_small_boxes(empty, 1.0).shape == (0,)
    assert decode_boxes(empty, empty).shape == (0, 4)


def test_integer_boxes_give_float_iou():
    a = torch.tensor([[0, 0, 2, 2]])
    b = torch.tensor([[1, 0, 3, 2]])
    out = box_iou(a, b)
    assert out.is_floating_point() and out.item() == pytest.approx(1 / 3)


def assert_one_line_error(match: str, fn, *args):
    with pytest.raises(DetectionError, match=match) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg and "expected" in msg and "got" in msg


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_rejects_wrong_last_dimension(fn):
    assert_one_line_error(r"\(N, 4\).*\(3, 5\)", fn, torch.zeros(3, 5), torch.zeros(2, 4))
    assert_one_line_error(r"boxes2.*\(4,\)", fn, torch.zeros(3, 4), torch.zeros(4))


def test_single_box_operations_reject_wrong_last_dimension():
    bad = torch.zeros(2, 3)
    assert_one_line_error(r"\(2, 3\)", box_convert, bad, "xyxy", "xywh")
    assert_one_line_error(r"\(2, 3\)", box_area, bad)
    assert_one_line_error(r"\(2, 3\)", clip_boxes_to_image, bad, (4, 4))
    assert_one_line_error(r"\(2, 3\)", remove_small_boxes, bad, 1.0)
    assert_one_line_error(r"proposals", encode_boxes, torch.zeros(2, 4), bad)
    assert_one_line_error(r"deltas", decode_boxes, bad, torch.zeros(2, 4))
    assert_one_line_error(r"list", box_area, [[0, 0, 1, 1]])


def test_box_convert_rejects_unknown_format():
    assert_one_line_error(r"in_fmt.*'xyhw'", box_convert, torch.zeros(1, 4), "xyhw", "xyxy")
    assert_one_line_error(r"out_fmt.*'XYXY'", box_convert, torch.zeros(1, 4), "xyxy", "XYXY")


def test_coder_rejects_wrong_number_of_weights():
    assert_one_line_error(r"4 weights.*3", encode_boxes, torch.ones(1, 4), torch.ones(1, 4),
                          (1.0, 1.0, 1.0))
