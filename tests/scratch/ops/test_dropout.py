"""Dropout and DropConnect (ops and the Dropout / DropConnectLinear layers) against torch autograd
with the mask reconstructed from our output, centred differences, the closed form of the
gradient, and sampling statistics."""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.layers.dropout import DropConnectLinear, Dropout
from foveal.scratch.ops.dropout import drop_connect, dropout
from foveal.scratch.ops.linear import linear
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 5)])
def test_dropout_matches_torch_given_the_same_mask(p, shape):
    # torch's generator differs from ours, so read the mask off our output (x ≠ 0 a.s.) and
    # replay it in torch: x · m / (1 − p)
    x = rng.standard_normal(shape)
    mask = dropout(x, p, rng=np.random.default_rng(1)).data != 0
    torch_check(
        lambda x: dropout(x, p, rng=np.random.default_rng(1)),
        lambda x: x * torch.as_tensor(mask, dtype=x.dtype) / (1 - p),
        [x],
    ).assert_close(1e-8)


def test_dropout_matches_centred_differences():
    x = rng.standard_normal((3, 4))
    assert gradcheck(lambda x: dropout(x, 0.4, rng=np.random.default_rng(2)), [x]).ok


def test_dropout_mask_is_kept_for_backward():
    # the mistake: drawing a fresh mask in backward. Closed form: ∂L/∂x = m/(1 − p) ⊙ g with the
    # forward mask, exactly zero where the output was zeroed.
    p = 0.3
    x = Tensor(rng.standard_normal((20, 30)), requires_grad=True)
    y = dropout(x, p, rng=np.random.default_rng(3))
    g = rng.standard_normal(y.shape)
    y.backward(g)
    kept = y.data != 0
    np.testing.assert_array_equal(x.grad[~kept], 0.0)
    np.testing.assert_allclose(x.grad, kept * g / (1 - p), rtol=1e-15)
    np.testing.assert_allclose(y.data, kept * x.data / (1 - p), rtol=1e-15)


def test_dropout_drops_fraction_p_and_preserves_the_mean():
    # sampling statistics: P(drop) = p, E[y] = x for inverted dropout (5-sigma bounds)
    p, n = 0.3, 200_000
    x = np.ones(n)
    y = dropout(x, p, rng=np.random.default_rng(4)).data
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)
    assert set(np.unique(y)) <= {0.0, 1 / (1 - p)}


def test_dropout_is_identity_in_eval_and_at_p_zero():
    x = Tensor(rng.standard_normal((4, 5)))
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x


def test_dropout_keeps_float32():
    x = Tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    y = dropout(x, 0.5, rng=np.random.default_rng(0))
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_dropout_rejects_p_outside_unit_interval():
    x = rng.standard_normal(3)
    with pytest.raises(ValueError, match=r"dropout: p .* must be in \[0, 1\), got 1.*undefined"):
        dropout(x, 1.0)
    with pytest.raises(ValueError, match=r"dropout: p .* got -0.1"):
        dropout(x, -0.1)
    with pytest.raises(ValueError, match="dropout: expected a floating-point input"):
        dropout(np.arange(3), 0.5)
    with pytest.raises(ValueError, match=r"Dropout: p .* got 1.5"):
        Dropout(1.5)


# ------------------------------------------------------------------------------- DropConnect
def test_drop_connect_is_linear_with_the_masked_weight():
    # reference: torch F.linear with W ⊙ M / (1 − p), M read off a replayed draw
    p = 0.4
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    keep = np.random.default_rng(7).random(w.shape) >= p  # the same generator state as below
    torch_check(
        lambda x, w, b: drop_connect(x, w, b, p, rng=np.random.default_rng(7)),
        lambda x, w, b: torch.nn.functional.linear(x, w * torch.as_tensor(keep) / (1 - p), b),
        [x, w, b],
    ).assert_close(1e-8)


def test_drop_connect_matches_centred_differences_and_zeroes_dropped_weight_gradients():
    p = 0.5
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    fn = lambda x, w, b: drop_connect(x, w, b, p, rng=np.random.default_rng(8))  # noqa: E731
    assert gradcheck(fn, [x, w, b]).ok
    wt = Tensor(w, requires_grad=True)
    fn(x, wt, b).backward(np.ones((3, 2)))
    keep = np.random.default_rng(8).random(w.shape) >= p
    np.testing.assert_array_equal(wt.grad[~keep], 0.0)


def test_drop_connect_shares_one_mask_across_the_batch():
    # identical rows in, identical rows out: one weight mask per call, not per sample
    x = np.tile(rng.standard_normal((1, 6)), (4, 1))
    y = drop_connect(x, rng.standard_normal((5, 6)), p=0.5, rng=np.random.default_rng(9)).data
    np.testing.assert_array_equal(y, np.tile(y[:1], (4, 1)))


def test_drop_connect_in_eval_is_plain_linear_and_rejects_bad_shapes():
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    np.testing.assert_array_equal(drop_connect(x, w, p=0.5, training=False).data,
                                  linear(x, w).data)
    with pytest.raises(ValueError, match=r"drop_connect: expected x \(..., D\) and weight "
                                         r"\(M, D\), got \(2, 3\) and \(3, 4\)"):
        drop_connect(x, w.T)
    with pytest.raises(ValueError, match=r"drop_connect: p .* got 1"):
        drop_connect(x, w, p=1.0)


# ------------------------------------------------------------------------------------ layers
def test_dropout_layer_follows_train_and_eval_mode():
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = Tensor(np.ones((50, 40)))
    assert np.any(layer(x).data == 0)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x.data)
    assert layer.state_dict() == {} and not torch.nn.Dropout(0.5).state_dict()


def test_drop_connect_linear_state_dict_round_trips_with_torch_linear():
    ours = DropConnectLinear(4, 3, p=0.3, rng=np.random.default_rng(0)).to(np.float64)
    theirs = torch.nn.Linear(4, 3).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((5, 4))
    ours.eval()
    y = ours(Tensor(x))
    ref = theirs(torch.as_tensor(x))
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=1e-13)
    y.backward(np.ones(y.shape))
    ref.sum().backward()
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-13)
    theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
    ours.train()
    assert not np.allclose(ours(Tensor(x)).data, y.data)  # training draws a weight mask
