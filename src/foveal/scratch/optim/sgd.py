"""Stochastic gradient descent with heavy-ball or Nesterov momentum (torch.optim.SGD semantics)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from foveal.scratch.optim.optimizer import Optimizer, Parameter


class SGD(Optimizer):
    r"""SGD with momentum, dampening, Nesterov look-ahead and L2 weight decay.

    With learning rate :math:`\eta`, momentum :math:`\mu`, dampening :math:`\tau` and weight
    decay :math:`\lambda`, one step on a parameter :math:`\theta` with gradient :math:`g` is::

        g   <- g + λ θ                                   (L2 penalty, added to the gradient)
        b_1 =  g                                         (first step: no dampening)
        b_t =  μ b_{t-1} + (1 - τ) g                     (t > 1)
        d   =  g + μ b_t   if nesterov   else   b_t      (only when μ > 0; else d = g)
        θ   <- θ - η d

    This is the Sutskever et al. (2013) form rewritten in terms of the current parameters, the
    one ``torch.optim.SGD`` uses; Nesterov needs ``momentum > 0`` and ``dampening == 0``.

    Reference: Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and
    momentum in deep learning", ICML 2013; ``torch.optim.SGD`` documentation.
    """

    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        if nesterov and dampening != 0.0:
            self._fail("dampening", dampening, "0 when nesterov=True")

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One SGD step on ``param`` in place (see the class docstring for the rule)."""
        mu = self.momentum
        g = grad + self.weight_decay * param if self.weight_decay != 0.0 else grad
        if mu != 0.0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                b = state["momentum_buffer"]
                b *= mu
                b += (1.0 - self.dampening) * g
            b = state["momentum_buffer"]
            g = g + mu * b if self.nesterov else b
        param -= self.lr * g
