"""The transformer encoder block (Vaswani et al. 2017, §3.1), mirroring torch's
``nn.TransformerEncoderLayer``: self-attention and a position-wise feed-forward network, each
wrapped in a residual connection and a layer norm.

Post-norm (the paper's order, ``norm_first=False``)::

    x = LayerNorm₁(x + Dropout(SelfAttention(x)))
    x = LayerNorm₂(x + Dropout(FFN(x)))

Pre-norm (``norm_first=True``; Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture", which trains stably without warm-up because the residual path is never
normalised)::

    x = x + Dropout(SelfAttention(LayerNorm₁(x)))
    x = x + Dropout(FFN(LayerNorm₂(x)))

with ``FFN(x) = W₂ Dropout(act(W₁ x + b₁)) + b₂`` (§3.3), ``act`` = ReLU (the paper) or GELU.
Parameter names are torch's: ``self_attn.*``, ``linear1``, ``linear2``, ``norm1``, ``norm2``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from foveal.scratch.layers.attention import MultiheadAttention
from foveal.scratch.layers.dropout import Dropout
from foveal.scratch.layers.linear import Linear
from foveal.scratch.layers.module import Module
from foveal.scratch.layers.norm import LayerNorm
from foveal.scratch.ops.activation import gelu, relu
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": relu, "gelu": partial(gelu, approximate="none"),
}


class TransformerEncoderLayer(Module):
    """One encoder block (see the module docstring), as torch's ``nn.TransformerEncoderLayer``.

    Args:
        d_model: the width E of the tokens.
        nhead: the number of attention heads (E must be divisible by it).
        dim_feedforward: the FFN's hidden width.
        dropout: the probability of dropping, used after attention (inside it on the weights,
            and on its output), inside the FFN, and on the FFN's output; training mode only.
        activation: ``"relu"``, ``"gelu"``, or a callable Tensor → Tensor.
        layer_norm_eps: ε of both layer norms.
        batch_first: tokens (N, L, E) if True (our default; torch's is False), else (L, N, E).
        norm_first: pre-norm if True, post-norm (the paper's) if False.
        bias: biases in the linear layers, the attention projections and the layer norms.
        rng, dtype: generator for the initial weights and dropout masks; parameter dtype.
    """

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
        activation: str | Callable[[Tensor], Tensor] = "relu", layer_norm_eps: float = 1e-5,
        batch_first: bool = True, norm_first: bool = False, bias: bool = True, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"TransformerEncoderLayer: activation must be one of {list(ACTIVATIONS)} or "
                    f"a callable, got {activation!r}"
                )
            activation = ACTIVATIONS[activation]
        rng = rng or np.random.default_rng()
        self.batch_first, self.norm_first = batch_first, norm_first
        # assignment order = torch's state-dict order
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias,
                                            batch_first=batch_first, rng=rng, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias, rng=rng, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias, rng=rng, dtype=dtype)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.activation = activation

    def _self_attention(
        self, x: Tensor, mask: ArrayLike | None, padding: ArrayLike | None, is_causal: bool
    ) -> Tensor:
        out = self.self_attn(x, x, x, key_padding_mask=padding, attn_mask=mask,
                             is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self, src: ArrayLike, src_mask: ArrayLike | None = None,
        src_key_padding_mask: ArrayLike | None = None, is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src`` (N, L, E) → (N, L, E).

        ``src_mask`` (L, L) or (N·heads, L, L): bool True = may not attend, or float added;
        ``src_key_padding_mask`` (N, L): True = padding; ``is_causal``: apply the causal mask
        (torch's conventions, see :class:`~foveal.scratch.layers.attention.MultiheadAttention`).
        """
        x = as_tensor(src)
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), src_mask, src_key_padding_mask,
                                         is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._self_attention(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, batch_first={self.batch_first}"
