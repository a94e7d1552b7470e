"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from foveal.scratch.optim.optimizer import Optimizer, Parameter


class RMSprop(Optimizer):
    r"""RMSprop, optionally centred and with momentum (``torch.optim.RMSprop`` semantics).

    With learning rate :math:`\eta`, smoothing :math:`\alpha`, momentum :math:`\mu` and weight
    decay :math:`\lambda`; all buffers start at zero::

        g   <- g + λ θ
        v_t =  α v_{t-1} + (1 - α) g²
        m_t =  α m_{t-1} + (1 - α) g                   (centered only)
        s   =  sqrt(v_t - m_t²) + ε   if centered   else   sqrt(v_t) + ε
        b_t =  μ b_{t-1} + g / s;   θ <- θ - η b_t     (μ > 0)
        θ   <- θ - η g / s                             (μ = 0)

    ``eps`` is added after the square root (Keras and some papers add it inside). Centring
    divides by an estimate of the gradient's standard deviation rather than its RMS.

    Reference: Hinton, Srivastava, Swersky, Coursera "Neural Networks for Machine Learning",
    lecture 6e (2012); centred form: Graves, "Generating Sequences With Recurrent Neural
    Networks", arXiv:1308.0850, eq. 38-45; ``torch.optim.RMSprop`` documentation.
    """

    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One RMSprop step on ``param`` in place (see the class docstring for the rule)."""
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            if self.centered:
                state["grad_avg"] = np.zeros_like(param)
            if self.momentum > 0.0:
                state["momentum_buffer"] = np.zeros_like(param)
        state["step"] += 1
        a = self.alpha
        g = grad + self.weight_decay * param if self.weight_decay != 0.0 else grad
        v = state["square_avg"]
        v *= a
        v += (1.0 - a) * g * g
        if self.centered:
            m = state["grad_avg"]
            m *= a
            m += (1.0 - a) * g
            s = np.sqrt(v - m * m) + self.eps
        else:
            s = np.sqrt(v) + self.eps
        if self.momentum > 0.0:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += g / s
            param -= self.lr * b
        else:
            param -= self.lr * (g / s)
