"""Softmax and log-softmax along one axis, computed stably, with their fused backward rules.

For a row ``x`` (the entries along ``axis``):

    softmax(x)ᵢ     = e^{xᵢ − m} / Σⱼ e^{xⱼ − m}
    log_softmax(x)ᵢ = (xᵢ − m) − log Σⱼ e^{xⱼ − m},        m = maxⱼ xⱼ

Subtracting the row max changes nothing mathematically (it cancels) but keeps every exponent
≤ 0, so ``e^{…}`` cannot overflow and the largest term is exactly 1 (the sum is ≥ 1, its log
finite). Logits of 1000 are fine.

Backward, with ``g = ∂L/∂y`` and the Jacobian ``∂yᵢ/∂xⱼ`` contracted by hand:

- softmax, ``∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ)``:        ``∂L/∂x = y ⊙ (g − Σⱼ gⱼ yⱼ)``;
- log-softmax, ``∂yᵢ/∂xⱼ = δᵢⱼ − softmaxⱼ``:  ``∂L/∂x = g − softmax(x) · Σⱼ gⱼ``.

Reference: Goodfellow, Bengio & Courville, *Deep Learning* (2016), section 4.1 (the max shift)
and section 6.2.2.3.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.ops.activation import _axis
from foveal.scratch.tensor import ArrayLike, Tensor, float_tensor, node


def _shifted(x: Tensor, axis: int, op: str) -> tuple[int, np.ndarray]:
    """``x − max(x)`` along ``axis`` as a new array (the input is never written to)."""
    if x.ndim == 0:
        raise ValueError(f"{op}: expected an input with at least one axis, got a scalar")
    ax = _axis(axis, x.ndim, op)
    if x.shape[ax] == 0:
        raise ValueError(f"{op}: axis {axis} of shape {x.shape} is empty")
    return ax, x.data - x.data.max(axis=ax, keepdims=True)


def softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """``e^{xᵢ} / Σⱼ e^{xⱼ}`` along ``axis`` (max-shifted; see the module docstring).

    Backward: ``y ⊙ (g − Σ g ⊙ y)`` along ``axis``.
    """
    x = float_tensor(x, "softmax")
    ax, z = _shifted(x, axis, "softmax")
    e = np.exp(z, out=z)  # z is our own temporary, not x.data
    y = e / e.sum(axis=ax, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (y * (g - np.sum(g * y, axis=ax, keepdims=True)),)

    return node(y, (x,), backward, "softmax")


def log_softmax(x: ArrayLike, axis: int = -1) -> Tensor:
    """``xᵢ − log Σⱼ e^{xⱼ}`` along ``axis``, as ``(x − m) − log Σ e^{x − m}``.

    Backward: ``g − softmax(x) · Σ g`` along ``axis``, with ``softmax = e^y``.
    """
    x = float_tensor(x, "log_softmax")
    ax, z = _shifted(x, axis, "log_softmax")
    y = z - np.log(np.exp(z).sum(axis=ax, keepdims=True))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g - np.exp(y) * g.sum(axis=ax, keepdims=True),)

    return node(y, (x,), backward, "log_softmax")
