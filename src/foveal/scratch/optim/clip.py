"""Gradient clipping by the global norm of all gradients together."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from foveal.scratch.optim.optimizer import Parameter


def clip_grad_norm(params: Iterable[Parameter], max_norm: float, norm_type: float = 2.0) -> float:
    r"""Rescale all gradients together so their joint norm is at most ``max_norm``.

    Args:
        params: parameters; those whose ``grad`` is ``None`` are ignored.
        max_norm: largest allowed total norm.
        norm_type: p of the p-norm; ``math.inf`` for the max-abs norm.

    Returns:
        The total norm *before* clipping (0.0 when no parameter has a gradient).

    The total norm treats all gradients as one concatenated vector::

        N = ( Σ_i ‖g_i‖_p^p )^{1/p}        (N = max_i ‖g_i‖_∞ for p = ∞)
        g_i <- g_i · max_norm / (N + 1e-6)   only if that factor is < 1

    Clipping the joint norm keeps the update direction; clipping each gradient separately would
    not. The 1e-6 guards against N = 0 and makes the clipped norm slightly below ``max_norm``.

    Reference: Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural
    networks", ICML 2013, Alg. 1; ``torch.nn.utils.clip_grad_norm_`` documentation.
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm: max_norm must be >= 0, got {max_norm!r}")
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0, got {norm_type!r}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = [float(np.linalg.norm(g.ravel(), ord=norm_type)) for g in grads]
    total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= scale
    return total
