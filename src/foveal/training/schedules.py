"""Learning-rate schedules as multipliers of the base rate, stepped once per optimiser step.

Each function returns ``f(t)`` for step ``t = 0, 1, …, T−1`` (``T`` = total steps) for use with
:class:`torch.optim.lr_scheduler.LambdaLR`, which sets ``lr_t = lr · f(t)``. With ``W`` warmup
steps the rate first rises linearly, ``f(t) = (t + 1) / W`` for ``t < W``, then:

- ``cosine``:   ``f(t) = m + (1 − m) · ½ (1 + cos(π u))``
- ``linear``:   ``f(t) = m + (1 − m) · (1 − u)``
- ``step``:     ``f(t) = γ^⌊(t − W) / S⌋``
- ``constant``: ``f(t) = 1``

where ``u = (t − W) / (T − W)`` runs from 0 to 1 after warmup and ``m`` is the final fraction
of the base rate. Cosine: Loshchilov & Hutter, "SGDR", ICLR 2017; warmup: Goyal et al.,
"Accurate, large minibatch SGD", 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from foveal.errors import ConfigError

SCHEDULE_NAMES: tuple[str, ...] = ("cosine", "linear", "step", "constant")


def lr_multiplier(
    name: str,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    final_fraction: float = 0.0,
    step_size: int = 1,
    gamma: float = 0.1,
) -> Callable[[int], float]:
    """The schedule ``name`` as a function of the step index (see the module docstring).

    ``step_size`` (in steps) and ``gamma`` are used by ``step`` only.
    """
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
        return 1.0

    return multiplier
