"""Scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need", §3.2.1, eq. 1).

For queries Q (…, Lq, d_k), keys K (…, Lk, d_k) and values V (…, Lk, d_v)::

    S = Q Kᵀ · s + M          scores (…, Lq, Lk), s = 1/√d_k unless given
    P = softmax(S)            along the keys (last axis): each query's weights sum to 1
    O = P V                   (…, Lq, d_v)

Why ``1/√d_k``: if the entries of q and k are independent with mean 0 and variance 1, then
``q·k`` has variance ``d_k``; without the scale, large ``d_k`` pushes the softmax into saturation
where its gradient vanishes (§3.2.1, footnote 4).

Masks. ``M`` is 0 where query i may attend key j and −∞ where it may not, so ``e^{−∞} = 0``
removes the key from the softmax *and* from the gradient. (Multiplying scores by 0 instead
would leave ``e⁰ = 1`` and leak the masked keys.) A boolean ``mask`` follows torch's
``F.scaled_dot_product_attention``: **True = may attend**. ``causal=True`` lets query i attend
keys j ≤ i (top-left aligned when Lq ≠ Lk, as torch's ``is_causal``); with a mask as well,
both apply.

A query whose keys are *all* masked has no distribution to normalise (a plain softmax computes
0/0 = NaN). We define its weights and output as **0**, and its gradients as 0, so padded
positions never poison a batch with NaN. This matches torch's SDPA since 2.5 (its
"safe softmax"; earlier versions returned NaN); torch's ``nn.MultiheadAttention`` with
``need_weights=True`` still returns NaN there.

Backward (computed by the engine through matmul, softmax and where), with ``G = ∂L/∂O``::

    ∂L/∂V = Pᵀ G,    ∂L/∂P = G Vᵀ,    ∂L/∂S = P ⊙ (∂L/∂P − rowsum(∂L/∂P ⊙ P)),
    ∂L/∂Q = s · (∂L/∂S) K,    ∂L/∂K = s · (∂L/∂S)ᵀ Q

(masked entries have P = 0, hence ∂L/∂S = 0: no gradient reaches a masked key).
"""

from __future__ import annotations

import math

import numpy as np

from foveal.scratch.ops.dropout import check_drop_probability, dropout
from foveal.scratch.ops.elementwise import add, mul, where
from foveal.scratch.ops.linear import matmul
from foveal.scratch.ops.shape import transpose
from foveal.scratch.ops.softmax import softmax
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor


def causal_mask(lq: int, lk: int | None = None) -> np.ndarray:
    """Boolean (Lq, Lk), True where key j ≤ query i: the "no peeking ahead" mask of a decoder.

    Top-left aligned like torch's ``is_causal`` (query 0 sees key 0 only, whatever Lk is).
    """
    lk = lq if lk is None else lk
    if lq < 1 or lk < 1:
        raise ValueError(f"causal_mask: expected positive lengths, got Lq={lq}, Lk={lk}")
    return np.tril(np.ones((lq, lk), dtype=bool))


