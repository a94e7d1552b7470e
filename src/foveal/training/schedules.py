"""Learning-rate schedules as multipliers of the base rate, stepped once per optimiser step.

Each function returns ``f(t)`` for step ``t = 0, 1, …, T−1`` (``T`` = total steps) for use with
:class:`torch.optim.lr_scheduler.LambdaLR`, which sets ``lr_t = lr · f(t)``. With ``W`` warmup
steps the rate first rises linearly, ``f(t) = (t + 1) / W`` for ``t < W``, then:

- ``cosine``:       ``f(t) = m + (1 − m) · ½ (1 + cos(π u))``
- ``linear``:       ``f(t) = m + (1 − m) · (1 − u)``
- ``step``:         ``f(t) = γ^⌊(t − W) / S⌋``
- ``constant``:     ``f(t) = 1``
- ``multistep``:    ``f(t) = γ^k``, ``k`` = number of milestones ``s_i <= t − W``, where the
  milestones are given as *fractions* of the post-warmup steps, ``s_i = round(p_i · (T − W))``
  (so a schedule keeps its shape when the number of epochs changes); with ``W = 0`` this is
  :class:`~torch.optim.lr_scheduler.MultiStepLR` with milestones ``s_i``.
- ``exponential``:  ``f(t) = m^u``, i.e. a per-step factor ``γ = m^{1/(T − W)}`` chosen so that
  the rate reaches the final fraction ``m`` (``0 < m <= 1``) at ``T``;
  :class:`~torch.optim.lr_scheduler.ExponentialLR` with that ``γ``.
- ``inverse_sqrt``: ``f(t) = sqrt(W / max(t, W))`` (Vaswani et al., "Attention is all you need",
  NeurIPS 2017, eq. 3, normalised to 1 at the end of warmup; needs ``W >= 1``).
- ``one_cycle``:    Smith & Topin, "Super-convergence", 2019: from ``1/d`` up to 1 over the
  first ``pct_start · T`` steps, then down to ``1/(d · d_f)`` at ``T − 1``, by half-cosine or
  linear interpolation. The ramp-up is its own warmup, so ``W`` must be 0. Equal step by step to
  :class:`~torch.optim.lr_scheduler.OneCycleLR` with ``max_lr`` = the base rate and the same
  ``pct_start``, ``div_factor`` (``d``), ``final_div_factor`` (``d_f``) and ``anneal_strategy``.

where ``u = (t − W) / (T − W)`` runs from 0 to 1 after warmup and ``m`` is the final fraction
of the base rate. Steps past ``T`` hold the value reached at ``u = 1`` (``T − 1`` for
``one_cycle``). Cosine: Loshchilov & Hutter, "SGDR", ICLR 2017; warmup: Goyal et al.,
"Accurate, large minibatch SGD", 2017.

:func:`build_scheduler` also offers ``plateau``: torch's
:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`, which is not a function of the step and is
stepped once per *epoch* with the validation loss, ``scheduler.step(val_loss)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from foveal.errors import ConfigError

SCHEDULE_NAMES: tuple[str, ...] = (
    "cosine", "linear", "step", "constant", "multistep", "exponential", "inverse_sqrt",
    "one_cycle",
)
"""Schedules that are a function of the step (:func:`lr_multiplier`, ``LambdaLR``)."""

SCHEDULER_NAMES: tuple[str, ...] = (*SCHEDULE_NAMES, "plateau")
"""Everything :func:`build_scheduler` builds: the multiplier family and ``plateau``."""

_PLATEAU_OPTIONS = frozenset(
    {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}
)


def _one_cycle(
    total_steps: int, pct_start: float, div_factor: float, final_div_factor: float,
    anneal_strategy: str,
) -> Callable[[int], float]:
    """OneCycleLR's two-phase rule as a multiplier of ``max_lr`` (torch's phase boundaries)."""
    if not 0 < pct_start < 1:
        raise ConfigError(f"one_cycle expects 0 < pct_start < 1, got {pct_start}")
    if div_factor <= 0 or final_div_factor <= 0:
        raise ConfigError(
            f"one_cycle expects div_factor > 0 and final_div_factor > 0, "
            f"got {div_factor} and {final_div_factor}"
        )
    if anneal_strategy not in ("cos", "linear"):
        raise ConfigError(f"expected anneal_strategy 'cos' or 'linear', got {anneal_strategy!r}")
    peak_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if not 0 < peak_end < last:
        raise ConfigError(
            f"one_cycle needs both phases at least one step long: pct_start={pct_start} "
            f"with total_steps={total_steps} gives a peak at step {peak_end:g}"
        )
    start, low = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)

    def anneal(a: float, b: float, pct: float) -> float:
        if anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (b - a) * pct + a

    def multiplier(t: int) -> float:
        t = min(t, total_steps - 1)
        if t <= peak_end:
            return anneal(start, 1.0, t / peak_end)
        return anneal(1.0, low, (t - peak_end) / (last - peak_end))

    return multiplier


def lr_multiplier(
    name: str,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
    step_size: int = 1,
    gamma: float = 0.1,
    milestones: Sequence[float] = (),
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
) -> Callable[[int], float]:
    """The schedule ``name`` as a function of the step index (see the module docstring).

    ``step_size`` (in steps) is used by ``step`` only, ``gamma`` by ``step`` and ``multistep``,
    ``milestones`` (increasing fractions in ``(0, 1)`` of the post-warmup steps) by
    ``multistep``, ``final_fraction`` by ``cosine``, ``linear`` and ``exponential``, and
    ``pct_start``, ``div_factor``, ``final_div_factor``, ``anneal_strategy`` (``"cos"`` or
    ``"linear"``) by ``one_cycle``, with torch's OneCycleLR defaults.
    """
    if name == "plateau":
        raise ConfigError(
            "schedule 'plateau' depends on the validation loss, not the step: "
            "use build_scheduler('plateau', ...) and step it once per epoch"
        )
    if name not in SCHEDULE_NAMES:
        raise ConfigError(f"unknown schedule {name!r}: expected one of {', '.join(SCHEDULE_NAMES)}")
    if total_steps < 1:
        raise ConfigError(f"a schedule needs at least 1 step, got total_steps={total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ConfigError(
            f"expected 0 <= warmup_steps < total_steps={total_steps}, got {warmup_steps}"
        )
    if step_size < 1:
        raise ConfigError(f"step_size must be at least 1, got {step_size}")
    decay_steps = total_steps - warmup_steps
    m = final_fraction
    if name == "one_cycle":
        if warmup_steps:
            raise ConfigError(
                f"one_cycle ramps up over pct_start of the steps itself: expected "
                f"warmup_steps=0, got {warmup_steps}"
            )
        return _one_cycle(total_steps, pct_start, div_factor, final_div_factor, anneal_strategy)
    if name == "exponential" and not 0 < m <= 1:
        raise ConfigError(f"exponential expects 0 < final_fraction <= 1, got {m}")
    if name == "inverse_sqrt" and warmup_steps < 1:
        raise ConfigError("inverse_sqrt expects warmup_steps >= 1, got 0")
    bounds: list[int] = []
    if name == "multistep":
        fractions = [float(p) for p in milestones]
        if not fractions or any(not 0 < p < 1 for p in fractions) or any(
            b <= a for a, b in itertools.pairwise(fractions)
        ):
            raise ConfigError(
                f"multistep expects increasing milestone fractions in (0, 1), got {fractions}"
            )
        bounds = [round(p * decay_steps) for p in fractions]

    def multiplier(t: int) -> float:
        if t < warmup_steps:
            return (t + 1) / warmup_steps
        s = t - warmup_steps
        u = min(s / decay_steps, 1.0)
        if name == "cosine":
            return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * u))
        if name == "linear":
            return m + (1 - m) * (1 - u)
        if name == "step":
            return gamma ** (s // step_size)
        if name == "multistep":
            return gamma ** sum(s >= b for b in bounds)
        if name == "exponential":
            return m ** u
        if name == "inverse_sqrt":
            return math.sqrt(warmup_steps / max(t, warmup_steps))
        return 1.0

    return multiplier


def build_scheduler(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, **options: Any
) -> torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau:
    """A torch scheduler for ``name`` (one of :data:`SCHEDULER_NAMES`) on ``optimizer``.

    The multiplier family returns :class:`~torch.optim.lr_scheduler.LambdaLR` over
    :func:`lr_multiplier` (``options`` are its keyword arguments), stepped once per optimiser
    step. ``plateau`` returns :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` (``options``:
    ``mode``, ``factor``, ``patience``, ``threshold``, ``threshold_mode``, ``cooldown``,
    ``min_lr``, ``eps``; ``total_steps`` is unused), stepped once per epoch with the validation
    loss: ``scheduler.step(val_loss)``.
    """
    if name == "plateau":
        unknown = sorted(set(options) - _PLATEAU_OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown plateau option(s) {', '.join(unknown)}: expected some of "
                f"{', '.join(sorted(_PLATEAU_OPTIONS))}"
            )
        try:
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
        except ValueError as error:
            raise ConfigError(f"bad plateau option: {error}") from None
    if name not in SCHEDULE_NAMES:
        raise ConfigError(
            f"unknown schedule {name!r}: expected one of {', '.join(SCHEDULER_NAMES)}"
        )
    try:
        multiplier = lr_multiplier(name, total_steps, **options)
    except TypeError as error:
        raise ConfigError(f"bad option for schedule {name!r}: {error}") from None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)


def lr_curve(name: str, total_steps: int, base_lr: float, **options: Any) -> np.ndarray:
    """The learning rate at every step ``0 … T−1``, shape ``(T,)`` float64.

    Read from :func:`build_scheduler`'s ``LambdaLR`` on a throwaway SGD optimiser, so it is
    exactly what training sees. ``plateau`` has no curve without a validation loss and raises.
    """
    if name == "plateau":
        raise ConfigError("schedule 'plateau' has no curve: it depends on the validation loss")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = build_scheduler(name, optimizer, total_steps, **options)
    lrs = np.empty(total_steps, dtype=np.float64)
    for t in range(total_steps):
        lrs[t] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    return lrs


class WarmupPlateau:
    """Linear warmup over ``warmup_steps`` optimiser steps, then ReduceLROnPlateau.

    The warmup is a :class:`~torch.optim.lr_scheduler.LambdaLR` with ``f(t) = (t + 1) / W``,
    stepped with every optimiser step until the rate reaches its base value; from then on only
    the :class:`~torch.optim.lr_scheduler.ReduceLROnPlateau` acts, once per epoch through
    :meth:`step_epoch` with the monitored loss, multiplying the rate by ``factor`` after
    ``patience`` epochs without improvement. Epochs that end inside the warmup are not
    monitored. ``state_dict`` / ``load_state_dict`` cover both parts.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 0, *,
                 factor: float = 0.1, patience: int = 2, **plateau_options: Any) -> None:
        if warmup_steps < 0:
            raise ConfigError(f"expected warmup_steps >= 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.warmup = (torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: min(1.0, (t + 1) / warmup_steps)) if warmup_steps else None)
        self.plateau = build_scheduler("plateau", optimizer, 0, factor=factor, patience=patience,
                                       **plateau_options)

    def step(self) -> None:
        """Advance by one optimiser step (moves the rate during warmup only)."""
        self.steps += 1
        if self.warmup is not None and self.steps <= self.warmup_steps:
            self.warmup.step()

    def step_epoch(self, loss: float) -> None:
        """End of an epoch with monitored ``loss``: the plateau rule, once warmup is over."""
        if self.steps >= self.warmup_steps:
            self.plateau.step(loss)

    def state_dict(self) -> dict[str, Any]:
        """The step count and both schedulers' states (JSON-able but for ``inf``)."""
        return {"steps": self.steps,
                "warmup": None if self.warmup is None else self.warmup.state_dict(),
                "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.steps = int(state["steps"])
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])
        self.plateau.load_state_dict(state["plateau"])
