"""Tests for foveal.detection.losses.

Oracles: closed forms on hand-computed boxes and logits; the pairwise IoU family of
foveal.detection.boxes (its diagonal) for the paired box losses; PyTorch's
``binary_cross_entropy_with_logits`` (focal loss with γ = 0 and no α weighting); torch autograd
``gradcheck`` in float64 against finite differences; and torchvision.ops where installed.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from foveal.detection.boxes import (
    box_iou,
    complete_box_iou,
    distance_box_iou,
    generalized_box_iou,
)
from foveal.detection.losses import (
    ciou_loss,
    diou_loss,
    giou_loss,
    sigmoid_focal_loss,
    smooth_l1_loss,
)
from foveal.errors import DetectionError


def random_box_pairs(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(2 * n, 2, generator=g, dtype=dtype) * 20
    boxes = torch.cat([xy, xy + torch.rand(2 * n, 2, generator=g, dtype=dtype) * 15 + 1], 1)
    return boxes[:n], boxes[n:]


# ---------------------------------------------------------------- smooth L1


def test_smooth_l1_closed_form():
    x = torch.tensor([0.05, 0.5, -2.0, 0.0], dtype=torch.float64)
    expected = [0.5 * 0.05**2 / 0.1, 0.5 - 0.05, 2.0 - 0.05, 0.0]
    got = smooth_l1_loss(x, torch.zeros_like(x), beta=0.1, reduction="none")
    assert got.tolist() == pytest.approx(expected, abs=1e-15)
    assert smooth_l1_loss(x, torch.zeros_like(x), beta=0.1).item() == pytest.approx(sum(expected))
    assert smooth_l1_loss(x, torch.zeros_like(x), 0.1, "mean").item() == pytest.approx(
        sum(expected) / 4)


def test_smooth_l1_beta_zero_is_l1():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    assert torch.allclose(smooth_l1_loss(a, b, beta=0.0), (a - b).abs().sum())


def test_smooth_l1_is_continuous_with_continuous_slope_at_abs_x_equal_beta():
    beta, d = 1.0 / 9, 1e-7
    for sign in (1.0, -1.0):
        x = torch.tensor([sign * (beta - d), sign * beta, sign * (beta + d)],
                         dtype=torch.float64, requires_grad=True)
        loss = smooth_l1_loss(x, torch.zeros_like(x), beta=beta, reduction="none")
        loss.sum().backward()
        # both pieces give 0.5 β at |x| = β, and slope ±1 on either side
        assert loss.tolist() == pytest.approx([0.5 * beta - d, 0.5 * beta, 0.5 * beta + d],
                                              abs=1e-12)
        assert x.grad.tolist() == pytest.approx([sign] * 3, abs=1e-5)


def test_smooth_l1_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(20, generator=g, dtype=torch.float64) * 0.3).requires_grad_()
    t = torch.randn(20, generator=g, dtype=torch.float64) * 0.3
    assert torch.autograd.gradcheck(lambda x: smooth_l1_loss(x, t, 0.1, "none"), (x,))


# ---------------------------------------------------------------- IoU-family losses


def test_box_losses_closed_form_overlapping_squares():
    # A = [0,0,2,2], B = [1,1,3,3]: IoU = 1/7, C = [0,0,3,3] (area 9, diagonal² 18),
    # centres (1,1), (2,2): ρ² = 2; equal aspect ratios: v = 0
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float64)
    assert giou_loss(a, b).item() == pytest.approx(1 - (1 / 7 - 2 / 9), abs=1e-6)
    assert diou_loss(a, b).item() == pytest.approx(1 - 1 / 7 + 2 / 18, abs=1e-6)
    assert ciou_loss(a, b).item() == pytest.approx(1 - 1 / 7 + 2 / 18, abs=1e-6)


def test_ciou_loss_closed_form_different_aspect_ratios():
    # A = [0,0,2,1], B = [0,0,1,2]: IoU = 1/3, C = [0,0,2,2] (c² = 8), ρ² = 0.5
    a = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    iou = 1 / 3
    v = 4 / math.pi**2 * (math.atan(0.5) - math.atan(2.0)) ** 2
    alpha = v / (1 - iou + v)
    assert ciou_loss(a, b).item() == pytest.approx(1 - iou + 0.5 / 8 + alpha * v, abs=1e-6)


def test_giou_loss_of_identical_boxes_is_zero_and_of_far_disjoint_boxes_approaches_two():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0], [3.0, 4.0, 30.0, 9.0]], dtype=torch.float64)
    assert giou_loss(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert diou_loss(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert ciou_loss(a, a).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    far = torch.tensor([[1000.0, 1000.0, 1001.0, 1001.0]], dtype=torch.float64)
    # 1 − GIoU = 1 + (|C| − 2)/|C| = 2 − 2/1001²
    assert giou_loss(a[:1], far).item() == pytest.approx(2 - 2 / 1001**2, abs=1e-9)
    assert 1.999 < giou_loss(a[:1], far).item() < 2


@pytest.mark.parametrize("loss, pairwise", [
    (giou_loss, generalized_box_iou),
    (diou_loss, distance_box_iou),
    (ciou_loss, complete_box_iou),
])
def test_paired_box_losses_equal_one_minus_the_diagonal_of_the_pairwise_iou(loss, pairwise):
    a, b = random_box_pairs(40, 2)
    b[:10] = a[:10] + 0.5  # some heavily overlapping pairs
    expected = 1 - pairwise(a, b).diagonal()
    assert torch.allclose(loss(a, b), expected, atol=1e-6)
    assert loss(a, b, reduction="sum").item() == pytest.approx(expected.sum().item(), abs=1e-5)
    assert loss(a, b, reduction="mean").item() == pytest.approx(expected.mean().item(), abs=1e-6)


@pytest.mark.parametrize("loss", [giou_loss, diou_loss])
def test_giou_and_diou_loss_gradcheck(loss):
    a, b = random_box_pairs(12, 3)
    b[:6] = a[:6] + 0.3  # overlapping pairs (random pairs are mostly disjoint)
    a.requires_grad_()
    assert torch.autograd.gradcheck(lambda a: loss(a, b), (a,))


def test_ciou_loss_gradient_treats_alpha_as_a_constant():
    # oracle: autograd of L_DIoU + α₀·v, with v written out and α₀ = v/(1 − IoU + v) frozen
    a, b = random_box_pairs(12, 4)
    b[:6] = a[:6] * 1.1 + 0.3
    a.requires_grad_()
    ciou_loss(a, b).sum().backward()

    def v_of(x):
        wh1, wh2 = x[:, 2:] - x[:, :2], b[:, 2:] - b[:, :2]
        return 4 / math.pi**2 * (torch.atan(wh2[:, 0] / wh2[:, 1])
                                 - torch.atan(wh1[:, 0] / wh1[:, 1])) ** 2

    x = a.detach().clone().requires_grad_()
    with torch.no_grad():
        v0 = v_of(x)
        alpha0 = v0 / (1 - box_iou(x, b).diagonal() + v0)
    (diou_loss(x, b) + alpha0 * v_of(x)).sum().backward()
    assert torch.allclose(a.grad, x.grad, atol=1e-6)
    assert not torch.allclose(a.grad, torch.autograd.grad(  # α differentiated would differ
        (diou_loss(x, b) + v_of(x) ** 2 / (1 - box_iou(x, b).diagonal() + v_of(x))).sum(),
        x)[0], atol=1e-6)


def test_box_losses_accept_empty_input_and_mean_of_nothing_is_zero():
    empty = torch.zeros(0, 4, requires_grad=True)
    for loss in (giou_loss, diou_loss, ciou_loss):
        assert loss(empty, empty).shape == (0,)
        out = loss(empty, empty, reduction="mean")
        assert out.item() == 0.0 and out.requires_grad


# ---------------------------------------------------------------- focal loss


def test_focal_loss_closed_form():
    x = torch.tensor([0.0, 2.0, -1.0], dtype=torch.float64)
    t = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    s2, sm1 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))
    expected = [0.25 * 0.5**2 * math.log(2),              # p_t = 1/2, α_t = α
                0.75 * s2**2 * -math.log(1 - s2),         # p_t = 1 − σ(2), α_t = 1 − α
                0.25 * (1 - sm1) ** 2 * -math.log(sm1)]   # p_t = σ(−1)
    assert sigmoid_focal_loss(x, t).tolist() == pytest.approx(expected, rel=1e-12)
    assert sigmoid_focal_loss(x, t, reduction="sum").item() == pytest.approx(sum(expected))
    assert sigmoid_focal_loss(x, t, reduction="mean").item() == pytest.approx(sum(expected) / 3)
    # α < 0: no α_t weighting
    unweighted = [expected[0] / 0.25, expected[1] / 0.75, expected[2] / 0.25]
    assert sigmoid_focal_loss(x, t, alpha=-1).tolist() == pytest.approx(unweighted, rel=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_loss_with_gamma_zero_and_no_alpha_is_bce_with_logits(reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 20, generator=g) * 4
    t = (torch.rand(8, 20, generator=g) < 0.3).float()
    t[0] = torch.rand(20, generator=g)  # soft targets too
    ref = F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
    assert torch.allclose(sigmoid_focal_loss(x, t, alpha=-1, gamma=0, reduction=reduction), ref,
                          atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_focal_loss_is_finite_for_logits_of_plus_minus_100(dtype):
    x = torch.tensor([100.0, 100.0, -100.0, -100.0], dtype=dtype, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    for gamma in (0.0, 0.5, 2.0):
        loss = sigmoid_focal_loss(x, t, gamma=gamma)
        (grad,) = torch.autograd.grad(loss.sum(), x)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all(), gamma
        # confident and right: ≈ 0; confident and wrong: α_t · 100 (the factor is ≈ 1)
        assert loss.tolist() == pytest.approx([0.0, 75.0, 25.0, 0.0], abs=1e-4)


def test_focal_loss_gradient_avoids_one_minus_sigmoid_underflow_at_gamma_below_one():
    # the textbook (1 − σ(x))^γ is 0^0.5 at x = 100 in float32: its slope is ∞ and 0·∞ = NaN
    x = torch.tensor([100.0], requires_grad=True)
    t = torch.ones(1)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    naive = ce * (1 - torch.sigmoid(x)) ** 0.5
    assert torch.isnan(torch.autograd.grad(naive.sum(), x)[0]).all()
    (grad,) = torch.autograd.grad(sigmoid_focal_loss(x, t, gamma=0.5).sum(), x)
    assert torch.isfinite(grad).all() and abs(grad.item()) < 1e-30


def test_focal_loss_gradcheck():
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(30, generator=g, dtype=torch.float64) * 3).requires_grad_()
    t = (torch.rand(30, generator=g, dtype=torch.float64) < 0.4).double()
    t[:5] = torch.rand(5, generator=g, dtype=torch.float64)
    for alpha, gamma in ((0.25, 2.0), (-1.0, 1.5), (0.5, 0.0)):
        assert torch.autograd.gradcheck(
            lambda x, alpha=alpha, gamma=gamma: sigmoid_focal_loss(x, t, alpha, gamma), (x,))


def test_focal_loss_accepts_integer_or_bool_targets():
    x = torch.tensor([0.3, -1.2, 2.0])
    t = torch.tensor([1, 0, 1])
    assert torch.equal(sigmoid_focal_loss(x, t), sigmoid_focal_loss(x, t.float()))
    assert torch.equal(sigmoid_focal_loss(x, t.bool()), sigmoid_focal_loss(x, t.float()))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call", [
    lambda: smooth_l1_loss(torch.zeros(3, 4), torch.zeros(4, 4)),
    lambda: smooth_l1_loss(torch.zeros(3), torch.zeros(3), reduction="avg"),
    lambda: smooth_l1_loss(torch.zeros(3), torch.zeros(3), beta=-1.0),
    lambda: smooth_l1_loss([1.0], torch.zeros(1)),
    lambda: giou_loss(torch.zeros(3, 4), torch.zeros(2, 4)),
    lambda: diou_loss(torch.zeros(3, 5), torch.zeros(3, 5)),
    lambda: ciou_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)),
    lambda: giou_loss(torch.zeros(3, 4), torch.zeros(3, 4), reduction=None),
    lambda: sigmoid_focal_loss(torch.zeros(3), torch.zeros(4)),
    lambda: sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), reduction="mean "),
    lambda: sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), gamma=-1.0),
    lambda: sigmoid_focal_loss(torch.zeros(3), torch.zeros(3), alpha=1.5),
    lambda: sigmoid_focal_loss(torch.zeros(3, dtype=torch.int64), torch.zeros(3)),
])
def test_bad_input_raises_one_line_detection_error(call):
    with pytest.raises(DetectionError) as info:
        call()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- torchvision


def test_losses_equal_torchvision_ops():
    pytest.importorskip("torchvision")
    from torchvision import ops

    a, b = random_box_pairs(200, 7, dtype=torch.float32)
    b[:80] = a[:80] + torch.randn(80, 4, generator=torch.Generator().manual_seed(0)) * 0.5
    for ours, theirs in ((giou_loss, ops.generalized_box_iou_loss),
                         (diou_loss, ops.distance_box_iou_loss),
                         (ciou_loss, ops.complete_box_iou_loss)):
        for reduction in ("none", "mean", "sum"):
            assert torch.allclose(ours(a, b, reduction), theirs(a, b, reduction), atol=1e-5)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(16, 80, generator=g) * 5
    t = (torch.rand(16, 80, generator=g) < 0.1).float()
    for alpha, gamma in ((0.25, 2.0), (-1.0, 2.0), (0.5, 0.0)):
        for reduction in ("none", "mean", "sum"):
            assert torch.allclose(sigmoid_focal_loss(x, t, alpha, gamma, reduction),
                                  ops.sigmoid_focal_loss(x, t, alpha, gamma, reduction),
                                  rtol=1e-5, atol=1e-6)
