"""MultiheadAttention against torch's ``nn.MultiheadAttention(batch_first=True)`` in float64 (same
weights through ``load_state_dict``): outputs, attention weights, input and parameter gradients
under autograd; plus centred differences and torch's initialisation rules."""

import numpy as np
import pytest
import torch

from foveal.scratch.gradcheck import gradcheck
from foveal.scratch.layers.attention import MultiheadAttention
from foveal.scratch.ops.shape import concat
from foveal.scratch.torchcheck import module_check

rng = np.random.default_rng(0)


def pair(embed_dim, num_heads, **kwargs):
    """Our layer and torch's, float64, ours holding torch's (random) weights."""
    theirs = torch.nn.MultiheadAttention(embed_dim, num_heads, batch_first=True, **kwargs)
    theirs = theirs.double()
    with torch.no_grad():  # torch zeroes the biases; make them count
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = MultiheadAttention(embed_dim, num_heads, **kwargs).to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def compare(ours, theirs, inputs, call_ours, call_theirs, tol=1e-8):
    """Output, input and parameter gradients against the torch twin (same weights, same r)."""
    module_check(ours, theirs, inputs, call_ours, call_theirs).assert_close(tol)


def test_self_attention_matches_torch():
    ours, theirs = pair(6, 3)
    x = rng.standard_normal((2, 5, 6))
    compare(ours, theirs, [x], lambda x: ours(x, x, x),
            lambda x: theirs(x, x, x, need_weights=False)[0])


def test_cross_attention_with_kdim_vdim_matches_torch():
    ours, theirs = pair(6, 2, kdim=4, vdim=5)
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    q, k, v = (rng.standard_normal(s) for s in [(3, 3, 6), (3, 7, 4), (3, 7, 5)])
    compare(ours, theirs, [q, k, v], lambda q, k, v: ours(q, k, v),
            lambda q, k, v: theirs(q, k, v, need_weights=False)[0])


@pytest.mark.parametrize("average", [True, False])
def test_masks_and_attention_weights_match_torch(average):
    """torch's MHA conventions: key_padding_mask and boolean attn_mask are True = do not attend."""
    ours, theirs = pair(4, 2)
    q, kv = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    kpm = np.array([[False] * 5, [False, False, False, True, True]])
    am = rng.random((3, 5)) < 0.3
    am[:, 0] = False
    tkpm, tam = torch.as_tensor(kpm), torch.as_tensor(am)

    def call_ours(q, kv):
        out, w = ours(q, kv, kv, key_padding_mask=kpm, need_weights=True, attn_mask=am,
                      average_attn_weights=average)
        return concat([out.reshape(-1), w.reshape(-1)])

    def call_theirs(q, kv):
        out, w = theirs(q, kv, kv, key_padding_mask=tkpm, need_weights=True, attn_mask=tam,
                        average_attn_weights=average)
        return torch.cat([out.reshape(-1), w.reshape(-1)])

    compare(ours, theirs, [q, kv], call_ours, call_theirs)


def test_float_per_head_attn_mask_matches_torch():
    ours, theirs = pair(6, 3)
    x = rng.standard_normal((2, 4, 6))
    am = rng.standard_normal((2 * 3, 4, 4))
    tam = torch.as_tensor(am)
    compare(ours, theirs, [x], lambda x: ours(x, x, x, attn_mask=am),
            lambda x: theirs(x, x, x, attn_mask=tam, need_weights=False)[0])


def test_key_padding_mask_true_marks_padding_not_keep():
    """Pitfall: MHA's key_padding_mask is True = PAD (torch), the inverse of SDPA's boolean mask
    (True = may attend). Invariance check: changing the padded keys and values changes nothing."""
    layer = MultiheadAttention(4, 2, rng=np.random.default_rng(2)).to(np.float64)
    q, kv = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    kpm = np.array([[False, False, False, True, True], [False, True, False, False, True]])
    kv2 = np.where(kpm[..., None], rng.standard_normal(kv.shape), kv)
    out = layer(q, kv, kv, key_padding_mask=kpm).data
    np.testing.assert_array_equal(layer(q, kv2, kv2, key_padding_mask=kpm).data, out)
    inverted = layer(q, kv2, kv2, key_padding_mask=~kpm).data
    assert np.abs(inverted - layer(q, kv, kv, key_padding_mask=~kpm).data).max() > 1e-3


