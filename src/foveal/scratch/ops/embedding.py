"""Embedding lookup and the sinusoidal positional encoding of the Transformer.

- embedding: ``y[…, :] = W[i[…], :]`` for an integer index array i (any shape) and a table
  W (V, D). It is a gather, so its backward is a scatter-add: ``∂L/∂W[v] = Σ_{…: i[…] = v}
  g[…]`` — a row looked up k times receives the sum of its k gradients (copies sum).
- sinusoidal_positional_encoding (Vaswani et al. 2017, "Attention Is All You Need", §3.5):

      PE[pos, 2i]     = sin(pos / base^{2i/d}),
      PE[pos, 2i + 1] = cos(pos / base^{2i/d}),      base = 10000.

  Each pair (2i, 2i + 1) is a point on a circle turning at frequency ω_i = base^{−2i/d}, so
  PE[pos + k] is PE[pos] rotated by the angle k·ω_i in every pair: a fixed linear map that
  depends on the offset k only.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node


def embedding(indices: ArrayLike, weight: ArrayLike, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight`` (V, D): integer ``indices`` of any shape → (*indices, D).

    As ``torch.nn.functional.embedding``. With ``padding_idx`` the row at that index gets no
    gradient (its output still reads the row). Indices outside [0, V) raise ValueError (no
    negative indexing from the end).

    Backward: scatter-add of ``g`` (…, D) into a zero (V, D) array at the looked-up rows;
    repeated indices accumulate.
    """
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    weight = as_tensor(weight)
    if weight.dtype.kind != "f" or weight.ndim != 2:
        raise ValueError(f"embedding: expected a floating weight (V, D), got shape "
                         f"{weight.shape} and dtype {weight.dtype}")
    rows = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= rows):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ValueError(f"embedding: index {int(bad)} is out of range for a table of {rows} "
                         f"rows (valid: 0 … {rows - 1})")
    if padding_idx is not None and not 0 <= padding_idx < rows:
        raise ValueError(f"embedding: padding_idx must be in [0, {rows}), got {padding_idx}")
    flat = idx.reshape(-1)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.zeros_like(weight.data)
        np.add.at(grad, flat, g.reshape(-1, weight.shape[1]))  # repeated rows accumulate
        if padding_idx is not None:
            grad[padding_idx] = 0
        return (grad,)

    return node(weight.data[idx], (weight,), backward, "embedding")


def sinusoidal_positional_encoding(
    length: int, dim: int, base: float = 10000.0, dtype: type = np.float32
) -> np.ndarray:
    """The (length, dim) table ``PE[pos, 2i] = sin(pos ω_i)``, ``PE[pos, 2i+1] = cos(pos ω_i)``
    with ``ω_i = base^{−2i/dim}`` (Vaswani et al. 2017, §3.5). Computed in float64, returned in
    ``dtype``. ``dim`` must be even (sin/cos pairs)."""
    if length < 0:
        raise ValueError(f"sinusoidal_positional_encoding: length must be >= 0, got {length}")
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal_positional_encoding: dim must be even and >= 2 (sin/cos "
                         f"pairs), got {dim}")
    if not base > 0:
        raise ValueError(f"sinusoidal_positional_encoding: base must be positive, got {base}")
    omega = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)  # (dim/2,)
    angle = np.arange(length, dtype=np.float64)[:, None] * omega  # (length, dim/2)
    pe = np.empty((length, dim), dtype=np.float64)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe.astype(dtype)
