"""Losses against torch autograd (float64, every reduction), centred differences, and closed
forms on hand examples (uniform logits, the CS231n hinge example)."""

import math
import warnings

import numpy as np
import pytest
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops import loss as L
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)
REDUCTIONS = ["mean", "sum", "none"]


def labels(n: int, classes: int) -> np.ndarray:
    return rng.integers(0, classes, size=n)


# ----------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize(("n", "c"), [(5, 7), (1, 3), (8, 2)])
def test_cross_entropy_matches_torch(reduction, smoothing, n, c):
    x, y = 3 * rng.standard_normal((n, c)), labels(n, c)
    torch_check(
        lambda x, y: L.cross_entropy(x, y, smoothing, reduction),
        lambda x, y: F.cross_entropy(x, y, reduction=reduction, label_smoothing=smoothing),
        [x, y], differentiable=[True, False],
    ).assert_close(1e-8)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_centred_differences(smoothing):
    y = labels(3, 4)
    assert gradcheck(lambda x: L.cross_entropy(x, y, smoothing), [rng.standard_normal((3, 4))]).ok


def test_cross_entropy_closed_forms():
    """Uniform logits give log C, and the fused gradient is (softmax − q)/N."""
    n, c, eps = 4, 5, 0.1
    x = Tensor(np.zeros((n, c)), requires_grad=True)
    y = np.array([0, 1, 4, 4])
    loss = L.cross_entropy(x, y, label_smoothing=eps)
    assert math.isclose(loss.item(), math.log(c), rel_tol=1e-15)
    loss.backward()
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1 - eps
    np.testing.assert_allclose(x.grad, (1 / c - q) / n, rtol=1e-15)


def test_cross_entropy_with_huge_logits_is_finite():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
    y = np.array([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = torch_check(lambda x, y: L.cross_entropy(x, y), lambda x, y: F.cross_entropy(x, y),
                          [x, y], differentiable=[True, False])
    res.assert_close(1e-12)


# ----------------------------------------------------------------------------- hinge
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_multiclass_hinge_is_torch_multi_margin_times_c(reduction, margin):
    """torch's multi_margin_loss averages over the C classes; ours sums, so compare with C·it."""
    n, c = 6, 5
    x, y = rng.standard_normal((n, c)), labels(n, c)
    torch_check(
        lambda x, y: L.multiclass_hinge(x, y, margin, reduction),
        lambda x, y: c * F.multi_margin_loss(x, y, margin=margin, reduction=reduction),
        [x, y], differentiable=[True, False],
    ).assert_close(1e-8)


def test_multiclass_hinge_cs231n_example():
    """The three-image example of CS231n's linear-classification notes: losses 2.9, 0, 12.9."""
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    np.testing.assert_allclose(L.multiclass_hinge(scores, y, reduction="none").data,
                               [2.9, 0.0, 12.9], rtol=1e-14)
    assert math.isclose(L.multiclass_hinge(scores, y).item(), 15.8 / 3, rel_tol=1e-14)


def test_multiclass_hinge_matches_centred_differences():
    y = labels(4, 3)
    assert gradcheck(lambda x: L.multiclass_hinge(x, y), [rng.standard_normal((4, 3))]).ok


# ----------------------------------------------------------------------------- binary
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 5)])
def test_bce_with_logits_matches_torch_in_logits_and_targets(reduction, shape):
    x, t = 3 * rng.standard_normal(shape), rng.random(shape)
    torch_check(
        lambda x, t: L.binary_cross_entropy_with_logits(x, t, reduction=reduction),
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
        [x, t],
    ).assert_close(1e-8)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_pos_weight_matches_torch(reduction):
    """torch has no gradient for pos_weight; ours is checked by centred differences below."""
    x, t, pw = 3 * rng.standard_normal((4, 3)), rng.random((4, 3)), rng.random(3) + 0.5
    torch_check(
        lambda x, t, pw: L.binary_cross_entropy_with_logits(x, t, pw, reduction),
        lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw,
                                                            reduction=reduction),
        [x, t, pw], differentiable=[True, True, False],
    ).assert_close(1e-8)


