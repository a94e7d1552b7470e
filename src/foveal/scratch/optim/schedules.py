"""Learning-rate schedules as pure functions of the step (or epoch) index.

Each function answers "what is the learning rate at index ``t``?", where ``t = 0`` is the first
step and ``t`` counts completed scheduler steps exactly as ``torch.optim.lr_scheduler`` does::

    for t in range(steps):
        opt.lr = cosine_lr(t, base_lr=0.1, t_max=steps)
        ...
        opt.step()

Being pure, a schedule needs no state to checkpoint and can be plotted with a list
comprehension. :func:`reduce_on_plateau_lr` is the one schedule that depends on observed
metrics; it takes the metric history instead of ``t``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Literal


def _check_index(name: str, t: int) -> None:
    if t < 0:
        raise ValueError(f"{name}: step index t must be >= 0, got {t!r}")


def step_lr(t: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """Decay by ``gamma`` every ``step_size`` steps: η_t = η_0 γ^⌊t / step_size⌋.

    Reference: ``torch.optim.lr_scheduler.StepLR``.
    """
    _check_index("step_lr", t)
    if step_size <= 0:
        raise ValueError(f"step_lr: step_size must be > 0, got {step_size!r}")
    return base_lr * gamma ** (t // step_size)


def multistep_lr(t: int, base_lr: float, milestones: Sequence[int], gamma: float = 0.1) -> float:
    """Decay by ``gamma`` at each milestone reached: η_t = η_0 γ^#{m in milestones : m <= t}.

    A milestone listed twice decays twice, as in torch.
    Reference: ``torch.optim.lr_scheduler.MultiStepLR``.
    """
    _check_index("multistep_lr", t)
    return base_lr * gamma ** bisect.bisect_right(sorted(milestones), t)


def exponential_lr(t: int, base_lr: float, gamma: float) -> float:
    """Decay by ``gamma`` every step: η_t = η_0 γ^t.

    Reference: ``torch.optim.lr_scheduler.ExponentialLR``.
    """
    _check_index("exponential_lr", t)
    return base_lr * gamma**t


def cosine_lr(t: int, base_lr: float, t_max: int, eta_min: float = 0.0) -> float:
    """Half a cosine from ``base_lr`` down to ``eta_min`` over ``t_max`` steps.

    η_t = η_min + (η_0 - η_min) (1 + cos(π t / T)) / 2 for t <= T, and η_min after.

    Equals ``torch.optim.lr_scheduler.CosineAnnealingLR`` for t <= T; torch's lr then rises
    again along the same cosine (period 2T), here it stays at η_min.
    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017, eq. 5 (one cycle, no restart).
    """
    _check_index("cosine_lr", t)
    if t_max <= 0:
        raise ValueError(f"cosine_lr: t_max must be > 0, got {t_max!r}")
    t = min(t, t_max)
    return eta_min + (base_lr - eta_min) * (1.0 + math.cos(math.pi * t / t_max)) / 2.0


def linear_lr(
    t: int,
    base_lr: float,
    start_factor: float = 1.0 / 3.0,
    end_factor: float = 1.0,
    total_iters: int = 5,
) -> float:
    """Scale ``base_lr`` by a factor moving linearly from ``start_factor`` to ``end_factor``.

    η_t = η_0 (s + (e - s) min(t, T) / T) with T = ``total_iters``; constant after T.
    Reference: ``torch.optim.lr_scheduler.LinearLR`` (same defaults).
    """
    _check_index("linear_lr", t)
    if total_iters <= 0:
        raise ValueError(f"linear_lr: total_iters must be > 0, got {total_iters!r}")
    frac = min(t, total_iters) / total_iters
    return base_lr * (start_factor + (end_factor - start_factor) * frac)


def inverse_sqrt_lr(t: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warmup to ``base_lr`` at ``warmup_steps``, then decay as 1 / sqrt(t).

    η_t = η_0 min(t / W, sqrt(W / t)) for t >= 1, and η_0 = 0 at t = 0.

    This is the Transformer rule lr = d_model^-0.5 min(t^-0.5, t W^-1.5) with the constant
    d_model^-0.5 W^-0.5 folded into η_0 (the peak learning rate, reached at t = W). The paper
    counts steps from 1; pass ``t + 1`` to avoid the zero learning rate at ``t = 0``.
    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Sec. 5.3, eq. 3.
    """
    _check_index("inverse_sqrt_lr", t)
    if warmup_steps <= 0:
        raise ValueError(f"inverse_sqrt_lr: warmup_steps must be > 0, got {warmup_steps!r}")
    if t == 0:
        return 0.0
    return base_lr * min(t / warmup_steps, math.sqrt(warmup_steps / t))