def test_is_causal_alone_applies_the_causal_mask():
    """torch needs attn_mask with is_causal (a hint); ours builds the mask itself."""
    ours, theirs = pair(4, 2)
    x = rng.standard_normal((2, 5, 4))
    blocked = torch.ones(5, 5, dtype=torch.bool).triu(1)
    compare(ours, theirs, [x], lambda x: ours(x, x, x, is_causal=True),
            lambda x: theirs(x, x, x, attn_mask=blocked, is_causal=True, need_weights=False)[0])


def test_sequence_first_layout_matches_torch():
    theirs = torch.nn.MultiheadAttention(4, 2, batch_first=False).double()
    ours = MultiheadAttention(4, 2, batch_first=False).to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((5, 2, 4))  # (L, N, E)
    compare(ours, theirs, [x], lambda x: ours(x, x, x),
            lambda x: theirs(x, x, x, need_weights=False)[0])


def test_fully_padded_sequence_outputs_the_bias_without_nan():
    """Our choice: a query with nothing to attend gets a zero attention output, as torch's
    SDPA path (need_weights=False); torch's need_weights=True path gives NaN instead."""
    ours, theirs = pair(4, 2)
    x = rng.standard_normal((2, 3, 4))
    kpm = np.array([[False, False, True], [True, True, True]])
    out, w = ours(x, x, x, key_padding_mask=kpm, need_weights=True)
    ref = theirs(*(torch.as_tensor(x),) * 3, key_padding_mask=torch.as_tensor(kpm),
                 need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(out.data, ref, rtol=1e-12)
    np.testing.assert_allclose(out.data[1], np.broadcast_to(ours.out_proj.bias.data, (3, 4)))
    assert np.all(w.data[1] == 0) and np.all(np.isfinite(w.data))


def test_state_dict_keys_and_init_follow_torch():
    for kwargs in ({}, {"kdim": 3, "vdim": 5}, {"bias": False}):
        ours = MultiheadAttention(8, 2, rng=np.random.default_rng(0), **kwargs)
        theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True, **kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for k, v in ours.state_dict().items():
            assert v.shape == tuple(theirs.state_dict()[k].shape), k
        theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
    ours = MultiheadAttention(8, 2, rng=np.random.default_rng(0))
    assert np.all(ours.in_proj_bias.data == 0) and np.all(ours.out_proj.bias.data == 0)
    bound = np.sqrt(6 / (8 + 3 * 8))  # Xavier over the stacked (3E, E) matrix
    assert 0.9 * bound < np.abs(ours.in_proj_weight.data).max() <= bound


def test_dropout_acts_in_training_only():
    ours, theirs = pair(4, 2, dropout=0.5)
    x = rng.standard_normal((2, 6, 4))
    plain = ours(x, x, x).data
    ours.eval()
    theirs.eval()
    ref = theirs(*(torch.as_tensor(x),) * 3, need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(ours(x, x, x).data, ref, rtol=1e-12)
    assert np.abs(plain - ref).max() > 1e-3


def test_input_gradient_passes_gradcheck():
    layer = MultiheadAttention(4, 2, rng=np.random.default_rng(1)).to(np.float64)
    kpm = np.array([[False, False, True], [False, False, False]])
    x = rng.standard_normal((2, 3, 4))
    assert gradcheck(lambda x: layer(x, x, x, key_padding_mask=kpm, is_causal=True), [x]).ok


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_keeps_the_dtype(dtype):
    layer = MultiheadAttention(4, 2).to(dtype)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    out, w = layer(x, x, x, need_weights=True)
    assert out.dtype == w.dtype == dtype


def test_rejects_bad_configuration_and_shapes():
    with pytest.raises(ValueError, match=r"embed_dim must be a positive multiple of num_heads, "
                                         r"got embed_dim=6, num_heads=4"):
        MultiheadAttention(6, 4)
    layer = MultiheadAttention(4, 2)
    x = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"expected query, key, value .* got \(2, 3, 4\), "
                                         r"\(2, 3, 5\), \(2, 3, 4\)"):
        layer(x, np.zeros((2, 3, 5), dtype=np.float32), x)
    with pytest.raises(ValueError, match=r"expected key_padding_mask \(N, S\) = \(2, 3\), got "
                                         r"\(3, 2\)"):
        layer(x, x, x, key_padding_mask=np.zeros((3, 2), dtype=bool))
