"""Optimisers by name: torch.optim's SGD, Adam(W), RMSprop, Adagrad, Muon (+ AdamW) and Lookahead.

:func:`build_optimizer` turns a name and hyper-parameters into a ``torch.optim.Optimizer``; every
optimiser it returns works with ``torch.optim.lr_scheduler`` (their ``param_groups`` hold the
``lr`` that the inner optimisers read) and round-trips through ``state_dict``.

Conventions (all of them torch's):

- SGD, ``v ← μ v + g``; heavy ball ``θ ← θ − η v``; Nesterov ``θ ← θ − η (g + μ v)`` (the
  look-ahead gradient rewritten in the current point, Sutskever et al. 2013, eq. 3-4).
  ``weight_decay`` is L2 added to ``g``.
- ``adam`` adds ``λ θ`` to the gradient (coupled L2); ``adamw`` shrinks ``θ ← θ − η λ θ`` outside
  the adaptive step (Loshchilov & Hutter, ICLR 2019, Alg. 2).
- Muon orthogonalises the momentum of each hidden weight matrix by 5 Newton–Schulz steps
  (K. Jordan et al. 2024, https://kellerjordan.github.io/posts/muon/); the remaining parameters
  (biases, norms, embeddings, the classifier head) take AdamW, see :func:`param_groups_for_muon`.
- Lookahead (Zhang, Lucas, Hinton, Ba, NeurIPS 2019, Alg. 1) wraps any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.training.regularization import weight_decay_param_groups

__all__ = [
    "OPTIMIZER_NAMES", "Lookahead", "MuonWithAdamW", "build_optimizer", "default_head_name",
    "param_groups_for_muon",
]

OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "muon")

_MUON_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def build_optimizer(
    name: str,
    model_or_params: nn.Module | Iterable[torch.Tensor] | Iterable[dict],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float | None = None,
    nesterov: bool | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    decay_biases_and_norms: bool = True,
    lookahead_k: int = 0,
    lookahead_alpha: float = 0.5,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """The optimiser ``name`` (one of :data:`OPTIMIZER_NAMES`) over a model's trainable parameters.

    Args:
        name: ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad`` or ``muon``.
        model_or_params: a module (its ``requires_grad`` parameters in ``parameters()`` order,
            one group) or what ``torch.optim`` accepts (tensors or group dicts). ``muon`` and
            ``decay_biases_and_norms=False`` need a module.
        lr: learning rate ``η`` (for ``muon``: of the Muon matrices; pass ``adamw_lr`` for the
            AdamW part, default ``lr``).
        weight_decay: ``λ``; L2 in the gradient for sgd/adam/rmsprop/adagrad, decoupled for adamw
            and muon (both parts).
        momentum: ``μ`` for sgd, rmsprop and muon; ``None`` keeps torch's default (0, 0, 0.95).
        nesterov: Nesterov momentum for sgd (needs ``momentum > 0``) and muon; ``None`` keeps
            torch's default (False for SGD, True for Muon).
        betas: ``(β1, β2)`` for adam, adamw and muon's AdamW part.
        decay_biases_and_norms: False puts parameters with ``ndim < 2`` in a second group with
            ``weight_decay = 0`` (:func:`foveal.training.regularization.weight_decay_param_groups`).
        lookahead_k: ``k > 0`` wraps the optimiser in :class:`Lookahead` (``k`` fast steps per
            slow step); 0 leaves it bare.
        lookahead_alpha: Lookahead's slow step size ``α ∈ (0, 1]``.
        **kwargs: passed to the torch constructor (``eps``, ``alpha``, ``lr_decay``,
            ``adjust_lr_fn``, ...); for ``muon`` also ``adamw_lr`` and ``head``.

    With ``name in ("sgd", "adamw")``, a module and ``decay_biases_and_norms=True`` the result is
    the single-group optimiser that :func:`foveal.training.trainer.build_optimizer` builds.
    Arguments an optimiser has no use for (``betas`` for SGD, ``momentum`` for Adam) are ignored.
    """
    if name not in OPTIMIZER_NAMES:
        raise ConfigError(
            f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZER_NAMES)}"
        )
    if not (isinstance(lr, int | float) and lr >= 0):
        raise ConfigError(f"expected lr >= 0, got {lr!r}")
    if not (isinstance(weight_decay, int | float) and weight_decay >= 0):
        raise ConfigError(f"expected weight_decay >= 0, got {weight_decay!r}")
    if lookahead_k < 0:
        raise ConfigError(f"expected lookahead_k >= 0 (0 = off), got {lookahead_k}")
    needs_module = name == "muon" or not decay_biases_and_norms
    if needs_module and not isinstance(model_or_params, nn.Module):
        what = f"optimizer {name!r}" if name == "muon" else "decay_biases_and_norms=False"
        raise ConfigError(f"{what} needs an nn.Module, got {type(model_or_params).__name__}")
    momentum_kw = {} if momentum is None else {"momentum": momentum}
    nesterov_kw = {} if nesterov is None else {"nesterov": nesterov}
    try:
        if name == "muon":
            head = kwargs.pop("head", None)
            optimizer: torch.optim.Optimizer = MuonWithAdamW(
                param_groups_for_muon(model_or_params, head=head), lr=lr,
                weight_decay=weight_decay, betas=betas, **momentum_kw, **nesterov_kw, **kwargs,
            )
        else:
            params = _param_groups(model_or_params, weight_decay, decay_biases_and_norms)
            optimizer = _TORCH_BUILDERS[name](
                params, lr, weight_decay, momentum_kw, nesterov_kw, betas, kwargs
            )
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad settings for optimizer {name!r}: {error}") from None
    if lookahead_k:
        optimizer = Lookahead(optimizer, k=lookahead_k, alpha=lookahead_alpha)
    return optimizer


def _param_groups(
    model_or_params: nn.Module | Iterable, weight_decay: float, decay_biases_and_norms: bool
) -> list:
    if not decay_biases_and_norms:
        return weight_decay_param_groups(model_or_params, weight_decay)  # type: ignore[arg-type]
    if isinstance(model_or_params, nn.Module):
        return [p for p in model_or_params.parameters() if p.requires_grad]
    return list(model_or_params)


def _sgd(params, lr, wd, momentum_kw, nesterov_kw, betas, kw) -> torch.optim.Optimizer:
    if nesterov_kw.get("nesterov") and not momentum_kw.get("momentum"):
        raise ConfigError("nesterov momentum needs momentum > 0, got momentum=0")
    return torch.optim.SGD(params, lr=lr, weight_decay=wd, **momentum_kw, **nesterov_kw, **kw)


_TORCH_BUILDERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adam": lambda params, lr, wd, m, n, betas, kw: torch.optim.Adam(
        params, lr=lr, betas=betas, weight_decay=wd, **kw),
    "adamw": lambda params, lr, wd, m, n, betas, kw: torch.optim.AdamW(
        params, lr=lr, betas=betas, weight_decay=wd, **kw),
    "rmsprop": lambda params, lr, wd, m, n, betas, kw: torch.optim.RMSprop(
        params, lr=lr, weight_decay=wd, **m, **kw),
    "adagrad": lambda params, lr, wd, m, n, betas, kw: torch.optim.Adagrad(
        params, lr=lr, weight_decay=wd, **kw),
}


def default_head_name(model: nn.Module) -> str | None:
    """The qualified name of ``model``'s classifier head: its last ``nn.Linear`` registered
    outside attention blocks (``None`` when it has none)."""
    modules = dict(model.named_modules())
    attention_out = {id(m.out_proj) for m in modules.values()
                     if isinstance(m, nn.MultiheadAttention)}
    linears = [n for n, m in modules.items()
               if isinstance(m, nn.Linear) and id(m) not in attention_out]
    return linears[-1] if linears else None


def param_groups_for_muon(model: nn.Module, head: str | None = None) -> list[dict]:
    """Split ``model``'s trainable parameters into a Muon group and an AdamW group.

    Muon (``"use_muon": True``): the ``weight`` of every ``nn.Linear`` and ``nn.Conv{1,2,3}d``
    and the ``in_proj_weight`` of ``nn.MultiheadAttention`` (its ``out_proj`` is a Linear),
    except the head's. Conv kernels ``(C_out, C_in/groups, *k)`` are stepped as the matrix
    ``(C_out, C_in/groups · Πk)`` (Muon README: "collapsing their last 3 dimensions").

    AdamW (``"use_muon": False``): everything else: biases, normalisation ``γ, β``,
    ``nn.Embedding`` tables, free parameters (position embeddings, class tokens) and the head.

    ``head`` names the output module (``dict(model.named_modules())`` key); ``None`` takes the
    last ``nn.Linear`` registered outside attention blocks (a model without a Linear has no head).
    Both groups list parameters in ``model.parameters()`` order.
    """
    modules = dict(model.named_modules())
    if head is not None and head not in modules:
        raise ConfigError(f"head {head!r} is not a module of {type(model).__name__}")
    if head is None:
        head = default_head_name(model)
    head_params = set() if head is None else {id(p) for p in modules[head].parameters()}
    matrices = set()
    for module in modules.values():
        if isinstance(module, _MUON_MODULES):
            matrices.add(id(module.weight))
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            matrices.add(id(module.in_proj_weight))
    params = [p for p in model.parameters() if p.requires_grad]
    muon = [p for p in params if id(p) in matrices and id(p) not in head_params]
    chosen = {id(p) for p in muon}
    return [
        {"params": muon, "use_muon": True},
        {"params": [p for p in params if id(p) not in chosen], "use_muon": False},
    ]


class MuonWithAdamW(torch.optim.Optimizer):
    """``torch.optim.Muon`` on the ``use_muon`` groups, ``torch.optim.AdamW`` on the others.

    ``param_groups`` is the Muon groups followed by the AdamW groups, the very dicts the two
    inner optimisers read, so one ``torch.optim.lr_scheduler`` scales both learning rates by the
    same factor (each group keeps its own ``initial_lr``). Conv kernels are given to Muon as
    ``(C_out, -1)`` matrices: views sharing the parameter's storage, or for ``channels_last``
    kernels copies synchronised around each step. Build the optimiser after moving the model to
    its device and memory format.

    ``state_dict()`` is ``{"muon": ..., "adamw": ...}``; ``self.state`` stays empty (look in
    ``self.muon.state`` / ``self.adamw.state``).

    Args:
        param_groups: from :func:`param_groups_for_muon` (dicts with ``params``, ``use_muon``).
        lr, weight_decay, momentum, nesterov, ns_steps, adjust_lr_fn: Muon's (torch defaults
            except ``weight_decay = 0``); ``weight_decay`` also applies (decoupled) to AdamW.
        adamw_lr: AdamW's learning rate, default ``lr`` (apt with
            ``adjust_lr_fn="match_rms_adamw"``, Liu et al. 2025, "Muon is Scalable").
        betas, eps: AdamW's.
    """

    def __init__(
        self,
        param_groups: Sequence[dict],
        *,
        lr: float = 0.02,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        adamw_lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self._views: list[tuple[torch.Tensor, torch.Tensor]] = []  # (kernel, its matrix)
        muon_groups, adamw_groups = [], []
        for group in param_groups:
            if "use_muon" not in group:
                raise ConfigError(
                    f"expected param groups with a 'use_muon' flag, got keys {sorted(group)}"
                )
            params = list(group["params"])
            if params:
                inner = {k: v for k, v in group.items() if k != "use_muon"} | {"params": params}
                (muon_groups if group["use_muon"] else adamw_groups).append(inner)
        for group in muon_groups:
            group["params"] = [self._matrix(p) for p in group["params"]]
        self.muon = (torch.optim.Muon(
            muon_groups, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn) if muon_groups else None)
        self.adamw = (torch.optim.AdamW(
            adamw_groups, lr=lr if adamw_lr is None else adamw_lr, betas=betas, eps=eps,
            weight_decay=weight_decay) if adamw_groups else None)
        if self.muon is None and self.adamw is None:
            raise ConfigError("MuonWithAdamW got no parameters")
        super().__init__(self._inner_groups(), {})

    def _matrix(self, p: torch.Tensor) -> torch.Tensor:
        if p.ndim == 2:
            return p
        if p.ndim < 2:
            raise ConfigError(f"expected a parameter with ndim >= 2 for Muon, got {tuple(p.shape)}")
        # A view shares storage; a channels_last kernel cannot be viewed, so it gets a copy that
        # is refreshed before and written back after each step.
        shape = (p.shape[0], p.numel() // p.shape[0])
        matrix = p.detach().view(shape) if p.is_contiguous() else p.detach().reshape(shape).clone()
        self._views.append((p, matrix))
        return matrix

    def model_parameters(self) -> list[torch.Tensor]:
        """The parameters in ``param_groups`` order, each conv matrix replaced by its kernel."""
        kernel_of = {id(matrix): p for p, matrix in self._views}
        return [kernel_of.get(id(m), m) for g in self.param_groups for m in g["params"]]

    def _inner(self) -> list[torch.optim.Optimizer]:
        return [o for o in (self.muon, self.adamw) if o is not None]

    def _inner_groups(self) -> list[dict]:
        return [g for o in self._inner() for g in o.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One Muon step on the matrices and one AdamW step on the rest."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, matrix in self._views:
            matrix.grad = None if p.grad is None else p.grad.reshape(matrix.shape)
            if matrix.data_ptr() != p.data_ptr():
                matrix.copy_(p.reshape(matrix.shape))
        for optimizer in self._inner():
            optimizer.step()
        for p, matrix in self._views:
            if matrix.data_ptr() != p.data_ptr():
                p.copy_(matrix.view(p.shape))
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) the gradients of the parameters and of the conv kernels' views."""
        for optimizer in self._inner():
            optimizer.zero_grad(set_to_none=set_to_none)
        for p, _ in self._views:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """``{"muon": Muon's state_dict or None, "adamw": AdamW's or None}``."""
        return {"muon": None if self.muon is None else self.muon.state_dict(),
                "adamw": None if self.adamw is None else self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load both parts (torch replaces the group dicts, so ``param_groups`` is relinked)."""
        if set(state_dict) != {"muon", "adamw"}:
            raise ConfigError(
                "expected a MuonWithAdamW state_dict with keys adamw, muon, "
                f"got {', '.join(sorted(state_dict))}"
            )
        for key, optimizer in (("muon", self.muon), ("adamw", self.adamw)):
            if (optimizer is None) != (state_dict[key] is None):
                raise ConfigError(f"state_dict part {key!r} does not match this optimizer's groups")
            if optimizer is not None:
                optimizer.load_state_dict(state_dict[key])
        self.param_groups = self._inner_groups()



class Lookahead(torch.optim.Optimizer):
    """Lookahead (Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward, 1 step back",
    NeurIPS 2019, Algorithm 1) around any optimiser.

    The base optimiser moves the fast weights ``θ``; every ``k``-th step the slow weights move
    towards them and the fast weights restart there:

        φ ← φ + α (θ − φ),    θ ← φ.

    ``φ`` starts as the parameters' values before the first step. The base optimiser's state
    (momentum, Adam moments) is kept across the synchronisation, as in the paper's experiments.
    ``param_groups`` are the base optimiser's dicts, so LR schedulers act on the base.

    Args:
        base_optimizer: any ``torch.optim.Optimizer``.
        k: fast steps per slow step, ``≥ 1``.
        alpha: slow step size ``α ∈ (0, 1]`` (1 reduces to the base optimiser).
    """

    def __init__(self, base_optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5):
        if not (isinstance(k, int) and k >= 1):
            raise ConfigError(f"expected Lookahead k >= 1, got {k!r}")
        if not (isinstance(alpha, int | float) and 0 < alpha <= 1):
            raise ConfigError(f"expected Lookahead alpha in (0, 1], got {alpha!r}")
        self.base_optimizer = base_optimizer
        self.k = k
        self.alpha = float(alpha)
        self.fast_steps = 0
        self.slow_weights: list[torch.Tensor] | None = None
        super().__init__(base_optimizer.param_groups, {})

    def _params(self) -> list[torch.Tensor]:
        if isinstance(self.base_optimizer, MuonWithAdamW):  # its conv matrices may be copies
            return self.base_optimizer.model_parameters()
        return [p for group in self.base_optimizer.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One base step; every ``k``-th, ``φ ← φ + α(θ − φ)`` and ``θ ← φ``."""
        if self.slow_weights is None:
            self.slow_weights = [p.detach().clone() for p in self._params()]
        loss = self.base_optimizer.step(closure)  # type: ignore[func-returns-value]
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            for p, slow in zip(self._params(), self.slow_weights, strict=True):
                slow.add_(p.detach() - slow, alpha=self.alpha)
                p.copy_(slow)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base's ``state_dict`` plus ``k``, ``alpha``, the step count and the slow weights."""
        return {"base": self.base_optimizer.state_dict(), "k": self.k, "alpha": self.alpha,
                "fast_steps": self.fast_steps,
                "slow_weights": None if self.slow_weights is None
                else [s.clone() for s in self.slow_weights]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore base state, counters and slow weights (on the parameters' devices)."""
        keys = {"base", "k", "alpha", "fast_steps", "slow_weights"}
        if set(state_dict) != keys:
            raise ConfigError(
                f"expected a Lookahead state_dict with keys {', '.join(sorted(keys))}, "
                f"got {', '.join(sorted(state_dict))}"
            )
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        self.k, self.alpha = state_dict["k"], state_dict["alpha"]
        self.fast_steps = state_dict["fast_steps"]
        slow = state_dict["slow_weights"]
        params = self._params()
        if slow is not None and len(slow) != len(params):
            raise ConfigError(
                f"expected {len(params)} Lookahead slow weights, got {len(slow)}"
            )
        self.slow_weights = None if slow is None else [
            s.detach().to(device=p.device, dtype=p.dtype).clone()
            for s, p in zip(slow, params, strict=True)
        ]
