"""Embedding lookup (op and Embedding layer) against torch F.embedding / nn.Embedding and centred
differences; the sinusoidal positional encoding (op and layer) against its closed form
(Vaswani et al. 2017, §3.5)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foveal.scratch import Tensor, gradcheck
from foveal.scratch.layers.embedding import Embedding, SinusoidalPositionalEncoding
from foveal.scratch.ops.embedding import embedding, sinusoidal_positional_encoding
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


@pytest.mark.parametrize("index_shape", [(5,), (3, 4), (2, 3, 5), ()])
def test_embedding_matches_torch(index_shape):
    w = rng.standard_normal((7, 3))
    idx = rng.integers(0, 7, size=index_shape)
    torch_check(lambda w: embedding(idx, w),
                lambda w: F.embedding(torch.as_tensor(idx), w), [w]).assert_close(1e-8)


def test_embedding_backward_accumulates_repeated_indices():
    # the mistake: grad[idx] = g (assignment keeps only the last copy). Compare with torch.
    w = rng.standard_normal((5, 4))
    idx = np.array([[1, 3, 1], [1, 0, 3]])
    torch_check(lambda w: embedding(idx, w),
                lambda w: F.embedding(torch.as_tensor(idx), w), [w]).assert_close(1e-12)
    wt = Tensor(w, requires_grad=True)
    embedding(idx, wt).backward(np.ones((2, 3, 4)))
    np.testing.assert_array_equal(wt.grad[:, 0], [1, 3, 0, 2, 0])  # counts of each row


def test_embedding_matches_centred_differences():
    idx = np.array([[0, 2, 2], [3, 1, 0]])
    assert gradcheck(lambda w: embedding(idx, w), [rng.standard_normal((4, 3))]).ok


def test_embedding_padding_idx_gets_no_gradient_like_torch():
    w = rng.standard_normal((5, 3))
    idx = np.array([0, 2, 2, 4, 0])
    torch_check(lambda w: embedding(idx, w, padding_idx=2),
                lambda w: F.embedding(torch.as_tensor(idx), w, padding_idx=2),
                [w]).assert_close(1e-12)


def test_embedding_rejects_bad_indices():
    w = rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match=r"embedding: index 5 is out of range for a table of 5"):
        embedding(np.array([0, 5]), w)
    with pytest.raises(ValueError, match="embedding: index -1 is out of range"):
        embedding(np.array([-1, 2]), w)
    with pytest.raises(ValueError, match="embedding: indices must be integers, got dtype float"):
        embedding(np.array([0.0, 1.0]), w)
    with pytest.raises(ValueError, match=r"embedding: expected a floating weight \(V, D\)"):
        embedding(np.array([0]), np.ones(5))


def test_embedding_keeps_float32():
    w = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    y = embedding(np.array([1, 1, 2]), w)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and w.grad.dtype == np.float32


def test_embedding_layer_round_trips_with_torch_and_initialises_unit_normal():
    ours = Embedding(10, 4, rng=np.random.default_rng(0)).to(np.float64)
    theirs = torch.nn.Embedding(10, 4).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    idx = rng.integers(0, 10, size=(3, 5))
    y = ours(idx)
    ref = theirs(torch.as_tensor(idx))
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=1e-15)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ref.backward(torch.as_tensor(g))
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-13)
    # torch's nn.Embedding init is N(0, 1): mean 0, variance 1 (5-sigma bounds, 20k values)
    w = Embedding(1000, 20, rng=np.random.default_rng(1)).weight.data
    assert abs(w.mean()) < 5 / math.sqrt(w.size) and abs(w.var() - 1) < 5 * math.sqrt(2 / w.size)
    padded = Embedding(6, 3, padding_idx=-1, rng=np.random.default_rng(2))
    torch_padded = torch.nn.Embedding(6, 3, padding_idx=-1)
    assert padded.padding_idx == torch_padded.padding_idx == 5
    np.testing.assert_array_equal(padded.weight.data[5], 0.0)


# ------------------------------------------------------------------------ positional encoding
def test_positional_encoding_matches_hand_computed_entries():
    pe = sinusoidal_positional_encoding(50, 8, dtype=np.float64)
    assert pe.shape == (50, 8) and pe.dtype == np.float64
    np.testing.assert_array_equal(pe[0, 0::2], 0.0)  # sin 0
    np.testing.assert_array_equal(pe[0, 1::2], 1.0)  # cos 0
    # i = 0: frequency 1; pos = 1 → sin 1, cos 1
    assert pe[1, 0] == pytest.approx(0.8414709848078965, abs=1e-15)
    assert pe[1, 1] == pytest.approx(0.5403023058681398, abs=1e-15)
    # i = 1, d = 8: ω = 10000^(−2/8) = 0.1; pos = 3 → sin 0.3, cos 0.3
    assert pe[3, 2] == pytest.approx(0.29552020666133955, abs=1e-15)
    assert pe[3, 3] == pytest.approx(0.955336489125606, abs=1e-15)
    # i = 3: ω = 10000^(−6/8) = 0.001; pos = 40 → sin 0.04
    assert pe[40, 6] == pytest.approx(math.sin(0.04), abs=1e-15)
    assert sinusoidal_positional_encoding(4, 6).dtype == np.float32


def test_positional_encoding_shift_is_a_fixed_rotation_per_frequency_pair():
    # PE[pos + k] = R(k ω_i) PE[pos] in every pair (2i, 2i+1), the same R for every pos
    d, k = 16, 5
    pe = sinusoidal_positional_encoding(40, d, dtype=np.float64)
    omega = 10000.0 ** (-np.arange(0, d, 2) / d)
    c, s = np.cos(k * omega), np.sin(k * omega)
    sin_part, cos_part = pe[:-k, 0::2], pe[:-k, 1::2]
    np.testing.assert_allclose(pe[k:, 0::2], sin_part * c + cos_part * s, atol=1e-12)
    np.testing.assert_allclose(pe[k:, 1::2], cos_part * c - sin_part * s, atol=1e-12)


def test_positional_encoding_rejects_odd_dim():
    with pytest.raises(ValueError, match="sinusoidal_positional_encoding: dim must be even"):
        sinusoidal_positional_encoding(10, 7)


def test_positional_encoding_layer_adds_the_table_and_passes_the_gradient():
    layer = SinusoidalPositionalEncoding(6, max_len=20)
    x = Tensor(rng.standard_normal((2, 9, 6)), requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(
        y.data, x.data + sinusoidal_positional_encoding(9, 6, dtype=np.float64), rtol=1e-15)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    np.testing.assert_array_equal(x.grad, g)
    assert layer.state_dict() == {}
    assert layer(np.zeros((1, 3, 6), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match=r"expected input \(N, L, 6\) with L <= max_len = 20"):
        layer(np.zeros((1, 21, 6)))
