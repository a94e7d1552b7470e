"""Recurrent layers: single cells and multi-layer sequence models, mirroring torch's ``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` (parameter names, shapes, gate order and initialisation).

The equations of one step are in :mod:`foveal.scratch.ops.recurrent`. A sequence layer unrolls
its cell over time, ``h_t = cell(x_t, h_{t−1})`` for t = 1…T, and stacks layers: layer ℓ + 1
reads layer ℓ's outputs ``h_1 … h_T`` as its input sequence (Graves, Mohamed & Hinton 2013,
"Speech recognition with deep recurrent neural networks", §2). The engine records the unrolled
graph, so ``backward`` is backpropagation through time (Werbos 1990): the gradient reaching
``h_{t−1}`` is the sum of the one from step t's cell and the one from layer ℓ + 1's use of
``h_{t−1}`` as an input (copies sum).

Parameters per layer ℓ (torch's names): ``weight_ih_l{ℓ}`` (G·H, D_ℓ), ``weight_hh_l{ℓ}``
(G·H, H), ``bias_ih_l{ℓ}``, ``bias_hh_l{ℓ}`` (G·H,), with ``D_0 = input_size``, ``D_ℓ = H``
above, and G = 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n). All are initialised
``U(−1/√H, 1/√H)`` as torch does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.dropout import check_drop_probability
from foveal.scratch.ops.dropout import dropout as dropout_op
from foveal.scratch.ops.recurrent import NONLINEARITIES, gru_cell, lstm_cell, rnn_cell
from foveal.scratch.ops.shape import stack, transpose
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor

State = Any  # a Tensor (RNN, GRU) or a pair of Tensors (LSTM)


def _uniform(shape: tuple[int, ...], hidden: int, rng: np.random.Generator, dtype: type
             ) -> Parameter:
    bound = 1.0 / math.sqrt(hidden)
    return Parameter(rng.uniform(-bound, bound, size=shape).astype(dtype))


def _check_sizes(name: str, input_size: int, hidden_size: int) -> None:
    if input_size < 1 or hidden_size < 1:
        raise ValueError(
            f"{name}: expected positive sizes, got input_size={input_size}, "
            f"hidden_size={hidden_size}"
        )


# ----------------------------------------------------------------------------- cells
class _Cell(Module):
    """One recurrent cell with torch's parameters ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``; subclasses set the gate count and the step function."""

    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        _check_sizes(type(self).__name__, input_size, hidden_size)
        rng = rng or np.random.default_rng()
        self.input_size, self.hidden_size = input_size, hidden_size
        gh = self.gates * hidden_size
        self.weight_ih = _uniform((gh, input_size), hidden_size, rng, dtype)
        self.weight_hh = _uniform((gh, hidden_size), hidden_size, rng, dtype)
        self.bias_ih = _uniform((gh,), hidden_size, rng, dtype) if bias else None
        self.bias_hh = _uniform((gh,), hidden_size, rng, dtype) if bias else None

    def _zeros(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(
                f"{type(self).__name__}: expected input (N, {self.input_size}), got {x.shape}"
            )
        return Tensor(np.zeros((x.shape[0], self.hidden_size), dtype=x.dtype))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class RNNCell(_Cell):
    """Elman cell ``h' = φ(W_ih x + b_ih + W_hh h + b_hh)``, as torch's ``nn.RNNCell``.

    ``forward(x (N, D), h (N, H) or None → zeros) -> h' (N, H)``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True,
        nonlinearity: str = "tanh", *, rng: np.random.Generator | None = None,
        dtype: type = np.float32,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNNCell: nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias, rng=rng, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, x: ArrayLike, h: ArrayLike | None = None) -> Tensor:
        x = as_tensor(x)
        h = self._zeros(x) if h is None else h
        return rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                        self.nonlinearity)


class LSTMCell(_Cell):
    """LSTM cell (gates i, f, g, o), as torch's ``nn.LSTMCell``.

    ``forward(x (N, D), (h, c) each (N, H), or None → zeros) -> (h', c')``.
    """

    gates = 4

    def forward(
        self, x: ArrayLike, state: tuple[ArrayLike, ArrayLike] | None = None
    ) -> tuple[Tensor, Tensor]:
        x = as_tensor(x)
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        return lstm_cell(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(_Cell):
    """GRU cell (gates r, z, n; torch's variant), as torch's ``nn.GRUCell``.

    ``forward(x (N, D), h (N, H) or None → zeros) -> h' (N, H)``.
    """

    gates = 3

    def forward(self, x: ArrayLike, h: ArrayLike | None = None) -> Tensor:
        x = as_tensor(x)
        h = self._zeros(x) if h is None else h
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


# ----------------------------------------------------------------------------- sequences
class _Recurrent(Module):
    """A stack of ``num_layers`` cells unrolled over time (see the module docstring)."""

    gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = True, dropout: float = 0.0, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_sizes(name, input_size, hidden_size)
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        check_drop_probability(dropout, name)
        self._rng = rng or np.random.default_rng()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bias = batch_first, float(dropout), bias
        gh = self.gates * hidden_size
        for layer in range(num_layers):
            d = input_size if layer == 0 else hidden_size
            # assignment order = torch's state-dict order: w_ih, w_hh, b_ih, b_hh per layer
            setattr(self, f"weight_ih_l{layer}", _uniform((gh, d), hidden_size, self._rng, dtype))
            setattr(self, f"weight_hh_l{layer}",
                    _uniform((gh, hidden_size), hidden_size, self._rng, dtype))
            if bias:
                setattr(self, f"bias_ih_l{layer}", _uniform((gh,), hidden_size, self._rng, dtype))
                setattr(self, f"bias_hh_l{layer}", _uniform((gh,), hidden_size, self._rng, dtype))

    # subclasses: one step of the cell, the hidden output of a state, and state ↔ (L, N, H)
    def _step(self, x: Tensor, state: State, weights: tuple[Any, ...]) -> State:
        raise NotImplementedError

    def _output(self, state: State) -> Tensor:
        return state

    def _weights(self, layer: int) -> tuple[Any, ...]:
        return (
            getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
            getattr(self, f"bias_ih_l{layer}", None), getattr(self, f"bias_hh_l{layer}", None),
        )

    def _initial(self, x: Tensor, hx: ArrayLike | None) -> list[Tensor]:
        """The per-layer initial hidden states from ``hx`` (L, N, H), or zeros."""
        n = x.shape[0]
        expected = (self.num_layers, n, self.hidden_size)
        if hx is None:
            zeros = np.zeros((n, self.hidden_size), dtype=x.dtype)
            return [Tensor(zeros) for _ in range(self.num_layers)]
        hx = as_tensor(hx, x.dtype)
        if hx.shape != expected:
            raise ValueError(
                f"{type(self).__name__}: expected initial state (num_layers, N, H) = {expected}, "
                f"got {hx.shape}"
            )
        return [hx[layer] for layer in range(self.num_layers)]

    def _unroll(
        self, x: ArrayLike, initial: Callable[[Tensor], list[State]]
    ) -> tuple[Tensor, list[State]]:
        name = type(self).__name__
        dtype = x.dtype if isinstance(x, Tensor) else np.asarray(x).dtype
        if dtype.kind != "f":
            raise ValueError(f"{name}: expected a floating-point input, got dtype {dtype}")
        x = as_tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.input_size or 0 in x.shape[:2]:
            layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
            raise ValueError(
                f"{name}: expected input {layout} with D == input_size = {self.input_size} and "
                f"N, T >= 1, got {x.shape}"
            )
        if not self.batch_first:
            x = transpose(x, (1, 0, 2))
        states = initial(x)
        finals: list[State] = []
        seq = x
        for layer in range(self.num_layers):
            weights = self._weights(layer)
            state = states[layer]
            outputs = []
            for t in range(seq.shape[1]):
                state = self._step(seq[:, t], state, weights)
                outputs.append(self._output(state))
            finals.append(state)
            seq = stack(outputs, axis=1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                seq = dropout_op(seq, self.dropout, True, self._rng)
        return (seq if self.batch_first else transpose(seq, (1, 0, 2))), finals

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}")


class RNN(_Recurrent):
    """Multi-layer Elman RNN, as torch's ``nn.RNN``.

    ``forward(x (N, T, D) [or (T, N, D) if not batch_first], h0 (L, N, H) or None)
    -> (output (N, T, H), h_n (L, N, H))``: ``output`` holds the last layer's ``h_t`` for every
    t, ``h_n`` every layer's final state. ``dropout`` (training only) acts on the outputs of every
    layer but the last, as torch.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1,
        nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = True,
        dropout: float = 0.0, *, rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"RNN: nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         rng=rng, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _step(self, x: Tensor, state: Tensor, weights: tuple[Any, ...]) -> Tensor:
        return rnn_cell(x, state, *weights, nonlinearity=self.nonlinearity)

    def forward(self, x: ArrayLike, h0: ArrayLike | None = None) -> tuple[Tensor, Tensor]:
        output, finals = self._unroll(x, lambda x: self._initial(x, h0))
        return output, stack(finals, axis=0)


class GRU(_Recurrent):
    """Multi-layer GRU, as torch's ``nn.GRU``; same interface as :class:`RNN`."""

    gates = 3

    def _step(self, x: Tensor, state: Tensor, weights: tuple[Any, ...]) -> Tensor:
        return gru_cell(x, state, *weights)

    def forward(self, x: ArrayLike, h0: ArrayLike | None = None) -> tuple[Tensor, Tensor]:
        output, finals = self._unroll(x, lambda x: self._initial(x, h0))
        return output, stack(finals, axis=0)


class LSTM(_Recurrent):
    """Multi-layer LSTM, as torch's ``nn.LSTM`` (no projection, unidirectional).

    ``forward(x (N, T, D), (h0, c0) each (L, N, H) or None) -> (output (N, T, H), (h_n, c_n))``.
    """

    gates = 4

    def _step(self, x: Tensor, state: tuple[Tensor, Tensor], weights: tuple[Any, ...]
              ) -> tuple[Tensor, Tensor]:
        return lstm_cell(x, state, *weights)

    def _output(self, state: tuple[Tensor, Tensor]) -> Tensor:
        return state[0]

    def forward(
        self, x: ArrayLike, state: tuple[ArrayLike, ArrayLike] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        def initial(x: Tensor) -> list[State]:
            if state is not None and (not isinstance(state, tuple | list) or len(state) != 2):
                raise ValueError("LSTM: expected state = (h0, c0), each (num_layers, N, H)")
            h0, c0 = (None, None) if state is None else state
            return list(zip(self._initial(x, h0), self._initial(x, c0), strict=True))

        output, finals = self._unroll(x, initial)
        h_n = stack([h for h, _ in finals], axis=0)
        c_n = stack([c for _, c in finals], axis=0)
        return output, (h_n, c_n)
