"""Dropout layers: :class:`Dropout` (units, as ``nn.Dropout``) and :class:`DropConnectLinear`
(weights of a linear layer, Wan et al. 2013). Both are inverted — kept values are scaled by
``1/(1 − p)`` in training — so eval mode is the identity / the plain linear map. ``p`` is the
probability of dropping. The math is in :mod:`foveal.scratch.ops.dropout`.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.init import kaiming_uniform_linear
from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.dropout import check_drop_probability, drop_connect, dropout
from foveal.scratch.tensor import Tensor


class Dropout(Module):
    """Zero each element with probability ``p`` in training, scaling the rest by 1/(1 − p);
    the identity in eval mode. No parameters (empty state dict, as torch's)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        check_drop_probability(p, "Dropout")
        self.p = float(p)
        self._rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnectLinear(Module):
    """``y = x (W ⊙ M / (1 − p))ᵀ + b`` in training (one weight mask per forward call, shared
    by the batch; bias kept), ``y = x Wᵀ + b`` in eval.

    Parameters ``weight`` (out, in) and ``bias`` (out,) with ``nn.Linear``'s names, shapes and
    default initialisation, so its state dict loads into ``torch.nn.Linear`` and back.
    """

    def __init__(
        self, in_features: int, out_features: int, p: float = 0.5, bias: bool = True, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"DropConnectLinear: expected positive sizes, got in={in_features}, "
                             f"out={out_features}")
        check_drop_probability(p, "DropConnectLinear")
        self.in_features, self.out_features, self.p = in_features, out_features, float(p)
        self._rng = rng if rng is not None else np.random.default_rng()
        w, b = kaiming_uniform_linear((out_features, in_features), self._rng)
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(b.astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return drop_connect(x, self.weight, self.bias, self.p, self.training, self._rng)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, p={self.p}, "
                f"bias={self.bias is not None}")
