"""Adam and AdamW: bias-corrected first and second moment estimates of the gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from foveal.scratch.optim.optimizer import Optimizer, Parameter


class Adam(Optimizer):
    r"""Adam with optional AMSGrad and L2 weight decay (``torch.optim.Adam`` semantics).

    With learning rate :math:`\eta`, ``betas`` :math:`(\beta_1, \beta_2)` and weight decay
    :math:`\lambda`; moments start at zero and :math:`t = 1, 2, \dots` counts this parameter's
    steps::

        g   <- g + λ θ                                (L2 penalty; AdamW decouples it instead)
        m_t =  β1 m_{t-1} + (1 - β1) g
        v_t =  β2 v_{t-1} + (1 - β2) g²
        v_t <- max(v_max, v_t)                        (amsgrad only: v_max keeps the running max)
        θ   <- θ - (η / (1 - β1^t)) m_t / (sqrt(v_t) / sqrt(1 - β2^t) + ε)

    i.e. θ <- θ - η m̂_t / (sqrt(v̂_t) + ε) with the bias-corrected moments
    m̂_t = m_t / (1 - β1^t), v̂_t = v_t / (1 - β2^t); ε is added to sqrt(v̂_t). Without the
    correction the first step would be η (1 - β1) / sqrt(1 - β2) ≈ 3.2 η for the defaults,
    not ≈ η.

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Alg. 1;
    AMSGrad: Reddi, Kale, Kumar, "On the Convergence of Adam and Beyond", ICLR 2018;
    ``torch.optim.Adam`` documentation.
    """

    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One Adam (or AdamW) step on ``param`` in place (see the class docstrings)."""
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        beta1, beta2 = self.betas
        g = grad
        if self.weight_decay != 0.0:
            if self.decoupled_weight_decay:
                param *= 1.0 - self.lr * self.weight_decay
            else:
                g = grad + self.weight_decay * param
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * g * g
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = self.lr / (1.0 - beta1**t)
        denom = np.sqrt(v) / np.sqrt(1.0 - beta2**t) + self.eps
        param -= step_size * (m / denom)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (``torch.optim.AdamW`` semantics).

    Before the Adam step (run with no L2 term in the gradient) the parameter shrinks::

        θ <- θ - η λ θ                                (decoupled: never enters m_t or v_t)
        θ <- Adam step with g unchanged

    With L2 in the gradient (plain Adam), the decay is divided by sqrt(v̂_t) like the rest of
    the gradient, so weights with large gradients are barely decayed; AdamW decays every weight
    at the same rate η λ.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Alg. 2;
    ``torch.optim.AdamW`` documentation.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
