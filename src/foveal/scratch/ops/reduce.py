"""Reductions: sum, mean and max over axes, with their backward rules.

- ``y = Σᵢ aᵢ`` copies ``g`` back to every summand: ``∂L/∂aᵢ = g``;
- ``y = (1/n) Σᵢ aᵢ`` → ``∂L/∂aᵢ = g / n``;
- **max routes**: ``y = maxᵢ aᵢ`` sends ``g`` to the arg-max only. With ties, the gradient goes to
  the first maximal element (the convention of ``torch.max(dim)``), so the total is preserved.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node

Axis = int | tuple[int, ...] | None


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _expand(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return g if keepdims else np.expand_dims(g, axes)


def sum(a: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """``Σ a`` over ``axis``: every summand receives ``g``."""
    a = as_tensor(a)
    axes = _axes(axis, a.ndim)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to(_expand(g, axes, keepdims), a.shape).copy(),)

    return node(a.data.sum(axis=axes, keepdims=keepdims), (a,), backward, "sum")


def mean(a: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: every element receives ``g / n``."""
    a = as_tensor(a)
    axes = _axes(axis, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes])) if axes else 1

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to(_expand(g, axes, keepdims) / n, a.shape).copy(),)

    return node(a.data.mean(axis=axes, keepdims=keepdims), (a,), backward, "mean")


def max(a: ArrayLike, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Max over one axis (or all). Max routes ``g`` to the first arg-max."""
    a = as_tensor(a)
    flat = a.data.reshape(-1) if axis is None else a.data
    ax = 0 if axis is None else axis % a.ndim
    idx = np.expand_dims(np.argmax(flat, axis=ax), ax)
    y = np.take_along_axis(flat, idx, axis=ax)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros_like(flat)
        if axis is None:
            g = np.reshape(g, idx.shape)
        elif not keepdims:
            g = np.expand_dims(g, ax)
        np.put_along_axis(grad, idx, g, axis=ax)
        return (grad.reshape(a.shape),)

    if axis is None:
        out = y.reshape((1,) * a.ndim) if keepdims else y.reshape(())
    else:
        out = y if keepdims else np.squeeze(y, ax)
    return node(out, (a,), backward, "max")
