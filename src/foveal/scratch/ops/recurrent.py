"""Recurrent cells: one time step of an Elman RNN, an LSTM and a GRU, in torch's conventions.

Each cell maps an input ``x`` (N, D) and the previous state to the next state, with torch's
weight layout: ``w_ih`` (G·H, D) and ``w_hh`` (G·H, H) stack the ``G`` gates' weights row-wise
in a fixed order, ``b_ih`` and ``b_hh`` (G·H,) likewise (both biases exist, as in torch and
cuDNN, although only their sum matters). Writing ``Wx + b`` for ``linear(x, W, b)``:

- **RNN** (Elman 1990), G = 1: ``h' = φ(W_ih x + b_ih + W_hh h + b_hh)``, φ = tanh or relu.
- **LSTM** (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000),
  G = 4 in the order ``(i, f, g, o)``::

      i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
      f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
      g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
      o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
      c' = f ⊙ c + i ⊙ g
      h' = o ⊙ tanh(c')

- **GRU** (Cho et al. 2014), G = 3 in the order ``(r, z, n)``, torch's variant in which the reset
  gate multiplies the *projected* state (``r ⊙ (W_hn h + b_hn)``, not ``W_hn (r ⊙ h)``)::

      r = σ(W_ir x + b_ir + W_hr h + b_hr)      reset gate
      z = σ(W_iz x + b_iz + W_hz h + b_hz)      update gate
      n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
      h' = (1 − z) ⊙ n + z ⊙ h

The cells are written with engine ops (``linear``, ``sigmoid``, ``tanh``, ``mul``, ``add``), so
their backward is the chain rule over those ops' local rules; unrolled over a sequence, the same
graph gives backpropagation through time. How the gradient flows back through the state is what
distinguishes the three:

- RNN: ``∂h'/∂h = diag(φ'(·)) W_hh`` — a matrix product and a squashing derivative at every step,
  so over T steps the gradient is multiplied by T such factors and explodes or vanishes
  (Bengio, Simard & Frasconi 1994; Pascanu et al. 2013).
- LSTM: ``∂c'/∂c = diag(f)`` — the cell path is *additive*: ``c'`` receives ``c`` through one
  elementwise product with the forget gate, with no weight matrix and no squashing, so
  ``∂c_T/∂c_t = Π_{s=t+1}^{T} diag(f_s)`` (plus the paths through ``h``) stays near 1 while the
  gates stay open (the "constant error carousel"). In the backward, the previous cell state
  receives ``∂L/∂c = (∂L/∂c' + ∂L/∂h' ⊙ o ⊙ (1 − tanh² c')) ⊙ f``.
- GRU: ``∂h'/∂h`` contains the direct term ``diag(z)`` (the same additive shortcut, gated by z)
  plus the paths through r, z and n.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.ops.activation import relu, sigmoid, tanh
from foveal.scratch.ops.linear import linear
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor

NONLINEARITIES = ("tanh", "relu")


def _check(
    op: str, gates: int, x: ArrayLike, states: tuple[ArrayLike, ...], w_ih: ArrayLike,
    w_hh: ArrayLike, b_ih: ArrayLike | None, b_hh: ArrayLike | None,
) -> tuple[Tensor, tuple[Tensor, ...], Tensor, Tensor, Tensor | None, Tensor | None]:
    """Wrap and validate one cell's arguments; every message names the op and the shapes."""
    dtype = x.dtype if isinstance(x, Tensor) else np.asarray(x).dtype
    if dtype.kind != "f":
        raise ValueError(f"{op}: expected a floating-point input, got dtype {dtype}")
    x = as_tensor(x)
    ts = tuple(as_tensor(s, x.dtype) for s in states)
    w_ih, w_hh = as_tensor(w_ih, x.dtype), as_tensor(w_hh, x.dtype)
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_hh.shape[0] % gates or w_ih.shape[0] != w_hh.shape[0]:
        raise ValueError(
            f"{op}: expected w_ih ({gates}·H, D) and w_hh ({gates}·H, H), got {w_ih.shape} and "
            f"{w_hh.shape}"
        )
    hidden = w_hh.shape[0] // gates
    if w_hh.shape[1] != hidden:
        raise ValueError(
            f"{op}: expected w_hh of shape ({gates * hidden}, {hidden}), got {w_hh.shape}"
        )
    if x.ndim != 2 or x.shape[1] != w_ih.shape[1]:
        raise ValueError(
            f"{op}: expected input (N, D) with D == w_ih.shape[1] = {w_ih.shape[1]}, "
            f"got {x.shape}"
        )
    for s in ts:
        if s.shape != (x.shape[0], hidden):
            raise ValueError(
                f"{op}: expected state (N, H) = {(x.shape[0], hidden)}, got {s.shape}"
            )
    biases = []
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            b = as_tensor(b, x.dtype)
            if b.shape != (gates * hidden,):
                raise ValueError(
                    f"{op}: expected {name} of shape ({gates * hidden},), got {b.shape}"
                )
        biases.append(b)
    return x, ts, w_ih, w_hh, biases[0], biases[1]