def linear_warmup(
    t: int,
    base_lr: float,
    warmup_steps: int,
    after: Callable[[int], float] | None = None,
    start_factor: float = 0.0,
) -> float:
    """Ramp linearly up to ``base_lr`` over ``warmup_steps``, then hand over to ``after``.

    η_t = η_0 (s + (1 - s) t / W)     for t < W
    η_t = after(t - W)                for t >= W   (η_0 if ``after`` is None)

    ``after`` is any schedule of its own step index, e.g.
    ``lambda k: cosine_lr(k, base_lr, t_max=steps - W)``: its clock starts at 0 when warmup
    ends. Equals ``torch.optim.lr_scheduler.SequentialLR`` of ``LinearLR(start_factor=s,
    total_iters=W)`` and the ``after`` scheduler with ``milestones=[W]`` (torch needs s > 0).
    Reference: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
    arXiv:1706.02677, Sec. 2.2 (gradual warmup).
    """
    _check_index("linear_warmup", t)
    if warmup_steps < 0:
        raise ValueError(f"linear_warmup: warmup_steps must be >= 0, got {warmup_steps!r}")
    if t < warmup_steps:
        return base_lr * (start_factor + (1.0 - start_factor) * t / warmup_steps)
    return after(t - warmup_steps) if after is not None else base_lr


def reduce_on_plateau_lr(
    metrics: Sequence[float],
    base_lr: float,
    mode: Literal["min", "max"] = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: Literal["rel", "abs"] = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
    eps: float = 1e-8,
) -> float:
    """The learning rate in force after observing ``metrics``, one value per epoch.

    Replays the state machine of ``torch.optim.lr_scheduler.ReduceLROnPlateau``. For each
    metric x (mode ``"min"``; ``"max"`` flips the comparisons and the sign of the threshold)::

        improved  = x < best (1 - threshold)        (threshold_mode "rel")
                    x < best - threshold            (threshold_mode "abs")
        if improved: best = x; bad = 0   else: bad += 1
        if in cooldown: cooldown_left -= 1; bad = 0  (bad epochs during cooldown don't count)
        if bad > patience:
            η <- max(η factor, min_lr), unless that changes η by <= eps
            cooldown_left = cooldown; bad = 0

    ``best`` starts at +inf (``"min"``) or -inf (``"max"``). As in torch, the "rel" threshold
    multiplies ``best``, so for negative metrics it loosens rather than tightens the test.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"reduce_on_plateau_lr: mode must be 'min' or 'max', got {mode!r}")
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(
            f"reduce_on_plateau_lr: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
        )
    if not factor < 1.0:
        raise ValueError(f"reduce_on_plateau_lr: factor must be < 1, got {factor!r}")

    def is_better(x: float, best: float) -> bool:
        if mode == "min":
            return x < (best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold)
        return x > (best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold)

    lr = base_lr
    best = math.inf if mode == "min" else -math.inf
    bad = cooldown_left = 0
    for x in metrics:
        x = float(x)
        if is_better(x, best):
            best, bad = x, 0
        else:
            bad += 1
        if cooldown_left > 0:
            cooldown_left -= 1
            bad = 0
        if bad > patience:
            new_lr = max(lr * factor, min_lr)
            if lr - new_lr > eps:
                lr = new_lr
            cooldown_left, bad = cooldown, 0
    return lr
