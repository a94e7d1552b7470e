"""Stochastic depth ("drop path"): skip a residual branch for whole samples during training.

In a residual block ``y = x + f(x)``, training replaces the branch by ``b · f(x) / (1 − p)`` with
``b ~ Bernoulli(1 − p)`` drawn once per sample (``mode="row"``) or once per batch
(``mode="batch"``), so the expected output is unchanged and evaluation uses ``f(x)`` as is.
Networks usually raise ``p`` linearly with depth, from 0 at the first block to ``p_L`` at the
last.

Reference: G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Weinberger, "Deep Networks with Stochastic
Depth", ECCV 2016, §3 (the linear decay rule, eq. 4).
"""

from __future__ import annotations

import torch
from torch import nn

from foveal.errors import ConfigError

__all__ = ["DropPath", "drop_path", "linear_drop_rates"]


def drop_path(x: torch.Tensor, p: float, training: bool = True, mode: str = "row") -> torch.Tensor:
    """Zero the branch output ``x`` (``(N, ...)``) per sample with probability ``p``, rescaling
    the kept samples by ``1 / (1 − p)``. The identity when ``p == 0`` or not ``training``."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"expected a drop-path probability in [0, 1], got {p}")
    if mode not in ("row", "batch"):
        raise ConfigError(f"expected drop-path mode 'row' or 'batch', got {mode!r}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    keep = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


def linear_drop_rates(p_last: float, depth: int) -> list[float]:
    """The linear decay rule: block ``l`` of ``depth`` (0-based) drops with probability
    ``p_last · l / (depth − 1)``."""
    if depth <= 1:
        return [0.0] * depth
    return [p_last * i / (depth - 1) for i in range(depth)]


class DropPath(nn.Module):
    """:func:`drop_path` as a module, active in training mode only."""

    def __init__(self, p: float = 0.0, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training, self.mode)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"
