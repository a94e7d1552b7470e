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

:func:`activation_statistics` measures the point empirically: the per-layer activation std of
a deep tanh or ReLU stack under each initialiser (and two baselines that ignore the fan).
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

# Baselines for the activation-statistics experiment: a "naive" small Gaussian, as in many early
# tutorials, and a unit Gaussian that ignores the fan altogether.
NAIVE_STD = 0.01
BASELINES = {"naive": NAIVE_STD, "unit_normal": 1.0}
NONLINEARITIES = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}


def activation_statistics(
    init_name: str, nonlinearity: str, depth: int = 20, width: int = 256, batch: int = 512,
    seed: int = 0,
) -> np.ndarray:
    """Standard deviation of the activations through a deep stack, layer by layer.

    A batch ``x₀`` (batch, width) of i.i.d. N(0, 1) inputs goes through ``depth`` square layers
    ``x_{l+1} = φ(x_l W_lᵀ)`` (no bias), W_l (width, width) drawn by ``init_name`` and φ the
    ``nonlinearity`` (``"tanh"``, ``"relu"`` or ``"linear"``). Returns the (depth + 1,) array
    ``[std(x₀), std(x₁), …, std(x_depth)]`` (over all batch elements and units).

    ``init_name`` is a key of :data:`INITIALISERS` (Kaiming with its ReLU gain, whatever φ) or
    a baseline: ``"naive"`` = N(0, 0.01²), ``"unit_normal"`` = N(0, 1). With width = fan = 256 the
    per-layer gain of the pre-activation variance is fan·σ²: 2 for Kaiming, 1 for Xavier and
    LeCun (square layers), 0.0256 for naive and 256 for unit_normal — so for ReLU (which then
    halves the second moment) only Kaiming keeps the scale, and for tanh (slope 1 at 0) the
    naive init vanishes and unit_normal saturates at ±1.
    """
    if init_name not in INITIALISERS and init_name not in BASELINES:
        names = ", ".join([*INITIALISERS, *BASELINES])
        raise ValueError(f"activation_statistics: unknown init_name {init_name!r}; valid: "
                         f"{names}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"activation_statistics: nonlinearity must be one of "
                         f"{', '.join(NONLINEARITIES)}, got {nonlinearity!r}")
    if depth < 1 or width < 1 or batch < 2:
        raise ValueError(f"activation_statistics: need depth >= 1, width >= 1, batch >= 2, got "
                         f"depth={depth}, width={width}, batch={batch}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    stds = [float(x.std())]
    for _ in range(depth):
        shape = (width, width)
        if init_name in BASELINES:
            w = rng.normal(0.0, BASELINES[init_name], size=shape)
        else:
            w = INITIALISERS[init_name](shape, rng)
        x = NONLINEARITIES[nonlinearity](x @ w.T)
        stds.append(float(x.std()))
    return np.array(stds)
