"""Scaled dot-product attention against torch's ``F.scaled_dot_product_attention`` under autograd
(float64), against centred differences, and against closed forms (masks, dropout)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foveal.scratch import Tensor
from foveal.scratch.gradcheck import gradcheck
from foveal.scratch.ops.attention import (
    attention_weights,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)


def qkv(batch, lq, lk, dk, dv):
    return [rng.standard_normal((*batch, lq, dk)), rng.standard_normal((*batch, lk, dk)),
            rng.standard_normal((*batch, lk, dv))]


def random_mask(shape):
    """A boolean "may attend" mask in which every query keeps at least one key."""
    m = rng.random(shape) < 0.6
    m[..., rng.integers(shape[-1])] = True
    return m


@pytest.mark.parametrize(("batch", "lq", "lk", "dk", "dv"), [
    ((), 3, 3, 4, 4), ((2,), 5, 7, 3, 6), ((2, 3), 4, 5, 5, 2), ((1, 2), 1, 9, 7, 3),
])
def test_sdpa_matches_torch(batch, lq, lk, dk, dv):
    torch_check(scaled_dot_product_attention, F.scaled_dot_product_attention,
                qkv(batch, lq, lk, dk, dv)).assert_close(1e-8)


@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 5, 7), (2, 3, 5, 7)])
def test_sdpa_boolean_mask_matches_torch(mask_shape):
    mask = random_mask(mask_shape)
    tmask = torch.as_tensor(mask)
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tmask),
                qkv((2, 3), 5, 7, 4, 3)).assert_close(1e-8)


def test_sdpa_float_mask_is_added_like_torch():
    bias = rng.standard_normal((4, 6))
    bias[1, 2:] = -np.inf
    tbias = torch.as_tensor(bias)
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, bias),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tbias),
                qkv((2,), 4, 6, 3, 3)).assert_close(1e-8)


@pytest.mark.parametrize(("lq", "lk"), [(5, 5), (3, 6), (6, 4)])
def test_sdpa_causal_matches_torch_is_causal(lq, lk):
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, causal=True),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                qkv((2, 2), lq, lk, 3, 4)).assert_close(1e-8)


def test_sdpa_causal_and_mask_combine():
    mask = random_mask((2, 1, 5, 5))
    mask[..., 0] = True  # key 0 survives the causal mask in every row
    both = torch.as_tensor(mask & causal_mask(5))
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, causal=True),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=both),
                qkv((2, 3), 5, 5, 4, 4)).assert_close(1e-8)


def test_sdpa_explicit_scale_matches_torch():
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, scale=0.3),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3),
                qkv((3,), 4, 4, 5, 2)).assert_close(1e-8)


def test_sdpa_passes_gradcheck():
    mask = random_mask((2, 3, 4))
    assert gradcheck(scaled_dot_product_attention, qkv((2,), 3, 4, 2, 3)).ok
    assert gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask, causal=True),
                     qkv((2,), 3, 4, 2, 3)).ok


def test_attention_divides_scores_by_sqrt_dk():
    """Pitfall: the scores are scaled by 1/√d_k (eq. 1), not left unscaled, nor divided by d_k."""
    dk = 16
    q, k, v = qkv((2,), 4, 5, dk, 3)
    ref = F.scaled_dot_product_attention(*(torch.as_tensor(a) for a in (q, k, v))).numpy()
    np.testing.assert_allclose(scaled_dot_product_attention(q, k, v).data, ref, rtol=1e-12)
    for wrong in (1.0, 1.0 / dk):
        assert np.abs(scaled_dot_product_attention(q, k, v, scale=wrong).data - ref).max() > 1e-2


def test_causal_mask_uses_minus_inf_not_zero():
    """Pitfall: zeroing masked scores (S ⊙ M) leaves e⁰ = 1 in the softmax, so future keys leak.
    With −∞ the gradient of query i's output w.r.t. every future key and value is exactly 0."""
    L = 6
    q, k, v = (Tensor(a, requires_grad=True) for a in qkv((2,), L, L, 4, 3))
    out = scaled_dot_product_attention(q, k, v, causal=True)
    for i in range(L - 1):
        for t in (q, k, v):
            t.grad = None
        g = np.zeros(out.shape)
        g[:, i] = rng.standard_normal((2, 3))
        out.backward(g)
        assert np.all(k.grad[:, i + 1 :] == 0) and np.all(v.grad[:, i + 1 :] == 0)
        assert np.abs(v.grad[:, : i + 1]).min() > 0

    # the multiply-by-zero variant: changing a future value changes an earlier output
    def zeroed(q, k, v):
        s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) * causal_mask(L)
        p = np.exp(s - s.max(-1, keepdims=True))
        return (p / p.sum(-1, keepdims=True)) @ v

    v2 = v.data.copy()
    v2[:, -1] += 1.0
    leak = zeroed(q.data, k.data, v2)[:, 0] - zeroed(q.data, k.data, v.data)[:, 0]
    assert np.abs(leak).max() > 1e-3
    ours = scaled_dot_product_attention(q.data, k.data, v2, causal=True).data
    np.testing.assert_array_equal(ours[:, :-1], out.data[:, :-1])


