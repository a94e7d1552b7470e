"""Activations against torch autograd (float64, ``torch_check``), centred differences
(``gradcheck``), scipy's normal CDF and the closed forms where torch has no such op."""

import math
import warnings

import numpy as np
import pytest
import scipy.special
import torch
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.ops import activation as A
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


def rand(*shape: int, scale: float = 2.0) -> np.ndarray:
    """Random values kept ≥ 1e-2 from 0, where the rectifiers have their kinks."""
    x = scale * rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-2, 0.5, x)


def torch_swiglu(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    a, b = x.chunk(2, dim=dim)
    return F.silu(a) * b


ELEMENTWISE = [
    ("relu", A.relu, F.relu),
    ("leaky_relu", lambda x: A.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
    ("elu", lambda x: A.elu(x, 1.3), lambda x: F.elu(x, 1.3)),
    ("selu", A.selu, F.selu),
    ("gelu_none", A.gelu, F.gelu),
    ("gelu_tanh", lambda x: A.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
    # torch has no sigmoid-approximated GELU: compare with its closed form x σ(1.702 x)
    ("gelu_sigmoid", lambda x: A.gelu(x, "sigmoid"), lambda x: x * torch.sigmoid(1.702 * x)),
    ("sigmoid", A.sigmoid, torch.sigmoid),
    ("tanh", A.tanh, torch.tanh),
    ("softplus", A.softplus, F.softplus),
    # β = 2, threshold = 3: entries with 2x > 3 take the linear branch
    ("softplus_beta", lambda x: A.softplus(x, 2.0, 3.0), lambda x: F.softplus(x, 2.0, 3.0)),
    ("silu", A.silu, F.silu),
]
IDS = [name for name, _, _ in ELEMENTWISE]


@pytest.mark.parametrize(("name", "ours", "theirs"), ELEMENTWISE, ids=IDS)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 7)])
def test_elementwise_matches_torch_autograd(name, ours, theirs, shape):
    torch_check(ours, theirs, [rand(*shape)]).assert_close(1e-8)


@pytest.mark.parametrize(("name", "ours", "theirs"), ELEMENTWISE, ids=IDS)
def test_elementwise_matches_centred_differences(name, ours, theirs):
    assert gradcheck(ours, [rand(3, 4)], tolerance=1e-6).ok


@pytest.mark.parametrize(("name", "ours", "theirs"), ELEMENTWISE, ids=IDS)
def test_elementwise_keeps_float32(name, ours, theirs):
    x = Tensor(rand(3, 4).astype(np.float32), requires_grad=True)
    y = ours(x)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    expected = theirs(torch.tensor(x.data)).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("ours", "theirs"), [
    (A.relu, F.relu),
    (lambda x: A.leaky_relu(x, 0.3), lambda x: F.leaky_relu(x, 0.3)),
    (lambda x: A.elu(x, 2.0), lambda x: F.elu(x, 2.0)),
    (A.selu, F.selu),
], ids=["relu", "leaky_relu", "elu", "selu"])
def test_derivative_at_the_kink_is_torchs(ours, theirs):
    """At x = 0 exactly: ReLU'(0) = 0, LeakyReLU'(0) = s, ELU'(0) = α, SELU'(0) = λα."""
    x = np.array([0.0, -1.0, 1.0])
    res = torch_check(ours, theirs, [x])
    assert res.forward_error == 0 and res.max_error < 1e-15


def test_normal_cdf_matches_scipy_to_rounding_including_the_lower_tail():
    """Φ from math.erfc against scipy.special.ndtr, relative error per entry.

    Φ's condition number is ~x² in the lower tail (rounding x/√2 alone moves Φ(−30) by ~1e-13
    relative), so the bound is 1e-15 · max(1, x²): agreement to rounding, not a loose fit.
    """
    x = np.linspace(-30, 8, 2001)
    expected = scipy.special.ndtr(x)
    rel = np.abs(A._normal_cdf(x) - expected) / expected
    assert np.all(rel <= 1e-15 * np.maximum(1, x * x))


