"""Multi-head attention (Vaswani et al. 2017, §3.2.2), mirroring torch's ``nn.MultiheadAttention``.

With ``h`` heads of width ``d = E / h``::

    Qᵢ = X_q W_qᵢᵀ + b_qᵢ,   Kᵢ = X_k W_kᵢᵀ + b_kᵢ,   Vᵢ = X_v W_vᵢᵀ + b_vᵢ      (i = 1…h)
    headᵢ = softmax(Qᵢ Kᵢᵀ / √d + M) Vᵢ
    MultiHead(X_q, X_k, X_v) = [head₁, …, head_h] W_oᵀ + b_o

Each head attends in its own d-dimensional subspace; the h heads cost about as much as one head
of width E. The per-head projections are the row blocks of one (E, E) matrix per role, and
torch stacks the three roles into ``in_proj_weight`` (3E, E) = [W_q; W_k; W_v] when keys and
values have width E, or keeps ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim) and
``v_proj_weight`` (E, vdim) when they do not; ``in_proj_bias`` (3E,) = [b_q; b_k; b_v] and
``out_proj`` (a Linear E → E) either way. Parameter names, shapes and initialisation are
torch's: Xavier-uniform projections (over the stacked (3E, E) matrix), zero biases, and
``out_proj.weight`` initialised like any Linear.

Mask conventions differ between torch's two APIs, and this layer follows ``nn.MultiheadAttention``:
``key_padding_mask`` (N, S) and a boolean ``attn_mask`` use **True = do not attend** (padding,
future), the opposite of :func:`~foveal.scratch.ops.attention.scaled_dot_product_attention`'s
"True = may attend"; the layer inverts them before calling it. Floating masks are added to the
scores in both.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.init import xavier_uniform
from foveal.scratch.layers.linear import Linear
from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.attention import attention_weights, scaled_dot_product_attention
from foveal.scratch.ops.dropout import check_drop_probability
from foveal.scratch.ops.dropout import dropout as dropout_op
from foveal.scratch.ops.linear import linear, matmul
from foveal.scratch.ops.reduce import mean
from foveal.scratch.ops.shape import reshape, transpose
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor


class MultiheadAttention(Module):
    """Multi-head attention with torch's parameters (see the module docstring).

    Args:
        embed_dim: E, the width of queries and of the output.
        num_heads: h; E must be divisible by h.
        dropout: probability of dropping an attention weight (training mode only).
        bias: learn ``in_proj_bias`` and ``out_proj.bias``.
        kdim, vdim: widths of keys and values (E by default).
        batch_first: inputs (N, L, E) if True (the default here; torch's default is False),
            else (L, N, E).
        rng: the generator for the initial weights and the dropout masks.
        dtype: the parameters' dtype.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
        kdim: int | None = None, vdim: int | None = None, batch_first: bool = True, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim must be a positive multiple of num_heads, got "
                f"embed_dim={embed_dim}, num_heads={num_heads}"
            )
        check_drop_probability(dropout, "MultiheadAttention")
        self._rng = rng or np.random.default_rng()
        e = embed_dim
        self.embed_dim, self.num_heads, self.head_dim = e, num_heads, e // num_heads
        self.kdim, self.vdim = kdim or e, vdim or e
        self.dropout, self.batch_first = float(dropout), batch_first
        self._qkv_same_embed_dim = self.kdim == e and self.vdim == e
        # assignment order = torch's state-dict order
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(xavier_uniform((3 * e, e), self._rng).astype(dtype))
        else:
            self.q_proj_weight = Parameter(xavier_uniform((e, e), self._rng).astype(dtype))
            self.k_proj_weight = Parameter(xavier_uniform((e, self.kdim), self._rng).astype(dtype))
            self.v_proj_weight = Parameter(xavier_uniform((e, self.vdim), self._rng).astype(dtype))
        self.in_proj_bias = Parameter(np.zeros(3 * e, dtype=dtype)) if bias else None
        self.out_proj = Linear(e, e, bias, rng=self._rng, dtype=dtype)
        if bias:
            self.out_proj.bias.data[:] = 0

    def _projections(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._qkv_same_embed_dim:
            w, e = self.in_proj_weight, self.embed_dim
            return w[:e], w[e : 2 * e], w[2 * e :]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _check(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        widths = (self.embed_dim, self.kdim, self.vdim)
        ok = all(t.ndim == 3 and t.shape[-1] == w
                 for t, w in zip((query, key, value), widths, strict=True))
        ok = ok and query.shape[0] == key.shape[0] == value.shape[0]
        ok = ok and key.shape[1] == value.shape[1]
        if not ok:
            layout = "(N, L, E), (N, S, kdim), (N, S, vdim)"
            raise ValueError(
                f"MultiheadAttention: expected query, key, value {layout} with E = "
                f"{self.embed_dim}, kdim = {self.kdim}, vdim = {self.vdim} (batch first), got "
                f"{query.shape}, {key.shape}, {value.shape}"
            )

    def _mask(
        self, n: int, lq: int, lk: int, key_padding_mask: ArrayLike | None,
        attn_mask: ArrayLike | None, dtype: np.dtype,
    ) -> np.ndarray | None:
        """One mask in SDPA's convention (bool: True = may attend; float: added), broadcastable
        to (N, heads, L, S), from torch's MHA masks (bool: True = do not attend)."""
        parts: list[np.ndarray] = []
        if key_padding_mask is not None:
            kpm = np.asarray(key_padding_mask.data if isinstance(key_padding_mask, Tensor)
                             else key_padding_mask)
            if kpm.shape != (n, lk):
                raise ValueError(
                    f"MultiheadAttention: expected key_padding_mask (N, S) = {(n, lk)}, "
                    f"got {kpm.shape}"
                )
            parts.append(kpm[:, None, None, :])
        if attn_mask is not None:
            am = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
            if am.shape == (n * self.num_heads, lq, lk):
                am = am.reshape(n, self.num_heads, lq, lk)
            elif am.shape != (lq, lk):
                raise ValueError(
                    f"MultiheadAttention: expected attn_mask (L, S) = {(lq, lk)} or "
                    f"(N·heads, L, S) = {(n * self.num_heads, lq, lk)}, got {am.shape}"
                )
            parts.append(am)
        for m in parts:
            if m.dtype.kind not in "bf":
                raise ValueError(
                    f"MultiheadAttention: masks must be boolean or floating, got {m.dtype}"
                )
        if not parts:
            return None
        if all(m.dtype.kind == "b" for m in parts):
            blocked = parts[0] if len(parts) == 1 else parts[0] | parts[1]
            return ~blocked
        additive = sum(np.where(m, -np.inf, 0) if m.dtype.kind == "b" else m for m in parts)
        return np.asarray(additive, dtype=dtype)

    def forward(
        self, query: ArrayLike, key: ArrayLike, value: ArrayLike,
        key_padding_mask: ArrayLike | None = None, need_weights: bool = False,
        attn_mask: ArrayLike | None = None, average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from ``query`` (N, L, E) to ``key`` (N, S, kdim) / ``value`` (N, S, vdim).

        ``key_padding_mask`` (N, S): True = padding (ignored key). ``attn_mask`` (L, S) or
        (N·heads, L, S): bool True = may not attend, or float added to the scores.
        ``is_causal``: also apply the causal mask (unlike torch, where it is only a hint that
        ``attn_mask`` is causal and an ``attn_mask`` is required). A query with every key masked
        outputs ``out_proj.bias`` (its attention output is 0), as torch does with
        ``need_weights=False``; torch gives NaN with ``need_weights=True``, we do not.

        Returns the output (N, L, E); with ``need_weights=True`` (torch's default, not ours)
        ``(output, weights)``, the attention weights (after dropout, as torch) averaged over
        heads (N, L, S), or per head (N, heads, L, S) if not ``average_attn_weights``.
        """
        query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
        if not self.batch_first:
            query, key, value = (transpose(t, (1, 0, 2)) if t.ndim == 3 else t
                                 for t in (query, key, value))
        self._check(query, key, value)
        n, lq, lk = query.shape[0], query.shape[1], key.shape[1]
        h, d = self.num_heads, self.head_dim
        mask = self._mask(n, lq, lk, key_padding_mask, attn_mask, query.dtype)
        w_q, w_k, w_v = self._projections()
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            e = self.embed_dim
            b_q, b_k, b_v = (self.in_proj_bias[i * e : (i + 1) * e] for i in range(3))

        def heads(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
            """(N, L, ·) → projections split into heads (N, h, L, d)."""
            y = linear(x, w, b)
            return transpose(reshape(y, (n, x.shape[1], h, d)), (0, 2, 1, 3))

        q, k, v = heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v)
        p_drop = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            weights = attention_weights(q, k, mask, is_causal)
            if p_drop > 0:
                weights = dropout_op(weights, p_drop, True, self._rng)
            out = matmul(weights, v)
        else:
            out = scaled_dot_product_attention(q, k, v, mask, is_causal, p_drop, self._rng)
        out = reshape(transpose(out, (0, 2, 1, 3)), (n, lq, self.embed_dim))
        out = self.out_proj(out)
        if not self.batch_first:
            out = transpose(out, (1, 0, 2))
        if not need_weights:
            return out
        assert weights is not None
        return out, (mean(weights, axis=1) if average_attn_weights else weights)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
