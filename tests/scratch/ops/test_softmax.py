"""Softmax and log-softmax against torch autograd (float64), centred differences, and the
closed forms (rows sum to 1, log-softmax = log of softmax)."""

import warnings

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops.softmax import log_softmax, softmax
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)

OPS = [(softmax, torch.softmax), (log_softmax, torch.log_softmax)]
IDS = ["softmax", "log_softmax"]


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize(("shape", "axis"), [
    ((7,), -1), ((3, 5), -1), ((3, 5), 0), ((2, 3, 7), 1), ((2, 3, 7), -1), ((1, 1), 1),
])
def test_matches_torch_autograd(ours, theirs, shape, axis):
    x = 3 * rng.standard_normal(shape)
    torch_check(lambda x: ours(x, axis), lambda x: theirs(x, axis), [x]).assert_close(1e-8)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize("axis", [0, 1])
def test_matches_centred_differences(ours, theirs, axis):
    assert gradcheck(lambda x: ours(x, axis), [rng.standard_normal((3, 4))]).ok


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log():
    x = rng.standard_normal((4, 6))
    y = softmax(x, axis=1).data
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-15)
    np.testing.assert_allclose(log_softmax(x, axis=1).data, np.log(y), rtol=1e-14)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
def test_softmax_does_not_mutate_its_input(ours, theirs):
    """Pitfall: ``x -= x.max()`` in place shifts the caller's logits (and the saved input)."""
    x = 5 * rng.standard_normal((3, 5))
    bits = x.copy().view(np.uint64)
    t = Tensor(x, requires_grad=True)
    y = ours(t, 1)
    np.testing.assert_array_equal(t.data.view(np.uint64), bits)
    y.backward(rng.standard_normal(y.shape))
    np.testing.assert_array_equal(t.data.view(np.uint64), bits)
    assert t.data is x


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_give_finite_results(ours, theirs, dtype):
    """Pitfall: exp(1000) overflows without the max shift; torch gives the finite answer."""
    x = np.array([[1000.0, 999.0, -1000.0], [0.0, 1.0, 2.0], [-1000.0, -1000.0, -1000.0]],
                 dtype=dtype)
    t = Tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = ours(t, -1)
        y.backward(np.ones(y.shape, dtype))
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(t.grad))
    expected = theirs(torch.tensor(x), -1).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
def test_keeps_float32(ours, theirs):
    t = Tensor(rng.standard_normal((2, 5)).astype(np.float32), requires_grad=True)
    y = ours(t, 1)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and t.grad.dtype == np.float32


@pytest.mark.parametrize(("call", "match"), [
    (lambda: softmax(np.ones((2, 3)), axis=2), r"softmax: axis 2 is out of range .* 2 axes"),
    (lambda: log_softmax(np.ones(3, dtype=np.int64)), r"log_softmax: expected a floating"),
    (lambda: softmax(np.float64(1.0)), r"softmax: expected an input with at least one axis"),
    (lambda: log_softmax(np.ones((2, 0))), r"log_softmax: axis -1 of shape \(2, 0\) is empty"),
])
def test_bad_arguments_raise_value_error_naming_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()
