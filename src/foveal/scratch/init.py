"""Weight initialisers and why they keep activation variance steady.

For a layer ``y = W x`` with ``fan_in`` inputs of unit variance and i.i.d. zero-mean weights of
variance ``σ²``, ``Var(y) = fan_in · σ² · Var(x)``. Choosing ``σ²`` keeps the signal's scale from
exploding or vanishing with depth:

- **LeCun** (LeCun et al. 1998, "Efficient BackProp"): ``σ² = 1 / fan_in`` — variance preserved
  for linear or tanh-like units near 0 (and SELU networks).
- **Xavier/Glorot** (Glorot & Bengio 2010): ``σ² = 2 / (fan_in + fan_out)`` — a compromise that
  preserves the forward variance and the backward gradient variance for tanh/linear units.
- **Kaiming/He** (He et al. 2015, "Delving deep into rectifiers"): ``σ² = gain² / fan``
  with ``gain² = 2 / (1 + a²)`` for (leaky) ReLU of slope ``a``: ReLU zeroes half of its inputs,
  halving the second moment, so the weights make up a factor 2.

A uniform ``U(−b, b)`` has variance ``b² / 3``, so each rule's uniform bound is ``b = √3 σ``.
For a convolution weight (out, in, kh, kw), ``fan_in = in · kh · kw`` and
``fan_out = out · kh · kw``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Shape = Sequence[int]


def fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` = (out, in, *kernel), torch's convention."""
    if len(shape) < 2:
        raise ValueError(f"fans: expected a weight with at least 2 axes, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def relu_gain(negative_slope: float = 0.0) -> float:
    """``√(2 / (1 + a²))``: the Kaiming gain for a (leaky) ReLU with slope ``a``."""
    return math.sqrt(2.0 / (1 + negative_slope**2))


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def xavier_uniform(shape: Shape, rng: np.random.Generator | None = None, gain: float = 1.0
                   ) -> np.ndarray:
    """``U(−b, b)``, ``b = gain · √(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(rng).uniform(-bound, bound, size=tuple(shape))


def xavier_normal(shape: Shape, rng: np.random.Generator | None = None, gain: float = 1.0
                  ) -> np.ndarray:
    """``N(0, σ²)``, ``σ = gain · √(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return _rng(rng).normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=tuple(shape))


def kaiming_uniform(shape: Shape, rng: np.random.Generator | None = None,
                    negative_slope: float = 0.0, mode: str = "fan_in") -> np.ndarray:
    """``U(−b, b)``, ``b = gain · √(3 / fan)``, gain = :func:`relu_gain`."""
    fan = _fan(shape, mode)
    bound = relu_gain(negative_slope) * math.sqrt(3.0 / fan)
    return _rng(rng).uniform(-bound, bound, size=tuple(shape))


def kaiming_normal(shape: Shape, rng: np.random.Generator | None = None,
                   negative_slope: float = 0.0, mode: str = "fan_in") -> np.ndarray:
    """``N(0, σ²)``, ``σ = gain / √fan``."""
    fan = _fan(shape, mode)
    return _rng(rng).normal(0.0, relu_gain(negative_slope) / math.sqrt(fan), size=tuple(shape))


def lecun_uniform(shape: Shape, rng: np.random.Generator | None = None) -> np.ndarray:
    """``U(−b, b)``, ``b = √(3 / fan_in)``."""
    bound = math.sqrt(3.0 / fans(shape)[0])
    return _rng(rng).uniform(-bound, bound, size=tuple(shape))


def lecun_normal(shape: Shape, rng: np.random.Generator | None = None) -> np.ndarray:
    """``N(0, 1 / fan_in)``."""
    return _rng(rng).normal(0.0, 1.0 / math.sqrt(fans(shape)[0]), size=tuple(shape))


def kaiming_uniform_linear(shape: Shape, rng: np.random.Generator | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """torch's default for ``nn.Linear`` and ``nn.ConvNd``: weight and bias both
    ``U(−1/√fan_in, 1/√fan_in)`` (Kaiming-uniform with a = √5). Returns (weight, bias)."""
    rng = _rng(rng)
    bound = 1.0 / math.sqrt(fans(shape)[0])
    weight = rng.uniform(-bound, bound, size=tuple(shape))
    bias = rng.uniform(-bound, bound, size=(shape[0],))
    return weight, bias


def _fan(shape: Shape, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


INITIALISERS = {
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "kaiming_uniform": kaiming_uniform,
    "kaiming_normal": kaiming_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
}
