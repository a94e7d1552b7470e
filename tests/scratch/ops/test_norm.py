"""Batch, layer, group and instance norm against torch autograd (float64, torch.nn.functional and
nn.BatchNorm1d/2d for the running buffers) and centred differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


def rand(*shape, scale=1.0, shift=0.0):
    return rng.standard_normal(shape) * scale + shift


# ---------------------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("shape", [(7, 3), (5, 4, 3), (3, 2, 5, 3), (2, 3, 2, 3, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_training_matches_torch(shape, affine):
    c = shape[1]
    x = rand(*shape, scale=2.0, shift=0.7)
    w, b = rand(c, shift=1.0), rand(c)
    if affine:
        ours = lambda x, w, b: batch_norm(x, None, None, w, b, training=True)  # noqa: E731
        theirs = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
        torch_check(ours, theirs, [x, w, b]).assert_close(1e-8)
    else:
        torch_check(lambda x: batch_norm(x, None, None, training=True),
                    lambda x: F.batch_norm(x, None, None, training=True), [x]).assert_close(1e-8)


@pytest.mark.parametrize("shape", [(6, 3), (3, 4, 3, 5)])
def test_batchnorm_eval_uses_running_statistics_like_torch(shape):
    c = shape[1]
    x, w, b = rand(*shape), rand(c), rand(c)
    mean, var = rand(c), np.abs(rand(c)) + 0.5
    torch_check(
        lambda x, w, b: batch_norm(x, mean.copy(), var.copy(), w, b, training=False),
        lambda x, w, b: F.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b,
                                     training=False),
        [x, w, b],
    ).assert_close(1e-8)


def test_batchnorm_gradient_matches_centred_differences():
    x, w, b = rand(4, 3, 2, 2), rand(3), rand(3)
    # training mode: μ and σ² depend on x, so the full compact backward is exercised
    fn = lambda x, w, b: batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    assert gradcheck(fn, [x, w, b]).ok
    mean, var = rand(3), np.abs(rand(3)) + 0.5
    fn_eval = lambda x, w, b: batch_norm(x, mean, var, w, b, training=False)  # noqa: E731
    assert gradcheck(fn_eval, [x, w, b]).ok


def test_batchnorm_backward_is_the_compact_formula():
    # closed form (Ioffe & Szegedy 2015): dx = γ/(Nσ) (N g − Σg − x̂ Σ g x̂)
    n, c = 6, 2
    x, w, g = rand(n, c), rand(c), rand(n, c)
    xt = Tensor(x, requires_grad=True)
    batch_norm(xt, None, None, w, None, training=True, eps=1e-5).backward(g)
    sigma = np.sqrt(x.var(axis=0) + 1e-5)
    xhat = (x - x.mean(axis=0)) / sigma
    expected = w / (n * sigma) * (n * g - g.sum(0) - xhat * (g * xhat).sum(0))
    np.testing.assert_allclose(xt.grad, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("module", [torch.nn.BatchNorm1d, torch.nn.BatchNorm2d])
def test_batchnorm_running_variance_is_unbiased_as_in_torch(module):
    # a biased running variance (σ² instead of σ² · n/(n−1)) is the mistake this guards against
    c = 3
    shape = (4, c) if module is torch.nn.BatchNorm1d else (2, c, 2, 3)
    torch_bn = module(c).double()
    mean, var = np.zeros(c), np.ones(c)
    for _ in range(3):
        x = rand(*shape, scale=3.0, shift=1.0)
        batch_norm(x, mean, var, training=True, momentum=0.1)
        torch_bn(torch.as_tensor(x))
    np.testing.assert_allclose(var, torch_bn.running_var.numpy(), rtol=1e-12)
    np.testing.assert_allclose(mean, torch_bn.running_mean.numpy(), rtol=1e-12, atol=1e-15)
    # and from one step out of the initial state, the closed form with n/(n−1)
    x = rand(*shape)
    var1 = np.ones(c)
    batch_norm(x, np.zeros(c), var1, training=True, momentum=1.0)
    axes = tuple(i for i in range(x.ndim) if i != 1)
    np.testing.assert_allclose(var1, x.var(axis=axes, ddof=1), rtol=1e-12)


def test_batchnorm_running_average_momentum_convention():
    # torch: running ← (1 − m)·running + m·new (momentum weighs the NEW statistic; Keras's
    # momentum=0.99 weighs the OLD one). Compare with nn.BatchNorm1d(momentum=0.3) over steps.
    c, m = 4, 0.3
    torch_bn = torch.nn.BatchNorm1d(c, momentum=m).double()
    mean, var = np.zeros(c), np.ones(c)
    for step in range(5):
        x = rand(8, c, scale=2.0, shift=step)
        expected_mean = (1 - m) * mean + m * x.mean(axis=0)
        batch_norm(x, mean, var, training=True, momentum=m)
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-13)
        torch_bn(torch.as_tensor(x))
        np.testing.assert_allclose(mean, torch_bn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(var, torch_bn.running_var.numpy(), rtol=1e-12)


def test_batchnorm_running_buffers_are_updated_in_place():
    mean, var = np.zeros(3), np.ones(3)
    mean_id, var_id = id(mean), id(var)
    batch_norm(rand(5, 3, shift=2.0), mean, var, training=True)
    assert id(mean) == mean_id and id(var) == var_id
    assert np.all(mean != 0) and np.all(var != 1)


def test_batchnorm_eval_leaves_running_buffers_untouched():
    mean, var = rand(3), np.abs(rand(3)) + 0.1
    before = (mean.copy(), var.copy())
    batch_norm(rand(5, 3), mean, var, training=False)
    np.testing.assert_array_equal(mean, before[0])
    np.testing.assert_array_equal(var, before[1])


# ------------------------------------------------------------------------- layer/group/instance
@pytest.mark.parametrize(("shape", "normalized"), [
    ((5, 7), (7,)), ((2, 3, 5), (5,)), ((2, 3, 4, 3), (4, 3)), ((3, 2, 5), (3, 2, 5)),
])
def test_layernorm_matches_torch(shape, normalized):
    x, w, b = rand(*shape, scale=1.5, shift=0.3), rand(*normalized), rand(*normalized)
    torch_check(lambda x, w, b: layer_norm(x, normalized, w, b),
                lambda x, w, b: F.layer_norm(x, normalized, w, b), [x, w, b]).assert_close(1e-8)
    torch_check(lambda x: layer_norm(x, normalized, eps=1e-3),
                lambda x: F.layer_norm(x, normalized, eps=1e-3), [x]).assert_close(1e-8)


@pytest.mark.parametrize(("shape", "groups"), [
    ((3, 6), 3), ((2, 6, 5), 2), ((2, 6, 3, 3), 3), ((2, 4, 3, 5), 1), ((2, 4, 3, 5), 4),
])
def test_groupnorm_matches_torch(shape, groups):
    c = shape[1]
    x, w, b = rand(*shape, shift=0.5), rand(c), rand(c)
    torch_check(lambda x, w, b: group_norm(x, groups, w, b),
                lambda x, w, b: F.group_norm(x, groups, w, b), [x, w, b]).assert_close(1e-8)
    torch_check(lambda x: group_norm(x, groups),
                lambda x: F.group_norm(x, groups), [x]).assert_close(1e-8)


@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 2, 3, 4), (1, 3, 2, 3, 2)])
def test_instancenorm_matches_torch(shape):
    c = shape[1]
    x, w, b = rand(*shape, shift=-0.4), rand(c), rand(c)
    torch_check(lambda x, w, b: instance_norm(x, w, b),
                lambda x, w, b: F.instance_norm(x, weight=w, bias=b, use_input_stats=True),
                [x, w, b]).assert_close(1e-8)
    torch_check(lambda x: instance_norm(x), lambda x: F.instance_norm(x),
                [x]).assert_close(1e-8)


@pytest.mark.parametrize(("fn", "shape", "pshape"), [
    (lambda x, w, b: layer_norm(x, (3, 2), w, b), (2, 3, 2), (3, 2)),
    (lambda x, w, b: group_norm(x, 2, w, b), (2, 4, 3), (4,)),
    (lambda x, w, b: instance_norm(x, w, b), (2, 2, 2, 2), (2,)),
])
def test_norms_match_centred_differences(fn, shape, pshape):
    assert gradcheck(fn, [rand(*shape), rand(*pshape), rand(*pshape)], tolerance=1e-6).ok


def test_groupnorm_with_one_group_per_channel_is_instancenorm():
    # closed-form identity: G = C groups of one channel = per-(n, c) statistics
    x = rand(2, 3, 4, 4)
    np.testing.assert_allclose(group_norm(x, 3).data, instance_norm(x).data, rtol=1e-13)


# ---------------------------------------------------------------------------------- dtypes, errors
@pytest.mark.parametrize("fn", [
    lambda x: batch_norm(x, np.zeros(4, np.float32), np.ones(4, np.float32)),
    lambda x: batch_norm(x, np.zeros(4, np.float32), np.ones(4, np.float32), training=False),
    lambda x: layer_norm(x, (5, 3), np.ones((5, 3), np.float32), np.zeros((5, 3), np.float32)),
    lambda x: group_norm(x, 2, np.ones(4, np.float32), np.zeros(4, np.float32)),
    lambda x: instance_norm(x),
])
def test_norms_keep_float32(fn):
    x = Tensor(rand(3, 4, 5, 3).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.dtype == np.float32


def test_norms_reject_bad_shapes_and_values():
    x = rand(2, 5, 3, 3)
    with pytest.raises(ValueError, match=r"batch_norm: expected running_mean of shape \(5,\)"):
        batch_norm(x, np.zeros(4), np.ones(5))
    with pytest.raises(ValueError, match=r"batch_norm: expected weight of shape \(5,\)"):
        batch_norm(x, None, None, np.ones(3))
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        batch_norm(rand(1, 3), None, None)
    with pytest.raises(ValueError, match="batch_norm: momentum must be in"):
        batch_norm(x, None, None, momentum=1.5)
    with pytest.raises(ValueError, match="batch_norm: eval mode"):
        batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="batch_norm: expected a floating-point input"):
        batch_norm(np.ones((3, 2), dtype=np.int64), None, None)
    with pytest.raises(ValueError, match=r"layer_norm: expected input .* got \(2, 5, 3, 3\)"):
        layer_norm(x, (5, 3))
    with pytest.raises(ValueError, match="layer_norm: eps must be positive, got 0"):
        layer_norm(x, 3, eps=0)
    with pytest.raises(ValueError, match="group_norm: expected input .* divisible by "
                                         r"num_groups = 2, got \(2, 5, 3, 3\)"):
        group_norm(x, 2)
    with pytest.raises(ValueError, match="instance_norm: expected more than 1 spatial element"):
        instance_norm(rand(2, 3, 1, 1))
    with pytest.raises(ValueError, match="layer_norm: weight dtype float32 differs"):
        layer_norm(x, 3, np.ones(3, np.float32))