def _split(t: Tensor, gates: int) -> list[Tensor]:
    """The ``gates`` column blocks of (N, G·H), in order."""
    h = t.shape[-1] // gates
    return [t[:, k * h : (k + 1) * h] for k in range(gates)]


def rnn_cell(
    x: ArrayLike, h: ArrayLike, w_ih: ArrayLike, w_hh: ArrayLike,
    b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None, nonlinearity: str = "tanh",
) -> Tensor:
    """One Elman step, ``h' = φ(W_ih x + b_ih + W_hh h + b_hh)`` (torch's ``nn.RNNCell``).

    Shapes: x (N, D), h (N, H), w_ih (H, D), w_hh (H, H), biases (H,) → h' (N, H).
    ``nonlinearity`` φ is ``"tanh"`` or ``"relu"``. Backward (engine): with
    ``a = W_ih x + W_hh h + b`` and ``δ = ∂L/∂h' ⊙ φ'(a)``: ``∂L/∂h = δ W_hh``,
    ``∂L/∂x = δ W_ih``, ``∂L/∂W_hh = δᵀ h``, ``∂L/∂W_ih = δᵀ x``, ``∂L/∂b = Σₙ δ``.
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"rnn_cell: nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}"
        )
    x, (h,), w_ih, w_hh, b_ih, b_hh = _check("rnn_cell", 1, x, (h,), w_ih, w_hh, b_ih, b_hh)
    a = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)
    return tanh(a) if nonlinearity == "tanh" else relu(a)


def lstm_cell(
    x: ArrayLike, state: tuple[ArrayLike, ArrayLike], w_ih: ArrayLike, w_hh: ArrayLike,
    b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step (torch's ``nn.LSTMCell``): ``(h', c')`` from ``x`` and ``state = (h, c)``.

    Shapes: x (N, D), h and c (N, H), w_ih (4H, D), w_hh (4H, H), biases (4H,), gates stacked
    in the order (i, f, g, o); the equations are in the module docstring.

    Backward (engine): with ``δh = ∂L/∂h'`` and ``δc = ∂L/∂c'`` from the next step,
    ``δc_tot = δc + δh ⊙ o ⊙ (1 − tanh² c')``, then ``∂L/∂c = δc_tot ⊙ f`` (the additive cell
    path: one elementwise product, no matrix), ``∂L/∂i = δc_tot ⊙ g``, ``∂L/∂g = δc_tot ⊙ i``,
    ``∂L/∂f = δc_tot ⊙ c``, ``∂L/∂o = δh ⊙ tanh c'``; each gate's pre-activation gradient
    (times σ' or tanh') then flows to x, h and the weights as in :func:`rnn_cell`.
    """
    if not isinstance(state, tuple | list) or len(state) != 2:
        raise ValueError("lstm_cell: expected state = (h, c), a pair of (N, H) arrays")
    x, (h, c), w_ih, w_hh, b_ih, b_hh = _check(
        "lstm_cell", 4, x, tuple(state), w_ih, w_hh, b_ih, b_hh
    )
    gates = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)
    i, f, g, o = _split(gates, 4)
    i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    c_next = f * c + i * g
    h_next = o * tanh(c_next)
    return h_next, c_next


def gru_cell(
    x: ArrayLike, h: ArrayLike, w_ih: ArrayLike, w_hh: ArrayLike,
    b_ih: ArrayLike | None = None, b_hh: ArrayLike | None = None,
) -> Tensor:
    """One GRU step (torch's ``nn.GRUCell``): ``h'`` from ``x`` and ``h``.

    Shapes: x (N, D), h (N, H), w_ih (3H, D), w_hh (3H, H), biases (3H,), gates stacked in the
    order (r, z, n); the equations are in the module docstring.

    Backward (engine): ``∂L/∂h`` collects the direct path ``δh ⊙ z`` plus the paths through
    ``n`` (``δn = δh ⊙ (1 − z)``, then through ``r ⊙ (W_hn h + b_hn)``) and through the gates
    ``r`` and ``z`` (``∂L/∂z = δh ⊙ (h − n)``).
    """
    x, (h,), w_ih, w_hh, b_ih, b_hh = _check("gru_cell", 3, x, (h,), w_ih, w_hh, b_ih, b_hh)
    xr, xz, xn = _split(linear(x, w_ih, b_ih), 3)
    hr, hz, hn = _split(linear(h, w_hh, b_hh), 3)
    r = sigmoid(xr + hr)
    z = sigmoid(xz + hz)
    n = tanh(xn + r * hn)
    return (1 - z) * n + z * h
