"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from foveal.scratch.optim.optimizer import Optimizer, Parameter


class Adagrad(Optimizer):
    r"""Adagrad with learning-rate decay and L2 weight decay (``torch.optim.Adagrad`` semantics).

    With learning rate :math:`\eta`, decay :math:`\kappa`, weight decay :math:`\lambda` and the
    accumulator starting at ``initial_accumulator_value``, step :math:`t = 1, 2, \dots` is::

        g   <- g + λ θ
        η_t =  η / (1 + (t - 1) κ)
        S_t =  S_{t-1} + g²
        θ   <- θ - η_t g / (sqrt(S_t) + ε)

    ``eps`` is added after the square root. The step counter is per parameter: it only
    advances on steps where that parameter has a gradient.

    Reference: Duchi, Hazan, Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization", JMLR 12 (2011); ``torch.optim.Adagrad`` documentation.
    """

    lr_decay: float
    weight_decay: float
    initial_accumulator_value: float
    eps: float

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One Adagrad step on ``param`` in place (see the class docstring for the rule)."""
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, self.initial_accumulator_value)
        state["step"] += 1
        t = state["step"]
        g = grad + self.weight_decay * param if self.weight_decay != 0.0 else grad
        lr_t = self.lr / (1.0 + (t - 1) * self.lr_decay)
        S = state["sum"]
        S += g * g
        param -= lr_t * (g / (np.sqrt(S) + self.eps))