def test_fully_masked_query_gives_zeros_not_nan():
    """A query with no allowed key outputs 0 and gets 0 gradient, with no NaN anywhere (plain
    softmax would give 0/0). Oracle: torch's SDPA, which does the same since 2.5 (older versions
    returned NaN), forward and gradients, for a boolean and a −∞ float mask."""
    q, k, v = qkv((2,), 4, 5, 3, 2)
    mask = random_mask((2, 4, 5))
    mask[1, 2] = False  # batch 1, query 2 sees nothing
    bias = np.where(mask, 0.0, -np.inf)
    for m in (mask, bias):
        tm = torch.as_tensor(m)
        res = torch_check(lambda q, k, v, m=m: scaled_dot_product_attention(q, k, v, m),
                          lambda q, k, v, tm=tm: F.scaled_dot_product_attention(q, k, v, tm),
                          [q, k, v])
        res.assert_close(1e-8)
    ts = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = scaled_dot_product_attention(*ts, mask)
    out.backward(rng.standard_normal(out.shape))
    assert np.all(out.data[1, 2] == 0) and np.all(ts[0].grad[1, 2] == 0)
    assert all(np.all(np.isfinite(t.grad)) for t in ts)
    w = attention_weights(q, k, mask).data
    assert np.all(w[1, 2] == 0)
    np.testing.assert_allclose(w.sum(-1)[mask.any(-1)], 1.0, rtol=1e-14)


def test_padding_mask_closed_form_and_use():
    m = padding_mask(np.array([3, 1, 4]), 4)
    assert m.shape == (3, 1, 1, 4) and m.dtype == bool
    np.testing.assert_array_equal(m[:, 0, 0], [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    tm = torch.as_tensor(m)
    torch_check(lambda q, k, v: scaled_dot_product_attention(q, k, v, m),
                lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=tm),
                qkv((3, 2), 5, 4, 3, 3)).assert_close(1e-8)


def test_causal_mask_is_lower_triangular_like_torch():
    for lq, lk in [(4, 4), (2, 5), (5, 2)]:
        ref = torch.ones(lq, lk, dtype=torch.bool).tril().numpy()
        np.testing.assert_array_equal(causal_mask(lq, lk), ref)


def test_dropout_zeroes_or_rescales_each_weight():
    """Closed form: with V = I the output is the dropped weights themselves, each either 0 or
    P / (1 − p)."""
    q, k, _ = qkv((2,), 6, 6, 4, 4)
    v = np.broadcast_to(np.eye(6), (2, 6, 6)).copy()
    p_drop = 0.4
    out = scaled_dot_product_attention(q, k, v, dropout_p=p_drop,
                                       rng=np.random.default_rng(1)).data
    weights = attention_weights(q, k).data
    kept = out != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out[kept], weights[kept] / (1 - p_drop), rtol=1e-14)
    again = scaled_dot_product_attention(q, k, v, dropout_p=p_drop, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again.data, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sdpa_keeps_the_input_dtype(dtype):
    q, k, v = (a.astype(dtype) for a in qkv((2,), 3, 4, 2, 2))
    assert scaled_dot_product_attention(q, k, v, causal=True).dtype == dtype
    assert scaled_dot_product_attention(q, k, v, random_mask((3, 4))).dtype == dtype


def test_sdpa_rejects_bad_inputs():
    q, k, v = qkv((2,), 3, 4, 5, 2)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: expected q \(…, Lq, "
                                         r"d_k\), .* got \(2, 3, 5\), \(2, 4, 4\), \(2, 4, 2\)"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 5\) does not broadcast"):
        scaled_dot_product_attention(q, k, v, np.ones((3, 5), dtype=bool))
    with pytest.raises(ValueError, match=r"mask must be boolean .* got dtype int64"):
        scaled_dot_product_attention(q, k, v, np.ones((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"expected floating-point q, got dtype int64"):
        scaled_dot_product_attention(q.astype(np.int64), k, v)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: p \(the probability "
                                         r"of dropping\) must be in \[0, 1\), got 1.0"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match=r"padding_mask: expected 0 <= lengths <= L = 3"):
        padding_mask(np.array([1, 4]), 3)