def test_bce_with_logits_matches_centred_differences():
    x, t, pw = rng.standard_normal((3, 4)), rng.random((3, 4)), rng.random(4) + 0.5
    assert gradcheck(L.binary_cross_entropy_with_logits, [x, t]).ok
    assert gradcheck(L.binary_cross_entropy_with_logits, [x, t, pw]).ok


def test_bce_with_logits_is_stable_for_huge_logits():
    """Pitfall: log(σ(x)) gives log(0) = −inf at x = −1000; the stable form gives 1000."""
    x, t = np.array([-1000.0, 1000.0, 0.0]), np.array([1.0, 0.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = L.binary_cross_entropy_with_logits(x, t, reduction="none").data
    np.testing.assert_allclose(values, [1000.0, 1000.0, math.log(2)], rtol=1e-15)


# ----------------------------------------------------------------------------- regression
REGRESSION = [
    ("mse", L.mse_loss, F.mse_loss),
    ("l1", L.l1_loss, F.l1_loss),
    ("smooth_l1", L.smooth_l1_loss, F.smooth_l1_loss),
    ("smooth_l1_beta_0.3",
     lambda x, t, reduction="mean": L.smooth_l1_loss(x, t, 0.3, reduction),
     lambda x, t, reduction="mean": F.smooth_l1_loss(x, t, reduction=reduction, beta=0.3)),
    ("smooth_l1_beta_0",
     lambda x, t, reduction="mean": L.smooth_l1_loss(x, t, 0.0, reduction),
     lambda x, t, reduction="mean": F.smooth_l1_loss(x, t, reduction=reduction, beta=0.0)),
]
REGRESSION_IDS = [name for name, _, _ in REGRESSION]


@pytest.mark.parametrize(("name", "ours", "theirs"), REGRESSION, ids=REGRESSION_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 3)])
def test_regression_losses_match_torch_in_input_and_target(name, ours, theirs, reduction, shape):
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    torch_check(lambda x, t: ours(x, t, reduction=reduction),
                lambda x, t: theirs(x, t, reduction=reduction), [x, t]).assert_close(1e-8)


@pytest.mark.parametrize(("name", "ours", "theirs"), REGRESSION, ids=REGRESSION_IDS)
def test_regression_losses_match_centred_differences(name, ours, theirs):
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert gradcheck(ours, [x, t]).ok


def test_l1_and_smooth_l1_gradient_is_zero_where_input_equals_target():
    """sign(0) = 0, as torch; the two smooth-L1 branches agree at |d| = β."""
    x, t = np.array([1.0, 2.0, 3.5]), np.array([1.0, 1.0, 2.5])
    for ours, theirs in [(L.l1_loss, F.l1_loss), (L.smooth_l1_loss, F.smooth_l1_loss)]:
        torch_check(ours, theirs, [x, t]).assert_close(1e-15)


# ----------------------------------------------------------------------------- triplet
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("p", "swap"), [(2, False), (2, True), (1, False), (3, True)])
@pytest.mark.parametrize("shape", [(6, 5), (3,)])
def test_triplet_margin_loss_matches_torch(reduction, p, swap, shape):
    a, pos, neg = (rng.standard_normal(shape) for _ in range(3))
    torch_check(
        lambda a, pos, neg: L.triplet_margin_loss(a, pos, neg, 1.5, p, 1e-6, swap, reduction),
        lambda a, pos, neg: F.triplet_margin_loss(a, pos, neg, margin=1.5, p=p, swap=swap,
                                                  reduction=reduction),
        [a, pos, neg],
    ).assert_close(1e-8)


def test_triplet_margin_loss_adds_eps_to_the_difference_like_torch():
    """Pitfall: ‖a − p‖ + eps differs from torch's ‖a − p + eps‖; a large eps makes it visible."""
    a, pos, neg = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.zeros((3, 4))
    torch_check(
        lambda a, p, n: L.triplet_margin_loss(a, p, n, margin=3.0, eps=0.5, reduction="none"),
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0, eps=0.5, reduction="none"),
        [a, pos, neg],
    ).assert_close(1e-8)


