"""Dropout (of units) and DropConnect (of weights), both "inverted": scaled at training time.

Convention (torch's): ``p`` is the probability of DROPPING an element, so a kept element is
multiplied by ``1/(1 − p)`` and ``E[output] = input``; at evaluation the op is the identity and
needs no rescaling. ``p`` must lie in [0, 1): with p = 1 every element is dropped and the scale
``1/(1 − p)`` is undefined.

- dropout (Srivastava et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks from
  Overfitting", JMLR 15): ``y = x ⊙ m / (1 − p)``, ``mᵢ ~ Bernoulli(1 − p)`` i.i.d.
  Backward: ``∂L/∂x = g ⊙ m / (1 − p)`` with the SAME mask m drawn in the forward pass.
- drop_connect (Wan et al. 2013, "Regularization of Neural Networks using DropConnect", ICML):
  ``y = x (W ⊙ M / (1 − p))ᵀ + b``, ``Mᵢⱼ ~ Bernoulli(1 − p)``.
  Backward: ``∂L/∂x = G W̃``, ``∂L/∂W = (Gᵀ x) ⊙ M / (1 − p)``, ``∂L/∂b = Σₙ G`` with
  ``W̃ = W ⊙ M / (1 − p)``.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.ops.elementwise import mul
from foveal.scratch.ops.linear import linear
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, float_tensor, node


def dropout(
    x: ArrayLike, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    ``1/(1 − p)``; the identity (``x`` itself) in eval mode or when p = 0.

    Args:
        x: any shape, floating point.
        p: probability of dropping, in [0, 1).
        training: apply the mask only when True.
        rng: generator for the mask (a fresh unseeded one if None).

    Backward: ``g ⊙ m / (1 − p)``, reusing the forward mask, so the gradient is exactly zero
    where the output was zeroed.
    """
    x = float_tensor(x, "dropout")
    check_drop_probability(p, "dropout")
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape) >= p  # P(keep) = 1 − p
    scaled_mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return node(x.data * scaled_mask, (x,), lambda g: (g * scaled_mask,), "dropout")


def drop_connect(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """A linear layer ``y = x W̃ᵀ + b`` whose weights are dropped: ``W̃ = W ⊙ M / (1 − p)``.

    x (..., D), W (M, D), b (M,) → y (..., M), torch's ``nn.Linear`` layout.

    Choices, stated because the paper leaves room:
    - one mask M per call, SHARED by every sample in the batch (the paper draws one per
      sample; sharing turns the op into a single matmul and still regularises across steps);
    - only W is dropped, the bias is kept;
    - inverted scaling by 1/(1 − p), so eval mode is the plain linear map (instead of the
      paper's moment-matching Gaussian approximation at inference).

    Backward: ``∂L/∂W = (Gᵀ x) ⊙ M / (1 − p)`` (no gradient to dropped weights), and
    ``∂L/∂x = G W̃``, ``∂L/∂b = Σ G`` as for :func:`~foveal.scratch.ops.linear.linear`.
    """
    x = float_tensor(x, "drop_connect")
    weight = float_tensor(weight, "drop_connect")
    check_drop_probability(p, "drop_connect")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"drop_connect: expected x (..., D) and weight (M, D), got {x.shape} and "
            f"{weight.shape}"
        )
    if not training or p == 0:
        return linear(x, weight, bias)
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(weight.shape) >= p
    scaled_mask = keep.astype(weight.dtype) * weight.dtype.type(1.0 / (1.0 - p))
    return linear(x, mul(weight, as_tensor(scaled_mask)), bias)


def check_drop_probability(p: float, op: str) -> None:
    """Raise ValueError naming ``op`` unless 0 <= p < 1 (p = probability of dropping)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(
            f"{op}: p (the probability of dropping) must be in [0, 1), got {p}"
            + ("; p = 1 would drop everything and the 1/(1 − p) scale is undefined"
               if p == 1 else "")
        )

