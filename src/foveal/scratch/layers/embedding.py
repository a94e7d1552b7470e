"""Embedding layers: a learned lookup table (:class:`Embedding`, as ``nn.Embedding``) and the
fixed sinusoidal positional encoding of Vaswani et al. 2017 (:class:`SinusoidalPositionalEncoding`).
The math is in :mod:`foveal.scratch.ops.embedding`.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.elementwise import add
from foveal.scratch.ops.embedding import embedding, sinusoidal_positional_encoding
from foveal.scratch.tensor import ArrayLike, Tensor


class Embedding(Module):
    """A table ``weight`` (num_embeddings, embedding_dim), initialised N(0, 1) as torch's
    ``nn.Embedding`` (not scaled by 1/√d); integer indices (…) → vectors (…, embedding_dim).
    With ``padding_idx`` that row starts at zero and receives no gradient."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding: expected positive sizes, got num_embeddings="
                             f"{num_embeddings}, embedding_dim={embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx %= num_embeddings  # torch counts a negative index from the end
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        rng = rng if rng is not None else np.random.default_rng()
        w = rng.standard_normal((num_embeddings, embedding_dim))
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w.astype(dtype))

    def forward(self, indices: ArrayLike) -> Tensor:
        return embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class SinusoidalPositionalEncoding(Module):
    """``y[n, l, :] = x[n, l, :] + PE[l, :]`` for x (N, L, D), L ≤ max_len, D = dim, with the
    fixed table of :func:`~foveal.scratch.ops.embedding.sinusoidal_positional_encoding`.

    The table is a constant recomputed from (max_len, dim), so it is kept out of the state dict
    (no parameters, no buffers). The gradient passes to x unchanged.
    """

    def __init__(self, dim: int, max_len: int = 5000, base: float = 10000.0) -> None:
        super().__init__()
        if max_len < 1:
            raise ValueError(f"SinusoidalPositionalEncoding: max_len must be positive, got "
                             f"{max_len}")
        self.dim, self.max_len, self.base = dim, max_len, base
        self.pe = sinusoidal_positional_encoding(max_len, dim, base, dtype=np.float64)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[2] != self.dim or x.shape[1] > self.max_len:
            raise ValueError(f"SinusoidalPositionalEncoding: expected input (N, L, {self.dim}) "
                             f"with L <= max_len = {self.max_len}, got {x.shape}")
        return add(x, self.pe[: x.shape[1]].astype(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.dim}, max_len={self.max_len}"
