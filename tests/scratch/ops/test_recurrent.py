"""Recurrent cells against torch's own cell kernels (``torch.rnn_tanh_cell``, ``torch.lstm_cell``,
``torch.gru_cell``, the ones behind ``nn.*Cell``) under autograd in float64, against centred
differences, and against closed forms for the LSTM's additive cell path."""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor
from foveal.scratch.gradcheck import gradcheck
from foveal.scratch.ops.activation import sigmoid, tanh
from foveal.scratch.ops.linear import linear
from foveal.scratch.ops.recurrent import gru_cell, lstm_cell, rnn_cell
from foveal.scratch.ops.shape import concat
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


def cell_inputs(n, d, h, gates, bias=True):
    arrays = [rng.standard_normal((n, d)), rng.standard_normal((n, h)),
              rng.standard_normal((gates * h, d)) * 0.5, rng.standard_normal((gates * h, h)) * 0.5]
    if bias:
        arrays += [rng.standard_normal(gates * h), rng.standard_normal(gates * h)]
    return arrays


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_cell_matches_torch(nonlinearity, bias):
    theirs = torch.rnn_tanh_cell if nonlinearity == "tanh" else torch.rnn_relu_cell
    torch_check(lambda *a: rnn_cell(*a, nonlinearity=nonlinearity), theirs,
                cell_inputs(3, 5, 7, 1, bias)).assert_close(1e-8)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_matches_torch(bias):
    n, d, h = 3, 5, 7
    x, h0, *weights = cell_inputs(n, d, h, 4, bias)
    c0 = rng.standard_normal((n, h))

    def ours(x, h0, c0, *w):
        return concat(lstm_cell(x, (h0, c0), *w), axis=-1)

    def theirs(x, h0, c0, *w):
        return torch.cat(torch.lstm_cell(x, (h0, c0), *w), dim=-1)

    torch_check(ours, theirs, [x, h0, c0, *weights]).assert_close(1e-8)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_matches_torch(bias):
    torch_check(gru_cell, torch.gru_cell, cell_inputs(4, 3, 6, 3, bias)).assert_close(1e-8)


def test_cells_pass_gradcheck():
    assert gradcheck(lambda *a: rnn_cell(*a), cell_inputs(2, 3, 2, 1)).ok
    assert gradcheck(gru_cell, cell_inputs(2, 3, 2, 3)).ok
    x, h0, *w = cell_inputs(2, 3, 2, 4)
    c0 = rng.standard_normal((2, 2))
    result = gradcheck(lambda x, h, c, *w: concat(lstm_cell(x, (h, c), *w), axis=-1),
                       [x, h0, c0, *w])
    assert result.ok, result.errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cells_keep_the_input_dtype(dtype):
    x, h, *w = (a.astype(dtype) for a in cell_inputs(2, 3, 4, 4))
    h1, c1 = lstm_cell(x, (h, h), *w)
    assert h1.dtype == c1.dtype == dtype
    x, h, *w = (a.astype(dtype) for a in cell_inputs(2, 3, 4, 3))
    assert gru_cell(x, h, *w).dtype == dtype


def test_lstm_cell_gradient_to_c_is_the_forget_gate():
    """The additive cell path, closed form: with no gradient on h', ∂L/∂c = ∂L/∂c' ⊙ f."""
    n, d, h = 3, 4, 5
    x, h0, w_ih, w_hh, b_ih, b_hh = cell_inputs(n, d, h, 4)
    c = Tensor(rng.standard_normal((n, h)), requires_grad=True)
    _, c1 = lstm_cell(x, (h0, c), w_ih, w_hh, b_ih, b_hh)
    g = rng.standard_normal((n, h))
    c1.backward(g)
    pre = linear(x, w_ih, b_ih).data + linear(h0, w_hh, b_hh).data
    f = sigmoid(pre[:, h : 2 * h]).data
    np.testing.assert_allclose(c.grad, g * f, rtol=1e-14)


def test_gru_reset_gate_multiplies_projected_state_like_torch():
    """Pitfall: the original GRU (Cho et al. 2014) uses n = tanh(W_in x + W_hn (r ⊙ h)); torch and
    cuDNN use r ⊙ (W_hn h + b_hn). The two differ, and ours is torch's."""
    x, h, w_ih, w_hh, b_ih, b_hh = cell_inputs(3, 4, 5, 3)
    ours = gru_cell(x, h, w_ih, w_hh, b_ih, b_hh).data
    ref = torch.gru_cell(*(torch.as_tensor(a) for a in (x, h, w_ih, w_hh, b_ih, b_hh)))
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-12)
    hs = 5
    gx = linear(x, w_ih, b_ih).data
    gh = linear(h, w_hh, b_hh).data
    r = sigmoid(gx[:, :hs] + gh[:, :hs]).data
    z = sigmoid(gx[:, hs : 2 * hs] + gh[:, hs : 2 * hs]).data
    n_cho = tanh(gx[:, 2 * hs :] + (r * h) @ w_hh[2 * hs :].T + b_hh[2 * hs :]).data
    cho = (1 - z) * n_cho + z * h
    assert np.abs(cho - ours).max() > 1e-3


def test_cells_reject_bad_shapes_and_arguments():
    x, h, w_ih, w_hh, b_ih, b_hh = cell_inputs(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"lstm_cell: expected input \(N, D\) with D == "
                                         r"w_ih.shape\[1\] = 3, got \(2, 5\)"):
        lstm_cell(np.zeros((2, 5)), (h, h), w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match=r"lstm_cell: expected state \(N, H\) = \(2, 4\), "
                                         r"got \(2, 3\)"):
        lstm_cell(x, (h, np.zeros((2, 3))), w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match=r"gru_cell: expected w_ih \(3·H, D\)"):
        gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)  # 4H rows are not a multiple of 3·4
    with pytest.raises(ValueError, match=r"lstm_cell: expected b_hh of shape \(16,\)"):
        lstm_cell(x, (h, h), w_ih, w_hh, b_ih, b_hh[:-1])
    with pytest.raises(ValueError, match=r"rnn_cell: expected a floating-point input, got "
                                         r"dtype int64"):
        rnn_cell(np.zeros((2, 3), dtype=np.int64), h, w_ih[:4], w_hh[:4, :])
    with pytest.raises(ValueError, match=r"rnn_cell: nonlinearity must be one of .* 'sigmoid'"):
        rnn_cell(x, h, w_ih[:4], w_hh[:4], nonlinearity="sigmoid")
