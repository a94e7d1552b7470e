"""Shape ops: reshape, transpose, concatenate, stack, slice (indexing) and pad.

They move values without changing them, so their backward rules move the gradient back:
reshape reshapes it, transpose applies the inverse permutation, concatenate splits it, and an
index or slice scatters it into zeros (adding where an index repeats: copies sum).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node


def reshape(a: ArrayLike, shape: Sequence[int]) -> Tensor:
    """``a`` with a new shape (same number of elements, row-major order)."""
    a = as_tensor(a)
    shape = tuple(int(s) for s in shape)
    try:
        y = a.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape shape {a.shape} ({a.size} elements) into {shape}"
        ) from None
    return node(y, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def flatten(a: ArrayLike, start_axis: int = 1) -> Tensor:
    """Merge axes ``start_axis…`` into one: (N, C, H, W) → (N, C·H·W) by default."""
    a = as_tensor(a)
    return reshape(a, (*a.shape[:start_axis], -1))


def transpose(a: ArrayLike, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them by default); the backward applies the inverse permutation."""
    a = as_tensor(a)
    perm = tuple(range(a.ndim))[::-1] if axes is None else tuple(axes)
    if sorted(p % max(a.ndim, 1) for p in perm) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {perm} are not a permutation of {a.ndim} axes")
    inverse = tuple(np.argsort(perm))
    return node(a.data.transpose(perm), (a,), lambda g: (g.transpose(inverse),), "transpose")


def concat(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along ``axis``; the backward splits ``g`` at the same boundaries."""
    ts = [as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("concat: expected at least one tensor, got none")
    try:
        y = np.concatenate([t.data for t in ts], axis=axis)
    except ValueError as err:
        shapes = ", ".join(str(t.shape) for t in ts)
        raise ValueError(f"concat: shapes {shapes} do not match off axis {axis}") from err
    bounds = np.cumsum([t.shape[axis] for t in ts])[:-1]

    def backward(g: np.ndarray) -> list[np.ndarray]:
        return np.split(g, bounds, axis=axis)

    return node(y, ts, backward, "concat")


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join along a new ``axis``."""
    ts = [as_tensor(t) for t in tensors]
    expanded = [reshape(t, (*t.shape[: axis % (t.ndim + 1)], 1, *t.shape[axis % (t.ndim + 1):]))
                for t in ts]
    return concat(expanded, axis=axis)


def getitem(a: ArrayLike, index: Any) -> Tensor:
    """``a[index]`` for slices and integer/boolean arrays; the backward scatters ``g`` back,
    adding where an index repeats."""
    a = as_tensor(a)
    if isinstance(index, Tensor):
        index = index.data.astype(np.int64)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros_like(a.data)
        np.add.at(grad, index, g)
        return (grad,)

    return node(a.data[index], (a,), backward, "getitem")


def pad2d(a: ArrayLike, padding: int | tuple[int, int]) -> Tensor:
    """Zero-pad the last two axes of (…, H, W) by ``padding`` (one value, or (ph, pw))."""
    a = as_tensor(a)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    if ph < 0 or pw < 0:
        raise ValueError(f"pad2d: expected non-negative padding, got {(ph, pw)}")
    if ph == pw == 0:
        return a
    widths = [(0, 0)] * (a.ndim - 2) + [(ph, ph), (pw, pw)]
    y = np.pad(a.data, widths)
    h, w = a.shape[-2:]
    return node(y, (a,), lambda g: (g[..., ph : ph + h, pw : pw + w],), "pad2d")
