"""Recurrent layers against torch's ``nn.RNNCell/LSTMCell/GRUCell`` and ``nn.RNN/LSTM/GRU``
(batch_first=True) in float64 with the same weights: outputs, final states, input, initial-state
and parameter gradients under autograd (backpropagation through time), torch's initialisation,
and gradient clipping against ``torch.nn.utils.clip_grad_norm_``."""

import numpy as np
import pytest
import torch

from foveal.scratch.layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from foveal.scratch.ops.shape import concat
from foveal.scratch.optim.clip import clip_grad_norm
from foveal.scratch.torchcheck import module_check

rng = np.random.default_rng(0)

CELLS = {"rnn_tanh": (RNNCell, torch.nn.RNNCell, {}),
         "rnn_relu": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
         "lstm": (LSTMCell, torch.nn.LSTMCell, {}), "gru": (GRUCell, torch.nn.GRUCell, {})}
SEQUENCES = {"rnn_tanh": (RNN, torch.nn.RNN, {}),
             "rnn_relu": (RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
             "lstm": (LSTM, torch.nn.LSTM, {}), "gru": (GRU, torch.nn.GRU, {})}


def flat(*tensors):
    """One vector from several outputs, so one comparison covers all of them."""
    if isinstance(tensors[0], torch.Tensor):
        return torch.cat([t.reshape(-1) for t in tensors])
    return concat([t.reshape(-1) for t in tensors])


def compare(ours, theirs, inputs, call_ours, call_theirs, tol=1e-8):
    """Output, input and parameter gradients against the torch twin (same weights, same r)."""
    module_check(ours, theirs, inputs, call_ours, call_theirs).assert_close(tol)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(kind, bias):
    ours_cls, theirs_cls, kw = CELLS[kind]
    ours = ours_cls(5, 3, bias, **kw).to(np.float64)
    theirs = theirs_cls(5, 3, bias, **kw).double()
    x, h = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    if kind == "lstm":
        c = rng.standard_normal((4, 3))
        compare(ours, theirs, [x, h, c], lambda x, h, c: flat(*ours(x, (h, c))),
                lambda x, h, c: flat(*theirs(x, (h, c))))
    else:
        compare(ours, theirs, [x, h], ours, theirs)
    compare(ours, theirs, [x], lambda x: flat(*ours(x)) if kind == "lstm" else ours(x),
            lambda x: flat(*theirs(x)) if kind == "lstm" else theirs(x))


@pytest.mark.parametrize("kind", list(SEQUENCES))
def test_two_layer_sequences_match_torch_through_time(kind):
    """Backpropagation through time over T = 7 steps and 2 layers, with given initial states."""
    ours_cls, theirs_cls, kw = SEQUENCES[kind]
    n, t, d, h, layers = 3, 7, 4, 5, 2
    ours = ours_cls(d, h, num_layers=layers, **kw).to(np.float64)
    theirs = theirs_cls(d, h, num_layers=layers, batch_first=True, **kw).double()
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((layers, n, h))
    if kind == "lstm":
        c0 = rng.standard_normal((layers, n, h))

        def call_ours(x, h0, c0):
            out, (h_n, c_n) = ours(x, (h0, c0))
            return flat(out, h_n, c_n)

        def call_theirs(x, h0, c0):
            out, (h_n, c_n) = theirs(x, (h0, c0))
            return flat(out, h_n, c_n)

        compare(ours, theirs, [x, h0, c0], call_ours, call_theirs)
    else:
        compare(ours, theirs, [x, h0], lambda x, h0: flat(*ours(x, h0)),
                lambda x, h0: flat(*theirs(x, h0)))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zero_initial_state_and_sequence_first_layout_match_torch(kind):
    ours_cls, theirs_cls, _ = SEQUENCES[kind]
    ours = ours_cls(3, 4, num_layers=2, batch_first=False).to(np.float64)
    theirs = theirs_cls(3, 4, num_layers=2, batch_first=False).double()
    x = rng.standard_normal((6, 2, 3))  # (T, N, D)

    def unpack(result):
        out, state = result
        return flat(out, *state) if kind == "lstm" else flat(out, state)

    compare(ours, theirs, [x], lambda x: unpack(ours(x)), lambda x: unpack(theirs(x)))


def test_state_dict_keys_and_init_follow_torch():
    for kwargs in ({}, {"bias": False}):
        ours = LSTM(3, 5, num_layers=2, rng=np.random.default_rng(0), **kwargs)
        theirs = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True, **kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
    bound = 1 / np.sqrt(50)
    for layer in (GRU(8, 50, rng=np.random.default_rng(0)),
                  RNNCell(8, 50, rng=np.random.default_rng(0))):
        for name, p in layer.named_parameters():
            assert 0.9 * bound < np.abs(p.data).max() <= bound, name


def test_bptt_exploding_gradient_is_clipped_like_torch():
    """A ReLU RNN with recurrent weight 1.5·I: the gradient grows like 1.5ᵀ through time. Our
    total norm equals torch's (oracle: ``clip_grad_norm_``), and clipping brings it to max_norm."""
    n, t, d, h = 2, 20, 3, 4
    theirs = torch.nn.RNN(d, h, nonlinearity="relu", batch_first=True).double()
    with torch.no_grad():
        theirs.weight_hh_l0.copy_(1.5 * torch.eye(h))
        theirs.bias_hh_l0.fill_(0.5)
    ours = RNN(d, h, nonlinearity="relu").to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    x = np.abs(rng.standard_normal((n, t, d)))
    ours(x)[0].sum().backward()
    theirs(torch.as_tensor(x))[0].sum().backward()
    max_norm = 1.0
    total = clip_grad_norm(ours.parameters(), max_norm)
    total_ref = float(torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm))
    assert total > 1e3 and abs(total - total_ref) <= 1e-10 * total_ref
    clipped = np.sqrt(sum(np.sum(p.grad**2) for p in ours.parameters()))
    assert clipped <= max_norm and clipped == pytest.approx(max_norm, rel=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, err_msg=name)


