"""Elementwise, reduction, shape and linear ops against torch autograd (float64) and centred
differences."""

import numpy as np
import pytest
import torch

from foveal.scratch import gradcheck
from foveal.scratch.ops import elementwise as E
from foveal.scratch.ops import linear as L
from foveal.scratch.ops import reduce as R
from foveal.scratch.ops import shape as S
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


def rand(*shape, positive=False):
    x = rng.standard_normal(shape)
    return np.abs(x) + 0.5 if positive else x


BINARY = [
    (E.add, torch.add), (E.sub, torch.sub), (E.mul, torch.mul), (E.div, torch.div),
    (E.maximum, torch.maximum),
]


@pytest.mark.parametrize(("ours", "theirs"), BINARY)
@pytest.mark.parametrize(("sa", "sb"), [((3, 5), (3, 5)), ((2, 3, 5), (5,)), ((4, 1), (1, 3))])
def test_binary_broadcasting_matches_torch(ours, theirs, sa, sb):
    a, b = rand(*sa), rand(*sb, positive=True)
    torch_check(ours, theirs, [a, b]).assert_close(1e-12)


@pytest.mark.parametrize(("ours", "theirs", "positive"), [
    (E.exp, torch.exp, False), (E.log, torch.log, True), (E.sqrt, torch.sqrt, True),
    (E.neg, torch.neg, False), (E.abs, torch.abs, False),
    (lambda x: E.power(x, 3.0), lambda x: x**3.0, False),
    (lambda x: E.power(x, -0.5), lambda x: x**-0.5, True),
])
def test_unary_matches_torch_and_numeric_gradient(ours, theirs, positive):
    x = rand(4, 3, positive=positive)
    torch_check(ours, theirs, [x]).assert_close(1e-12)
    assert gradcheck(ours, [x]).ok


def test_where_routes_by_condition():
    a, b = rand(3, 4), rand(3, 4)
    cond = rng.random((3, 4)) > 0.5
    torch_check(lambda a, b: E.where(cond, a, b),
                lambda a, b: torch.where(torch.as_tensor(cond), a, b), [a, b]).assert_close(1e-15)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean_match_torch(axis, keepdims):
    x = rand(2, 3, 4)
    dim = tuple(range(3)) if axis is None else axis
    torch_check(lambda x: R.sum(x, axis, keepdims),
                lambda x: torch.sum(x, dim=dim, keepdim=keepdims), [x]).assert_close(1e-12)
    torch_check(lambda x: R.mean(x, axis, keepdims),
                lambda x: torch.mean(x, dim=dim, keepdim=keepdims), [x]).assert_close(1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_over_axis_matches_torch(axis, keepdims):
    x = rand(3, 5, 4)
    torch_check(lambda x: R.max(x, axis, keepdims),
                lambda x: torch.max(x, dim=axis, keepdim=keepdims).values, [x]).assert_close(0)


def test_global_max_routes_to_one_element():
    x = np.array([[1.0, 7.0], [7.0, 2.0]])
    res = torch_check(lambda x: R.max(x), lambda x: torch.max(x), [x])
    assert res.forward_error == 0
    from foveal.scratch import Tensor

    t = Tensor(x, requires_grad=True)
    R.max(t).backward()
    assert t.grad.sum() == 1.0 and t.grad[0, 1] == 1.0  # first maximum in row-major order


def test_shape_ops_match_torch():
    x = rand(2, 3, 4)
    torch_check(lambda x: S.reshape(x, (4, 6)), lambda x: x.reshape(4, 6), [x]).assert_close(0)
    torch_check(lambda x: S.transpose(x, (2, 0, 1)), lambda x: x.permute(2, 0, 1),
                [x]).assert_close(0)
    torch_check(lambda x: S.flatten(x), lambda x: x.flatten(1), [x]).assert_close(0)
    torch_check(lambda x: x[:, 1:, ::2], lambda x: x[:, 1:, ::2], [x]).assert_close(0)
    torch_check(lambda x: S.pad2d(x, (1, 2)),
                lambda x: torch.nn.functional.pad(x, (2, 2, 1, 1)), [x]).assert_close(0)


def test_repeated_index_gradients_add():
    idx = np.array([0, 2, 0, 0])
    torch_check(lambda x: S.getitem(x, idx), lambda x: x[torch.as_tensor(idx)],
                [rand(3, 2)]).assert_close(0)


def test_concat_and_stack_match_torch():
    a, b = rand(2, 3), rand(2, 5)
    torch_check(lambda a, b: S.concat([a, b], axis=1), lambda a, b: torch.cat([a, b], 1),
                [a, b]).assert_close(0)
    c, d = rand(2, 3), rand(2, 3)
    torch_check(lambda c, d: S.stack([c, d], axis=1), lambda c, d: torch.stack([c, d], 1),
                [c, d]).assert_close(0)


def test_matmul_and_linear_match_torch():
    torch_check(L.matmul, torch.matmul, [rand(2, 3, 4), rand(4, 5)]).assert_close(1e-12)
    torch_check(L.linear, torch.nn.functional.linear,
                [rand(5, 3), rand(4, 3), rand(4)]).assert_close(1e-12)
    torch_check(L.linear, torch.nn.functional.linear,
                [rand(2, 5, 3), rand(4, 3), rand(4)]).assert_close(1e-12)
    assert gradcheck(L.linear, [rand(3, 2), rand(4, 2), rand(4)]).ok


def test_shape_mismatches_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul: .*\(2, 3\) and \(4, 5\)"):
        L.matmul(rand(2, 3), rand(4, 5))
    with pytest.raises(ValueError, match=r"linear: .*got \(5, 3\) and \(4, 2\)"):
        L.linear(rand(5, 3), rand(4, 2))
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\)"):
        S.reshape(rand(2, 3), (4, 2))
    with pytest.raises(ValueError, match="concat"):
        S.concat([rand(2, 3), rand(3, 3)], axis=1)
    with pytest.raises(ValueError, match="pad2d"):
        S.pad2d(rand(1, 2, 2), -1)
