"""Pooling and unpooling against torch autograd (float64) and centred differences."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d, max_unpool2d
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)
SETTINGS = [(2, None, 0), (3, 1, 1), (3, 2, 1), ((2, 3), (1, 2), 0), (3, 2, 0)]


@pytest.mark.parametrize(("k", "s", "p"), SETTINGS)
def test_max_and_avg_pool_match_torch(k, s, p):
    x = rng.standard_normal((2, 3, 7, 8))
    torch_check(lambda x: max_pool2d(x, k, s, p), lambda x: F.max_pool2d(x, k, s, p),
                [x]).assert_close(1e-12)
    torch_check(lambda x: avg_pool2d(x, k, s, p), lambda x: F.avg_pool2d(x, k, s, p),
                [x]).assert_close(1e-12)


def test_maxpool_backward_accumulates_overlapping_windows():
    # kernel 3, stride 1: the single large value is the max of all 4 windows of a 4×4 map
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 5.0
    t = Tensor(x, requires_grad=True)
    max_pool2d(t, 3, 1).backward(np.ones((1, 1, 2, 2)))
    assert t.grad[0, 0, 1, 2] == 4.0 and t.grad.sum() == 4.0
    torch_check(lambda x: max_pool2d(x, 3, 1), lambda x: F.max_pool2d(x, 3, 1),
                [x]).assert_close(0)


def test_maxpool_backward_splits_ties_deterministically():
    x = np.ones((1, 1, 4, 4))  # every element ties: the first in each window wins, as torch
    grads = []
    for _ in range(2):
        t = Tensor(x, requires_grad=True)
        max_pool2d(t, 2).backward(np.ones((1, 1, 2, 2)))
        grads.append(t.grad)
    np.testing.assert_array_equal(grads[0], grads[1])
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(grads[0][0, 0], expected)
    torch_check(lambda x: max_pool2d(x, 2), lambda x: F.max_pool2d(x, 2), [x]).assert_close(0)


def test_pool_gradients_match_centred_differences():
    x = rng.standard_normal((1, 2, 5, 5))
    assert gradcheck(lambda x: max_pool2d(x, 3, 2, 1), [x]).ok
    assert gradcheck(lambda x: avg_pool2d(x, 3, 2, 1), [x]).ok
    assert gradcheck(global_avg_pool2d, [x]).ok


def test_unpool_and_indices_match_torch():
    x = rng.standard_normal((2, 3, 7, 8))
    out, idx = max_pool2d(x, 2, return_indices=True)
    _, ref_idx = F.max_pool2d(torch.as_tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    torch_check(lambda v: max_unpool2d(v, idx, 2, output_size=(7, 8)),
                lambda v: F.max_unpool2d(v, ref_idx, 2, output_size=(7, 8)),
                [out.data]).assert_close(0)
    torch_check(global_avg_pool2d, lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1),
                [x]).assert_close(1e-12)


def test_bad_pool_arguments():
    with pytest.raises(ValueError, match=r"max_pool2d: expected input \(N, C, H, W\)"):
        max_pool2d(rng.standard_normal((3, 4, 4)), 2)
    with pytest.raises(ValueError, match="kernel_size"):
        avg_pool2d(rng.standard_normal((1, 1, 4, 4)), 0)
    with pytest.raises(ValueError, match="padding at most half"):
        max_pool2d(rng.standard_normal((1, 1, 4, 4)), 2, padding=2)