def test_dropout_between_layers_in_training_only():
    ours = GRU(3, 4, num_layers=2, dropout=0.5, rng=np.random.default_rng(0)).to(np.float64)
    theirs = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5, batch_first=True).double()
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((2, 5, 3))
    dropped = ours(x)[0].data
    ours.eval()
    theirs.eval()
    ref = theirs(torch.as_tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(ours(x)[0].data, ref, rtol=1e-12)
    assert np.abs(dropped - ref).max() > 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_keep_the_dtype(dtype):
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    out, (h_n, c_n) = LSTM(4, 5, num_layers=2).to(dtype)(x)
    assert out.dtype == h_n.dtype == c_n.dtype == dtype
    assert out.shape == (2, 3, 5) and h_n.shape == c_n.shape == (2, 2, 5)


def test_rejects_bad_shapes_and_arguments():
    layer = GRU(4, 5, num_layers=2)
    with pytest.raises(ValueError, match=r"GRU: expected input \(N, T, D\) with D == "
                                         r"input_size = 4 and N, T >= 1, got \(2, 3, 5\)"):
        layer(np.zeros((2, 3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"GRU: expected initial state \(num_layers, N, H\) = "
                                         r"\(2, 2, 5\), got \(1, 2, 5\)"):
        layer(np.zeros((2, 3, 4), dtype=np.float32), np.zeros((1, 2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"LSTM: num_layers must be >= 1, got 0"):
        LSTM(4, 5, num_layers=0)
    with pytest.raises(ValueError, match=r"RNN: nonlinearity must be one of .* got 'gelu'"):
        RNN(4, 5, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"LSTM: expected a floating-point input, got dtype"):
        LSTM(4, 5)(np.zeros((2, 3, 4), dtype=np.int64))
