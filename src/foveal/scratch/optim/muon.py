"""Muon: momentum SGD whose update matrix is orthogonalised by a Newton-Schulz iteration."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from foveal.scratch.optim.optimizer import Optimizer, Parameter

# Keller Jordan's quintic coefficients: the largest slope at zero that still keeps every singular
# value in roughly [0.7, 1.2] after five steps.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(
    g: np.ndarray,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    steps: int = 5,
    eps: float = 1e-7,
) -> np.ndarray:
    r"""Approximately orthogonalise a matrix: map G = U S Vᵀ to about U Vᵀ.

    Args:
        g: ``(rows, cols)`` matrix.
        coefficients: ``(a, b, c)`` of the odd quintic p(x) = a x + b x³ + c x⁵.
        steps: number of iterations.
        eps: lower bound on the Frobenius norm used for scaling (avoids 0 / 0).

    Returns:
        ``(rows, cols)`` matrix U p^k(S / ‖G‖_F) Vᵀ, with the same singular vectors as ``g``.

    The iteration, on the wide orientation (transpose first when rows > cols so that the Gram
    matrix A is the smaller one)::

        X <- G / max(‖G‖_F, ε)             (all singular values now <= 1)
        repeat k times:  A = X Xᵀ;  X <- a X + (b A + c A²) X

    Each step applies p to every singular value. The default coefficients trade exact
    convergence for speed: singular values end up in roughly [0.7, 1.2], not at 1, which Muon
    tolerates. ``torch.optim.Muon`` runs this in bfloat16; here it runs in the input's dtype.

    Reference: Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024),
    https://kellerjordan.github.io/posts/muon/; Bernstein & Newhouse, "Old Optimizer, New Norm",
    arXiv:2409.20325.
    """
    if g.ndim != 2:
        raise ValueError(f"newton_schulz expects a 2-D matrix, got shape {g.shape}")
    if len(coefficients) != 3:
        raise ValueError(f"newton_schulz expects 3 coefficients (a, b, c), got {coefficients!r}")
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    X = g.T if tall else g
    X = X / max(float(np.linalg.norm(X)), eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if tall else X


def adjusted_lr(lr: float, shape: tuple[int, ...], adjust_lr_fn: str | None) -> float:
    r"""Muon's per-matrix learning rate for a ``(A, B)`` parameter.

    ``"original"`` (also ``None``): η sqrt(max(1, A / B)) -- Jordan's scaling, so tall matrices
    get the same update RMS as square ones. ``"match_rms_adamw"``: 0.2 η sqrt(max(A, B)) -- an
    orthogonal A x B update has RMS 1 / sqrt(max(A, B)); this rescales it to AdamW's typical
    update RMS of 0.2 so AdamW's lr and weight decay can be reused (Liu et al., "Muon is
    Scalable for LLM Training", arXiv:2502.16982, Sec. 2.2).
    """
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    raise ValueError(
        f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}"
    )


class Muon(Optimizer):
    r"""Muon for 2-D parameters (``torch.optim.Muon`` semantics, torch 2.13).

    With learning rate :math:`\eta`, momentum :math:`\mu` and weight decay :math:`\lambda`;
    the buffer starts at zero::

        B_t = μ B_{t-1} + (1 - μ) g                   (an EMA: torch's ``buf.lerp_(g, 1 - μ)``)
        U   = (1 - μ) g + μ B_t   if nesterov   else   B_t
        O   = newton_schulz(U)
        θ   <- θ (1 - η λ)                             (decoupled decay, with the unadjusted η)
        θ   <- θ - adjusted_lr(η, shape) O

    Note torch's docstring writes B_t = μ B_{t-1} + g; its code (and this class) use the EMA
    form, which only rescales the update before Newton-Schulz normalises it away -- except for
    the ε floor on ‖U‖_F. Only 2-D parameters are accepted; biases, gains and embeddings belong
    to another optimizer such as AdamW.

    Reference: Jordan et al., https://kellerjordan.github.io/posts/muon/ (2024);
    Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982.
    """

    weight_decay: float
    momentum: float
    nesterov: bool
    ns_coefficients: tuple[float, float, float]
    eps: float
    ns_steps: int
    adjust_lr_fn: str | None

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=tuple(ns_coefficients),
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            self._fail("adjust_lr_fn", adjust_lr_fn, "None, 'original' or 'match_rms_adamw'")
        if len(self.ns_coefficients) != 3:
            self._fail("ns_coefficients", ns_coefficients, "three values (a, b, c)")
        if not (isinstance(ns_steps, int) and 0 < ns_steps < 100):
            self._fail("ns_steps", ns_steps, "an integer in [1, 100)")
        for i, p in enumerate(self.params):
            if p.data.ndim != 2:
                raise ValueError(
                    f"Muon: only 2-D parameters are supported, parameter {i} has shape "
                    f"{p.data.shape}; optimise it with e.g. AdamW"
                )

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]) -> None:
        """One Muon step on ``param`` in place (see the class docstring for the rule)."""
        if not state:
            state["momentum_buffer"] = np.zeros_like(param)
        mu = self.momentum
        B = state["momentum_buffer"]
        B *= mu
        B += (1.0 - mu) * grad
        U = (1.0 - mu) * grad + mu * B if self.nesterov else B
        ortho = newton_schulz(U, self.ns_coefficients, self.ns_steps, self.eps)
        param *= 1.0 - self.lr * self.weight_decay
        param -= adjusted_lr(self.lr, param.shape, self.adjust_lr_fn) * ortho
