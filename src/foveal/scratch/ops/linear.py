"""Matrix product and the affine (fully connected) layer.

For ``Y = A B``: ``∂L/∂A = G Bᵀ`` and ``∂L/∂B = Aᵀ G`` (batched over leading axes).
For ``y = x Wᵀ + b`` with ``x`` (N, D), ``W`` (M, D), ``b`` (M,) — torch's ``nn.Linear``
layout: ``∂L/∂x = G W``, ``∂L/∂W = Gᵀ x``, ``∂L/∂b = Σₙ G``.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node, unbroadcast


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a @ b`` with NumPy's rules (2-D, or batched over leading axes; no 1-D operands)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: expected shapes (..., n, k) and (..., k, m), got {a.shape} and {b.shape}"
        )

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        ga = unbroadcast(g @ np.swapaxes(b.data, -1, -2), a.shape) if a.requires_grad else None
        gb = unbroadcast(np.swapaxes(a.data, -1, -2) @ g, b.shape) if b.requires_grad else None
        return ga, gb

    return node(a.data @ b.data, (a, b), backward, "matmul")


def linear(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> Tensor:
    """The affine map ``y = x Wᵀ + b``: x (..., D), W (M, D), b (M,) → y (..., M)."""
    x, weight = as_tensor(x), as_tensor(weight)
    b = as_tensor(bias) if bias is not None else None
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected x (..., D) and weight (M, D), got {x.shape} and {weight.shape}"
        )
    if b is not None and b.shape != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},), got {b.shape}")
    y = x.data @ weight.data.T
    if b is not None:
        y = y + b.data
    parents = (x, weight) if b is None else (x, weight, b)

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        g2 = g.reshape(-1, g.shape[-1])
        x2 = x.data.reshape(-1, x.shape[-1])
        grads: list[np.ndarray | None] = [
            g @ weight.data if x.requires_grad else None,
            g2.T @ x2 if weight.requires_grad else None,
        ]
        if b is not None:
            grads.append(g2.sum(axis=0))
        return grads

    return node(y, parents, backward, "linear")
