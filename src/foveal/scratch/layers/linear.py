"""Fully connected layers: :class:`Linear` (``y = x Wᵀ + b``) and :class:`Flatten`."""

from __future__ import annotations

import numpy as np

from foveal.scratch.init import kaiming_uniform_linear
from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.linear import linear
from foveal.scratch.ops.shape import flatten
from foveal.scratch.tensor import Tensor


class Linear(Module):
    """``y = x Wᵀ + b`` with W (out, in) and b (out,), initialised as torch's ``nn.Linear``:
    ``U(−1/√in, 1/√in)`` for both (He-uniform with a = √5)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *,
        rng: np.random.Generator | None = None, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear: expected positive sizes, got in={in_features}, out={out_features}"
            )
        rng = rng or np.random.default_rng()
        self.in_features, self.out_features = in_features, out_features
        w, b = kaiming_uniform_linear((out_features, in_features), rng)
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(b.astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """(N, d₁, d₂, …) → (N, d₁·d₂·…)."""

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, 1)
