"""The optimizer base class: a list of parameters, per-parameter state, and one update rule.

A parameter is any object with two attributes:

* ``data`` -- a float ``np.ndarray``, updated **in place** by :meth:`Optimizer.step`;
* ``grad`` -- an ``np.ndarray`` of the same shape, or ``None`` meaning "no gradient this step":
  such a parameter is skipped entirely (not decayed, its state not advanced), as in
  ``torch.optim``.

A subclass states its update rule in :meth:`Optimizer.update`, which sees one parameter array,
its gradient and its state dict. Everything else -- skipping missing gradients, ``zero_grad``,
checkpointing, hyperparameter validation -- lives here.

Hyperparameters are plain attributes (``opt.lr``, ``opt.momentum``...). ``lr`` is meant to be
reassigned between steps by a schedule (:mod:`foveal.scratch.optim.schedules`)::

    for t in range(steps):
        opt.lr = cosine_lr(t, base_lr, t_max=steps)
        ...
        opt.step()
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np


class Parameter(Protocol):
    """What an optimizer needs from a parameter: ``data`` and a possibly missing ``grad``."""

    data: np.ndarray
    grad: np.ndarray | None


def _is_unit_interval(x: float) -> bool:
    return 0.0 <= x < 1.0


# name -> (is the value valid?, what was expected); checked for every optimizer that has the name.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: v >= 0.0, ">= 0"),
    "momentum": (_is_unit_interval, "in [0, 1)"),
    "dampening": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "alpha": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "betas": (
        lambda v: len(v) == 2 and all(_is_unit_interval(b) for b in v),
        "two values in [0, 1)",
    ),
    "eps": (lambda v: v > 0.0, "> 0"),
    "weight_decay": (lambda v: v >= 0.0, ">= 0"),
    "lr_decay": (lambda v: v >= 0.0, ">= 0"),
    "initial_accumulator_value": (lambda v: v >= 0.0, ">= 0"),
}


class Optimizer:
    """Base class: holds parameters, their state, and the hyperparameters as attributes.

    Args:
        params: iterable of parameters (objects with ``data`` and ``grad``); at least one.
        **defaults: hyperparameters of the concrete optimizer, e.g. ``lr=0.1, momentum=0.9``.
            Each becomes an attribute. Known names are validated (``lr >= 0``,
            ``0 <= momentum < 1``, ``betas`` in ``[0, 1)``, ``eps > 0``, ``weight_decay >= 0``,
            ``nesterov`` needs ``momentum > 0``); a bad value raises ``ValueError`` naming the
            optimizer, the hyperparameter and the value received.

    State is one dict per parameter, in the order of ``params``; an update rule creates its
    entries lazily on the parameter's first step with a gradient.
    """

    lr: float

    def __init__(self, params: Iterable[Parameter], **defaults: Any) -> None:
        self.params: list[Parameter] = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        self.defaults = dict(defaults)
        for name, value in defaults.items():
            self._check(name, value)
            setattr(self, name, value)
        if defaults.get("nesterov") and defaults.get("momentum", 0.0) == 0.0:
            self._fail("nesterov", True, "False when momentum == 0 (Nesterov needs momentum > 0)")
        self.state: list[dict[str, Any]] = [{} for _ in self.params]

    def _fail(self, name: str, value: Any, expected: str) -> None:
        raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")

    def _check(self, name: str, value: Any) -> None:
        if name in _CHECKS:
            is_valid, expected = _CHECKS[name]
            if not is_valid(value):
                self._fail(name, value, expected)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The current hyperparameter values (``lr`` as last set by a schedule)."""
        return {name: getattr(self, name) for name in self.defaults}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """Apply the update rule to one parameter array in place. Subclasses implement this."""
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter whose ``grad`` is not ``None``, in place."""
        self._check("lr", self.lr)
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(
                    f"{type(self).__name__}: grad shape {p.grad.shape} does not match "
                    f"parameter shape {p.data.shape}"
                )
            self.update(p.data, p.grad, state)

    def zero_grad(self) -> None:
        """Set every gradient to ``None`` (skipped by :meth:`step` until set again)."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the hyperparameters and per-parameter state (arrays and step counts)."""
        return {"hyperparameters": self.hyperparameters, "state": copy.deepcopy(self.state)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by :meth:`state_dict`.

        Arrays are copied (never aliased, writable even if the saved ones are read-only) and
        lists become tuples again, so a dict that went through JSON and safetensors loads too.
        """
        name = type(self).__name__
        hyper, state = state_dict["hyperparameters"], state_dict["state"]
        if set(hyper) != set(self.defaults):
            raise ValueError(
                f"{name}: state_dict has hyperparameters {sorted(hyper)}, "
                f"expected {sorted(self.defaults)} (saved from another optimizer?)"
            )
        if len(state) != len(self.params):
            raise ValueError(
                f"{name}: state_dict holds state for {len(state)} parameters, "
                f"this optimizer has {len(self.params)}"
            )
        for i, (p, s) in enumerate(zip(self.params, state, strict=True)):
            for key, value in s.items():
                if isinstance(value, np.ndarray) and value.shape != p.data.shape:
                    raise ValueError(
                        f"{name}: state {key!r} of parameter {i} has shape "
                        f"{value.shape}, the parameter has shape {p.data.shape}"
                    )
        for key, value in hyper.items():
            value = tuple(value) if isinstance(value, list) else value
            self._check(key, value)
            setattr(self, key, value)
        self.state = [
            {
                k: np.array(v) if isinstance(v, np.ndarray) else copy.deepcopy(v)
                for k, v in s.items()
            }
            for s in state
        ]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"