def padding_mask(lengths: ArrayLike, length: int) -> np.ndarray:
    """Boolean (N, 1, 1, L), True for the first ``lengths[n]`` positions of sequence n.

    This is the attention convention (True = may attend), ready to broadcast over heads and
    queries in :func:`scaled_dot_product_attention`. It is the *negation* of torch's
    ``key_padding_mask`` (True = padding), which :class:`~foveal.scratch.layers.attention.
    MultiheadAttention` accepts.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"padding_mask: expected integer lengths of shape (N,), got {lengths.dtype} "
            f"{lengths.shape}"
        )
    if length < 1 or np.any(lengths < 0) or np.any(lengths > length):
        raise ValueError(
            f"padding_mask: expected 0 <= lengths <= L = {length}, got {lengths.tolist()}"
        )
    keep = np.arange(length)[None, :] < lengths[:, None]
    return keep[:, None, None, :]


def _check(q: ArrayLike, k: ArrayLike, v: ArrayLike) -> tuple[Tensor, Tensor, Tensor]:
    op = "scaled_dot_product_attention"
    for name, t in (("q", q), ("k", k), ("v", v)):
        dtype = t.dtype if isinstance(t, Tensor) else np.asarray(t).dtype
        if dtype.kind != "f":
            raise ValueError(f"{op}: expected floating-point {name}, got dtype {dtype}")
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim < 2:
            raise ValueError(f"{op}: expected {name} with shape (…, L, d), got {t.shape}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"{op}: q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{op}: expected q (…, Lq, d_k), k (…, Lk, d_k), v (…, Lk, d_v), got "
            f"{q.shape}, {k.shape}, {v.shape}"
        )
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{op}: batch axes of q {q.shape}, k {k.shape}, v {v.shape} do not broadcast"
        ) from None
    return q, k, v


def _allowed(
    mask: ArrayLike | None, causal: bool, scores_shape: tuple[int, ...], dtype: np.dtype
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(allowed, additive)``: a boolean "may attend" array and finite additive scores (either
    may be None), both broadcastable to ``scores_shape``."""
    op = "scaled_dot_product_attention"
    allowed: np.ndarray | None = None
    additive: np.ndarray | None = None
    if mask is not None:
        m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if m.dtype.kind not in "bf":
            raise ValueError(
                f"{op}: mask must be boolean (True = may attend) or floating (added to the "
                f"scores), got dtype {m.dtype}"
            )
        try:
            shape = np.broadcast_shapes(m.shape, scores_shape)
        except ValueError:
            shape = None
        if shape != scores_shape:
            raise ValueError(
                f"{op}: mask of shape {m.shape} does not broadcast to the scores' shape "
                f"(…, Lq, Lk) = {scores_shape}"
            )
        if m.dtype.kind == "b":
            allowed = m
        else:
            allowed = m != -np.inf
            additive = np.where(allowed, m, 0).astype(dtype)
    if causal:
        tri = causal_mask(*scores_shape[-2:])
        allowed = tri if allowed is None else allowed & tri
    return allowed, additive


def attention_weights(
    q: ArrayLike, k: ArrayLike, mask: ArrayLike | None = None, causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """``P = softmax(Q Kᵀ s + M)`` (…, Lq, Lk): the weights each query puts on each key.

    Same arguments and conventions as :func:`scaled_dot_product_attention` (which returns
    ``P V``); fully masked rows are 0.
    """
    q, k, _ = _check(q, k, k)
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    perm = (*range(k.ndim - 2), k.ndim - 1, k.ndim - 2)
    scores = mul(matmul(q, transpose(k, perm)), s)
    allowed, additive = _allowed(mask, causal, scores.shape, q.dtype)
    if additive is not None:
        scores = add(scores, additive)
    if allowed is None:
        return softmax(scores, axis=-1)
    live = np.broadcast_to(allowed, scores.shape).any(axis=-1, keepdims=True)
    # −∞ at masked keys; a row with no allowed key gets 0s instead (no NaN), zeroed below
    fill = np.where(live, -np.inf, 0).astype(q.dtype)
    p = softmax(where(allowed, scores, fill), axis=-1)
    return p if live.all() else where(live, p, np.zeros((), q.dtype))


def scaled_dot_product_attention(
    q: ArrayLike, k: ArrayLike, v: ArrayLike, mask: ArrayLike | None = None,
    causal: bool = False, dropout_p: float = 0.0, rng: np.random.Generator | None = None,
    scale: float | None = None,
) -> Tensor:
    """``softmax(Q Kᵀ / √d_k + M) V`` (Vaswani et al. 2017, eq. 1); see the module docstring.

    Args:
        q, k, v: (…, Lq, d_k), (…, Lk, d_k), (…, Lk, d_v), one floating dtype; leading axes
            broadcast (e.g. (N, heads, L, d) against (N, 1, L, d)).
        mask: broadcastable to (…, Lq, Lk). Boolean: **True = may attend** (torch's SDPA
            convention; the opposite of ``key_padding_mask``). Floating: added to the scores
            (−∞ entries count as masked).
        causal: also mask keys j > i (top-left aligned).
        dropout_p: probability of zeroing each attention weight (inverted dropout, the kept
            ones scaled by 1/(1 − p)); applied whenever > 0, so pass 0 in evaluation.
        rng: the generator for the dropout mask.
        scale: the factor ``s`` on the scores; ``1/√d_k`` by default.

    Returns:
        (…, Lq, d_v). A query with every key masked gets 0 (as torch ≥ 2.5).
    """
    q, k, v = _check(q, k, v)
    check_drop_probability(dropout_p, "scaled_dot_product_attention")
    p = attention_weights(q, k, mask, causal, scale)
    if dropout_p > 0:
        p = dropout(p, dropout_p, True, rng)
    return matmul(p, v)
