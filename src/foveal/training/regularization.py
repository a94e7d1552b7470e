"""Weight regularisation: L1 / L2 / elastic-net penalties, max-norm, DropConnect and weight EMA.

Which parameters are penalised. The penalties, :func:`apply_max_norm_` and
:func:`weight_decay_param_groups` act on the *weights* only: parameters with ``ndim ≥ 2``
(Linear, convolution and embedding matrices, position embeddings and class tokens). Biases and
the ``γ, β`` of normalisation layers are one-dimensional and left alone ("no bias decay", He et
al. 2019, "Bag of Tricks for Image Classification", §3.1; timm exempts position embeddings too,
by name). :func:`penalized_parameters` is the rule; :func:`weight_decay_param_groups` gives an
optimiser's ``weight_decay`` the same parameters.

Coupled L2 vs decoupled weight decay. With plain SGD, adding ``(λ/2)‖w‖²`` to the loss is the same
as ``weight_decay=λ``: both step ``w ← w − η (∇L + λ w)``. With Adam they differ: the L2 gradient
``λ w`` is divided by ``√v̂``, so weights with large gradients are barely decayed, while AdamW
shrinks every weight by ``η λ w`` outside the adaptive step (Loshchilov & Hutter, "Decoupled
Weight Decay Regularization", ICLR 2019, Algorithm 2). ``torch.optim.Adam(weight_decay=λ)`` is
the coupled form, ``torch.optim.AdamW(weight_decay=λ)`` the decoupled one.

References: H. Zou, T. Hastie, "Regularization and variable selection via the elastic net",
JRSS-B 2005; N. Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
Overfitting", JMLR 2014, §5.1 (max-norm); L. Wan et al., "Regularization of Neural Networks using
DropConnect", ICML 2013; B. Polyak, A. Juditsky, "Acceleration of stochastic approximation by
averaging", 1992, and TensorFlow's ``ExponentialMovingAverage`` (the ``(1 + t)/(10 + t)`` warmup).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from foveal.errors import ConfigError

__all__ = [
    "DropConnect",
    "WeightEMA",
    "apply_max_norm_",
    "elastic_net_penalty",
    "l1_penalty",
    "l2_penalty",
    "penalized_parameters",
    "weight_decay_param_groups",
]


def penalized_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The weights of ``model``: trainable parameters with ``ndim ≥ 2`` (no biases, no norm
    ``γ, β``), in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


def weight_decay_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimiser parameter groups: the weights with ``weight_decay`` and the rest
    (biases, norm ``γ, β``) with ``0``, for ``torch.optim.SGD / AdamW(groups, ...)``."""
    check_nonnegative("weight_decay", weight_decay)
    decayed = {id(p) for p in penalized_parameters(model)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decayed], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in decayed], "weight_decay": 0.0},
    ]


def check_nonnegative(name: str, value: float) -> None:
    """Raise ConfigError unless ``value`` is a finite number ``≥ 0``."""
    if not (isinstance(value, int | float) and 0.0 <= value < float("inf")):
        raise ConfigError(f"expected {name} >= 0, got {value!r}")


def _zero(model: nn.Module) -> torch.Tensor:
    p = next(model.parameters(), None)
    return torch.zeros((), device=None if p is None else p.device)


def l1_penalty(model: nn.Module, weight: float) -> torch.Tensor:
    """``weight · Σ_w |w|`` over :func:`penalized_parameters`, a differentiable scalar.

    The (sub)gradient is ``weight · sign(w)``; added to the loss it drives weights to exactly 0
    only with a proximal step, with SGD they oscillate around 0 (Tibshirani 1996, the lasso).
    """
    check_nonnegative("l1 weight", weight)
    weights = penalized_parameters(model)
    if not weights or weight == 0:
        return _zero(model)
    return weight * sum(w.abs().sum() for w in weights)


def l2_penalty(model: nn.Module, weight: float) -> torch.Tensor:
    """``(weight / 2) · Σ_w w²`` over :func:`penalized_parameters`, a differentiable scalar.

    The ½ makes the gradient ``weight · w``, so with SGD this penalty equals
    ``weight_decay=weight`` (on the same parameters); with Adam it does not equal AdamW's
    decoupled decay (see the module docstring).
    """
    check_nonnegative("l2 weight", weight)
    weights = penalized_parameters(model)
    if not weights or weight == 0:
        return _zero(model)
    return 0.5 * weight * sum(w.square().sum() for w in weights)


def elastic_net_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor:
    """``l1 · Σ|w| + (l2 / 2) · Σ w²`` over :func:`penalized_parameters` (Zou & Hastie 2005,
    with the ½ convention of :func:`l2_penalty`)."""
    return l1_penalty(model, l1) + l2_penalty(model, l2)