def test_gelu_keeps_relative_accuracy_in_the_lower_tail():
    """x Φ(x) at x = −10 is ~7.6e-23, where ½x(1 + erf(x/√2)) would round to 0 or noise."""
    x = np.array([-10.0, -30.0])
    expected = x * scipy.special.ndtr(x)
    np.testing.assert_allclose(A.gelu(x).data, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_of_huge_inputs_is_exact_and_warning_free(dtype):
    """Pitfall: 1 / (1 + exp(−x)) overflows (a RuntimeWarning) at x = −1000."""
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = A.sigmoid(Tensor(x, requires_grad=True))
        y.backward(np.ones_like(x))
        s = A.silu(x).data
        sp = A.softplus(x, threshold=2000.0).data
    expected = torch.sigmoid(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-6 if dtype == np.float32 else 1e-15)
    assert y.data[0] == 0 and y.data[-1] == 1
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(sp))
    # torch's log1p(exp(βx)) overflows to inf at x = 1000 here; numpy's logaddexp does not
    np.testing.assert_allclose(sp, np.logaddexp(0, x.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_glu_matches_torch_along_any_axis(axis):
    x = rand(4, 6, 2)
    torch_check(lambda x: A.glu(x, axis), lambda x: F.glu(x, axis), [x]).assert_close(1e-8)
    assert gradcheck(lambda x: A.glu(x, axis), [x]).ok


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_swiglu_matches_torch_expression(axis):
    """Against silu(a) * b with (a, b) = x.chunk(2, axis) in torch."""
    x = rand(4, 6, 2)
    torch_check(lambda x: A.swiglu(x, axis), lambda x: torch_swiglu(x, axis),
                [x]).assert_close(1e-8)
    assert gradcheck(lambda x: A.swiglu(x, axis), [x]).ok


def maxout_torch(x: torch.Tensor, pieces: int, axis: int) -> torch.Tensor:
    channels = x.shape[axis]
    return x.unflatten(axis, (channels // pieces, pieces)).max(axis + 1).values


@pytest.mark.parametrize(("shape", "pieces", "axis"), [
    ((2, 6, 3, 5), 2, 1), ((2, 6, 3, 5), 3, 1), ((3, 9), 3, 1), ((4, 5, 2), 5, 1),
    ((6, 5), 2, 0),
])
def test_maxout_matches_torch_unflatten_max(shape, pieces, axis):
    x = rand(*shape)
    torch_check(lambda x: A.maxout(x, pieces, axis), lambda x: maxout_torch(x, pieces, axis),
                [x]).assert_close(1e-8)
    assert gradcheck(lambda x: A.maxout(x, pieces, axis), [x]).ok


def test_maxout_tie_does_not_send_the_gradient_to_every_maximum():
    """Pitfall: routing g to ``x == max`` doubles it on ties; the first arg-max takes it all."""
    x = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    t = Tensor(x, requires_grad=True)
    A.maxout(t, 2).backward(np.ones((2, 2)))
    np.testing.assert_array_equal(t.grad, [[0, 1, 1, 0], [1, 0, 1, 0]])
    torch_check(lambda x: A.maxout(x, 4), lambda x: maxout_torch(x, 4, 1), [x]).assert_close(0)


def test_activations_do_not_write_into_their_input():
    x = rand(3, 4)
    before = x.copy()
    for fn in (A.relu, A.elu, A.selu, A.gelu, A.sigmoid, A.silu, A.softplus, A.glu, A.swiglu,
               lambda t: A.maxout(t, 2)):
        t = Tensor(x, requires_grad=True)
        y = fn(t)
        y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: A.relu(np.arange(3)), r"relu: expected a floating-point input, got dtype int"),
    (lambda: A.gelu(np.ones(2), "erf"), r"gelu: approximate must be one of .* got 'erf'"),
    (lambda: A.softplus(np.ones(2), beta=0.0), r"softplus: beta must be > 0, got 0.0"),
    (lambda: A.glu(np.ones((2, 5))), r"glu: expected an even size along axis -1 .*\(2, 5\)"),
    (lambda: A.swiglu(np.ones((2, 4)), axis=2), r"swiglu: axis 2 is out of range"),
    (lambda: A.maxout(np.ones((2, 6)), 4), r"maxout: .*multiple of pieces = 4, got shape \(2, 6\)"),
    (lambda: A.maxout(np.ones((2, 6)), 0), r"maxout: pieces must be a positive integer, got 0"),
])
def test_bad_arguments_raise_value_error_naming_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_selu_constants_are_torchs():
    """λ and α against torch's F.selu at x = −∞ (→ −λα) and x = 1 (→ λ)."""
    y = F.selu(torch.tensor([-1e3, 1.0], dtype=torch.float64)).numpy()
    assert math.isclose(-A.SELU_SCALE * A.SELU_ALPHA, y[0], rel_tol=1e-15)
    assert math.isclose(A.SELU_SCALE, y[1], rel_tol=1e-15)


def test_relu_propagates_nan_like_torch():
    from foveal.scratch.ops.activation import relu as relu_

    x = np.array([np.nan, -1.0, 2.0])
    np.testing.assert_array_equal(relu_(x).data, torch.relu(torch.as_tensor(x)).numpy())