def test_triplet_swap_tie_splits_the_gradient_like_torch_min():
    """With positive = anchor, d(a, n) = d(p, n): a tie in the swap's min."""
    a, n = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    torch_check(
        lambda a, p, n: L.triplet_margin_loss(a, p, n, swap=True),
        lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True),
        [a, a.copy(), n],
    ).assert_close(1e-8)


@pytest.mark.parametrize(("p", "swap"), [(2, False), (1, True)])
def test_triplet_margin_loss_matches_centred_differences(p, swap):
    a, pos, neg = (rng.standard_normal((3, 4)) for _ in range(3))
    fn = lambda a, pos, neg: L.triplet_margin_loss(a, pos, neg, 2.0, p, swap=swap)  # noqa: E731
    assert gradcheck(fn, [a, pos, neg]).ok


# ----------------------------------------------------------------------------- dtypes, errors
@pytest.mark.parametrize("call", [
    lambda x, y: L.cross_entropy(x, y, 0.1),
    lambda x, y: L.multiclass_hinge(x, y),
    lambda x, y: L.binary_cross_entropy_with_logits(x, x * 0 + 0.5),
    lambda x, y: L.mse_loss(x, x * 0),
    lambda x, y: L.l1_loss(x, x * 0),
    lambda x, y: L.smooth_l1_loss(x, x * 0, 0.5),
    lambda x, y: L.triplet_margin_loss(x, x * 0.5, x * 0),
], ids=["cross_entropy", "hinge", "bce", "mse", "l1", "smooth_l1", "triplet"])
def test_losses_keep_float32(call):
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    loss = call(x, np.array([0, 2, 1, 2]))
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize(("call", "match"), [
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
     r"cross_entropy: labels must lie in \[0, C\) with C = 3, got 3"),
    (lambda: L.multiclass_hinge(np.zeros((2, 3)), np.array([-1, 0])),
     r"multiclass_hinge: labels must lie in \[0, C\) with C = 3, got -1"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
     r"cross_entropy: expected target of shape \(2,\) for input of shape \(2, 3\), got \(3,\)"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
     r"cross_entropy: expected integer class labels, got dtype float64"),
    (lambda: L.cross_entropy(np.zeros(3), np.array([0])),
     r"cross_entropy: expected input of shape \(N, C\), got \(3,\)"),
    (lambda: L.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5),
     r"cross_entropy: label_smoothing must lie in \[0, 1\], got 1.5"),
    (lambda: L.mse_loss(np.zeros((2, 3)), np.zeros((3, 2))),
     r"mse_loss: expected target of the input's shape \(2, 3\), got \(3, 2\)"),
    (lambda: L.l1_loss(np.zeros(3), np.zeros(3), reduction="avg"),
     r"l1_loss: reduction must be one of \('mean', 'sum', 'none'\), got 'avg'"),
    (lambda: L.smooth_l1_loss(np.zeros(3), np.zeros(3), beta=-1.0),
     r"smooth_l1_loss: beta must be >= 0, got -1.0"),
    (lambda: L.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(2)),
     r"pos_weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: L.triplet_margin_loss(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))),
     r"triplet_margin_loss: .* got \(2, 3\), \(2, 3\) and \(2, 4\)"),
    (lambda: L.triplet_margin_loss(np.zeros(3), np.zeros(3), np.zeros(3), margin=0.0),
     r"triplet_margin_loss: margin must be > 0, got 0.0"),
    (lambda: L.mse_loss(np.zeros(3, dtype=np.int64), np.zeros(3)),
     r"mse_loss: expected a floating-point input, got dtype int64"),
])
def test_bad_arguments_raise_value_error_naming_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_labels_inside_a_tensor_are_accepted():
    """A Tensor stores labels as whole floats; they index like the integer array."""
    x, y = rng.standard_normal((3, 4)), np.array([3, 0, 1])
    assert L.cross_entropy(x, Tensor(y)).item() == L.cross_entropy(x, y).item()
