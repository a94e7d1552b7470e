"""Elementwise arithmetic and its local gradient rules.

For ``y = f(a, b)`` applied elementwise with NumPy broadcasting, the backward rule multiplies the
upstream gradient ``g = ∂L/∂y`` by the local derivative and sums over broadcast axes
(:func:`~foveal.scratch.tensor.unbroadcast`). The gate rules that make backprop easy to do by
hand are visible here:

- **add distributes**: ``y = a + b`` → ``∂L/∂a = g``, ``∂L/∂b = g``;
- **multiply swaps**: ``y = a · b`` → ``∂L/∂a = g · b``, ``∂L/∂b = g · a``;
- ``y = a / b`` → ``∂L/∂a = g / b``, ``∂L/∂b = −g · a / b²``;
- ``y = exp(a)`` → ``g · y``;  ``y = log(a)`` → ``g / a``;  ``y = aᵖ`` → ``g · p aᵖ⁻¹``.

(``max`` routes, in :mod:`foveal.scratch.ops.reduce`; copies sum, in the engine.)
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node, unbroadcast


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[Tensor, Tensor]:
    dtype = a.dtype if isinstance(a, Tensor) else b.dtype if isinstance(b, Tensor) else None
    return as_tensor(a, dtype), as_tensor(b, dtype)


def add(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a + b`` (broadcasting). Add distributes: both inputs receive ``g`` unchanged."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)

    return node(a.data + b.data, (a, b), backward, "add")


def sub(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a − b``: ``∂L/∂a = g``, ``∂L/∂b = −g``."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)

    return node(a.data - b.data, (a, b), backward, "sub")


def mul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a · b``. Multiply swaps: ``∂L/∂a = g · b`` and ``∂L/∂b = g · a``."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        ga = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return ga, gb

    return node(a.data * b.data, (a, b), backward, "mul")


def div(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a / b``: ``∂L/∂a = g / b``, ``∂L/∂b = −g · a / b²``."""
    a, b = _pair(a, b)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        ga = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None
        return ga, gb

    return node(a.data / b.data, (a, b), backward, "div")


def neg(a: ArrayLike) -> Tensor:
    """``−a``: ``∂L/∂a = −g``."""
    a = as_tensor(a)
    return node(-a.data, (a,), lambda g: (-g,), "neg")


def power(a: ArrayLike, exponent: float) -> Tensor:
    """``aᵖ`` for a constant ``p``: ``∂L/∂a = g · p · aᵖ⁻¹``."""
    a = as_tensor(a)
    p = float(exponent)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * p * a.data ** (p - 1),)

    return node(a.data**p, (a,), backward, "power")


def exp(a: ArrayLike) -> Tensor:
    """``eᵃ``: ``∂L/∂a = g · eᵃ`` (the output itself)."""
    a = as_tensor(a)
    y = np.exp(a.data)
    return node(y, (a,), lambda g: (g * y,), "exp")


def log(a: ArrayLike) -> Tensor:
    """Natural log: ``∂L/∂a = g / a``."""
    a = as_tensor(a)
    return node(np.log(a.data), (a,), lambda g: (g / a.data,), "log")


def sqrt(a: ArrayLike) -> Tensor:
    """``√a``: ``∂L/∂a = g / (2√a)``."""
    a = as_tensor(a)
    y = np.sqrt(a.data)
    return node(y, (a,), lambda g: (g / (2 * y),), "sqrt")


def abs(a: ArrayLike) -> Tensor:
    """``|a|``: ``∂L/∂a = g · sign(a)`` (0 at 0, as torch)."""
    a = as_tensor(a)
    return node(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),), "abs")


def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise ``max(a, b)``. Max routes: ``g`` goes to the larger input; ties split it
    equally, as torch does."""
    a, b = _pair(a, b)
    y = np.maximum(a.data, b.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wa = (a.data > b.data) + 0.5 * (a.data == b.data)
        return unbroadcast(g * wa, a.shape), unbroadcast(g * (1 - wa), b.shape)

    return node(y, (a, b), backward, "maximum")


def where(condition: np.ndarray, a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a`` where ``condition`` else ``b``; the gradient is routed the same way."""
    a, b = _pair(a, b)
    cond = np.asarray(condition, dtype=bool)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ga, gb = np.where(cond, g, 0), np.where(cond, 0, g)
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)

    return node(np.where(cond, a.data, b.data), (a, b), backward, "where")
