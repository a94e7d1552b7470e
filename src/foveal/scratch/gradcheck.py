"""Numeric gradient checking by centred differences.

For a scalar ``L(x)``, the centred difference ``(L(x + h eᵢ) − L(x − h eᵢ)) / 2h`` approximates
``∂L/∂xᵢ`` with error O(h²). To check an op ``y = f(x₁, …, xₖ)`` with a tensor output we use
``L = Σ r ⊙ f(x)`` for a fixed random ``r``, so every output element contributes, and compare
the engine's backward against the numeric estimate with the relative error

    rel(a, n) = ‖a − n‖₂ / max(‖a‖₂ + ‖n‖₂, tiny)

(a norm ratio rather than an elementwise maximum, so entries whose true gradient is exactly 0,
where the numeric estimate is pure rounding noise, do not dominate).

Run it in float64: with h = 1e-6 a correct backward typically agrees to ~1e-8 or better, while
float32 rounding alone gives errors near 1e-3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from foveal.scratch.tensor import Tensor


def relative_error(a: np.ndarray, b: np.ndarray, tiny: float = 1e-300) -> float:
    """``‖a − b‖ / max(‖a‖ + ‖b‖, tiny)``; 0 for empty arrays or two zero arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / max(scale, tiny))


def numeric_gradient(loss: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """``∂loss/∂x`` by centred differences, perturbing ``x`` in place (restored afterwards)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = loss()
        flat[i] = old - h
        minus = loss()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


@dataclass(frozen=True)
class GradcheckResult:
    """Per-input maximum relative errors between backward and centred differences."""

    errors: tuple[float, ...]
    tolerance: float

    @property
    def ok(self) -> bool:
        return all(e <= self.tolerance for e in self.errors)

    @property
    def max_error(self) -> float:
        return max(self.errors, default=0.0)


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[np.ndarray],
    *,
    h: float = 1e-6,
    tolerance: float = 1e-6,
    seed: int = 0,
) -> GradcheckResult:
    """Compare ``fn``'s backward with centred differences for every input array.

    ``fn(*tensors)`` must be deterministic. ``inputs`` should be float64 arrays; they are
    wrapped as tensors requiring gradients and perturbed in place during the check.
    """
    arrays = [np.asarray(x) for x in inputs]
    for i, x in enumerate(arrays):
        if x.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} must be float64, got {x.dtype}")
    tensors = [Tensor(x, requires_grad=True) for x in arrays]
    out = fn(*tensors)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(r)
    analytic = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in tensors]

    def loss() -> float:
        return float(np.sum(r * fn(*[Tensor(x) for x in arrays]).data))

    pairs = zip(analytic, arrays, strict=True)
    errors = tuple(relative_error(a, numeric_gradient(loss, x, h)) for a, x in pairs)
    return GradcheckResult(errors, tolerance)
