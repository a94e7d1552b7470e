"""TransformerEncoderLayer against torch's ``nn.TransformerEncoderLayer(batch_first=True)`` in
float64 with the same weights: outputs, input and parameter gradients under autograd, for post-
and pre-norm, ReLU and GELU, padding and causal masks; plus centred differences.

torch is kept in train() mode with dropout = 0 for gradient comparisons (its eval-mode "fast
path" runs a fused kernel); the eval-mode comparison feeds inputs that require grad, which also
keeps torch off the fast path."""

import numpy as np
import pytest
import torch

from foveal.scratch.gradcheck import gradcheck
from foveal.scratch.layers.transformer import TransformerEncoderLayer
from foveal.scratch.torchcheck import module_check

rng = np.random.default_rng(0)


def pair(d_model=6, nhead=2, dim_feedforward=10, dropout=0.0, **kwargs):
    """Our layer and torch's, float64, ours holding torch's weights (norms and biases made
    non-trivial so they count)."""
    theirs = torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                              batch_first=True, **kwargs).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, **kwargs)
    ours.to(np.float64).load_state_dict(theirs.state_dict())
    return ours, theirs


def compare(ours, theirs, x, call_ours, call_theirs, tol=1e-8):
    """Output, input and parameter gradients against the torch twin (same weights, same r)."""
    module_check(ours, theirs, [x], call_ours, call_theirs).assert_close(tol)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_with_padding_matches_torch(norm_first, activation):
    ours, theirs = pair(norm_first=norm_first, activation=activation)
    x = rng.standard_normal((3, 5, 6))
    kpm = np.array([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    tkpm = torch.as_tensor(kpm)
    compare(ours, theirs, x, lambda x: ours(x, src_key_padding_mask=kpm),
            lambda x: theirs(x, src_key_padding_mask=tkpm))


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_encoder_layer_matches_torch(norm_first):
    """Ours builds the causal mask from is_causal; torch needs it as src_mask (a hint only)."""
    ours, theirs = pair(norm_first=norm_first)
    x = rng.standard_normal((2, 4, 6))
    blocked = torch.ones(4, 4, dtype=torch.bool).triu(1)
    compare(ours, theirs, x, lambda x: ours(x, is_causal=True),
            lambda x: theirs(x, src_mask=blocked, is_causal=True))


def test_eval_mode_ignores_dropout_like_torch():
    ours, theirs = pair(dropout=0.3)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 5, 6))
    compare(ours, theirs, x, ours, theirs)


def test_dropout_changes_the_output_in_training():
    ours, theirs = pair(dropout=0.3)
    theirs.eval()
    x = rng.standard_normal((2, 5, 6))
    ref = theirs(torch.tensor(x, requires_grad=True)).detach().numpy()
    assert np.abs(ours(x).data - ref).max() > 1e-3


def test_sequence_first_layout_matches_torch():
    theirs = torch.nn.TransformerEncoderLayer(4, 2, 8, 0.0, batch_first=False).double()
    ours = TransformerEncoderLayer(4, 2, 8, 0.0, batch_first=False).to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    compare(ours, theirs, rng.standard_normal((5, 2, 4)), ours, theirs)  # (L, N, E)


def test_state_dict_keys_match_torch():
    for bias in (True, False):
        ours = TransformerEncoderLayer(8, 2, 16, bias=bias)
        theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, bias=bias)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})


def test_input_gradient_passes_gradcheck():
    layer = TransformerEncoderLayer(4, 2, 6, 0.0, activation="gelu", norm_first=True,
                                    rng=np.random.default_rng(1)).to(np.float64)
    kpm = np.array([[False, False, True], [False, False, False]])
    x = rng.standard_normal((2, 3, 4))
    assert gradcheck(lambda x: layer(x, src_key_padding_mask=kpm), [x]).ok


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_keeps_the_dtype(dtype):
    layer = TransformerEncoderLayer(4, 2, 8).to(dtype)
    assert layer(rng.standard_normal((2, 3, 4)).astype(dtype)).dtype == dtype


def test_rejects_bad_activation_and_width():
    with pytest.raises(ValueError, match=r"activation must be one of \['relu', 'gelu'\] or a "
                                         r"callable, got 'tanh'"):
        TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected query, key, value"):
        TransformerEncoderLayer(4, 2, 8)(np.zeros((2, 3, 5), dtype=np.float32))