@torch.no_grad()
def apply_max_norm_(model: nn.Module, max_norm: float, dim: int = 0) -> None:
    """Max-norm constraint, in place, after the optimiser step (Srivastava et al. 2014, §5.1):
    ``w_i ← w_i · min(1, c / ‖w_i‖₂)`` for each unit ``i``.

    ``w_i = w.select(dim, i)`` is the incoming weight vector of unit ``i``: ``dim=0`` for
    Linear ``(out, in)`` and convolution ``(out, in/groups, k…)`` weights (one filter per output
    channel); transposed convolutions ``(in, out/groups, k…)`` need ``dim=1``. Applies to every
    tensor of :func:`penalized_parameters` (``torch.renorm`` semantics).
    """
    if not (isinstance(max_norm, int | float) and 0.0 < max_norm < float("inf")):
        raise ConfigError(f"expected max_norm > 0, got {max_norm!r}")
    for w in penalized_parameters(model):
        if not -w.ndim <= dim < w.ndim:
            raise ConfigError(f"expected max-norm dim in [{-w.ndim}, {w.ndim}) for a weight "
                              f"of shape {tuple(w.shape)}, got {dim}")
        w.copy_(torch.renorm(w, 2, dim, max_norm))


class DropConnect(nn.Linear):
    """A Linear layer that drops *weights*, not activations (Wan et al. 2013):
    ``y = x ((M ⊙ W) / (1 − p))ᵀ + b`` with ``M_ij ~ Bernoulli(1 − p)`` during training and
    ``y = x Wᵀ + b`` at evaluation.

    ``p`` is the probability of dropping a weight; the ``1/(1 − p)`` rescale keeps
    ``E[y] = x Wᵀ + b`` so evaluation needs no correction (the paper's inference instead
    moment-matches a Gaussian; weight scaling is the usual simpler choice). The bias is not
    dropped. ``mode="batch"`` draws one mask per forward call; ``mode="sample"`` one mask per
    row of ``x`` as in the paper (``x`` must then be ``(N, in_features)``, memory ``N·out·in``).

    Shapes: ``(..., in_features) → (..., out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.5,
                 mode: str = "batch", device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        if not (isinstance(p, int | float) and 0.0 <= p < 1.0):
            raise ConfigError(f"expected a DropConnect probability p in [0, 1), got {p!r}")
        if mode not in ("batch", "sample"):
            raise ConfigError(f"expected DropConnect mode 'batch' or 'sample', got {mode!r}")
        super().__init__(in_features, out_features, bias, device, dtype)
        self.p = float(p)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        keep = 1.0 - self.p
        if self.mode == "batch":
            mask = torch.empty_like(self.weight).bernoulli_(keep)
            return F.linear(x, self.weight * mask / keep, self.bias)
        if x.ndim != 2:
            raise ConfigError(f"DropConnect mode 'sample' expects input of shape "
                              f"(N, {self.in_features}), got {tuple(x.shape)}")
        mask = torch.empty((x.shape[0], *self.weight.shape), dtype=x.dtype,
                           device=x.device).bernoulli_(keep)
        y = torch.einsum("ni,noi->no", x, self.weight * mask / keep)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}, mode={self.mode!r}"


def ema_warmup_decay(decay: float, num_updates: int) -> float:
    """TensorFlow's EMA warmup: ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


class WeightEMA(AveragedModel):
    """Exponential moving average of a model's parameters, for evaluation.

    ``θ̄_1 = θ_1`` (the first :meth:`update_parameters` copies), then
    ``θ̄_t = d_t θ̄_{t−1} + (1 − d_t) θ_t`` with ``d_t = decay``, or with ``warmup``
    ``d_t = min(decay, (1 + n) / (10 + n))`` where ``n = t − 1`` updates came before, so early
    averages are not dominated by the random initialisation. Hence without warmup
    ``θ̄_t = d^{t−1} θ_1 + (1 − d) Σ_{j=2..t} d^{t−j} θ_j``.

    Buffers (BatchNorm running statistics, ``num_batches_tracked``) are *copied* from the model
    at every update, not averaged, so the EMA model evaluates with the live model's statistics.
    Built on ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``; call
    ``ema(x)`` to run the averaged model and ``ema.module`` to reach it.

    Args:
        model: the model being trained (deep-copied).
        decay: ``d`` in ``[0, 1]``.
        warmup: use the ``(1 + n)/(10 + n)`` warmup.
        device: where to keep the average (default: the model's device).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmup: bool = False,
                 device: torch.device | str | None = None) -> None:
        if not (isinstance(decay, int | float) and 0.0 <= decay <= 1.0):
            raise ConfigError(f"expected an EMA decay in [0, 1], got {decay!r}")
        multi_avg_fn = self._warmup_fn(decay) if warmup else get_ema_multi_avg_fn(decay)
        super().__init__(model, device=device, multi_avg_fn=multi_avg_fn, use_buffers=False)
        self.decay = float(decay)
        self.warmup = warmup

    @staticmethod
    def _warmup_fn(decay: float) -> Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor],
                                              torch.Tensor], None]:
        def ema_update(averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor],
                       num_averaged: torch.Tensor) -> None:
            d = ema_warmup_decay(decay, int(num_averaged.item()))
            get_ema_multi_avg_fn(d)(averaged, current, num_averaged)
        return ema_update

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Average ``model``'s parameters in and copy its buffers."""
        super().update_parameters(model)
        for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs.detach().to(mine.device))

    def extra_repr(self) -> str:
        return f"decay={self.decay}, warmup={self.warmup}"
