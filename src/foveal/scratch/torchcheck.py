"""Compare a scratch op with the same op under torch autograd (forward and every gradient).

Both sides get the same float64 inputs and the same random upstream gradient ``r``; we compare
``f(x)`` and each ``∂(Σ r ⊙ f)/∂xᵢ`` with :func:`~foveal.scratch.gradcheck.relative_error`.
torch is imported lazily: the engine itself needs only NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from foveal.scratch.gradcheck import relative_error
from foveal.scratch.tensor import Tensor


@dataclass(frozen=True)
class TorchCheckResult:
    """Relative errors of the forward value and of the gradient for each input."""

    forward_error: float
    grad_errors: tuple[float, ...]

    @property
    def max_error(self) -> float:
        return max((self.forward_error, *self.grad_errors))

    def assert_close(self, tolerance: float = 1e-8) -> None:
        if self.max_error > tolerance:
            raise AssertionError(
                f"scratch vs torch: forward error {self.forward_error:.2e}, gradient errors "
                f"{', '.join(f'{e:.2e}' for e in self.grad_errors)} (tolerance {tolerance:.0e})"
            )


def torch_check(
    ours: Callable[..., Tensor],
    theirs: Callable[..., Any],
    inputs: Sequence[np.ndarray],
    *,
    differentiable: Sequence[bool] | None = None,
    seed: int = 0,
) -> TorchCheckResult:
    """Run ``ours(*Tensors)`` and ``theirs(*torch_tensors)`` and compare values and gradients.

    ``differentiable[i] = False`` passes input ``i`` without a gradient on both sides
    (integer labels, masks).
    """
    import torch

    flags = list(differentiable) if differentiable is not None else [True] * len(inputs)
    ours_in = [Tensor(x, requires_grad=f) if f else x for x, f in zip(inputs, flags, strict=True)]
    theirs_in = [
        torch.tensor(x, requires_grad=f) if f else torch.as_tensor(x)
        for x, f in zip(inputs, flags, strict=True)
    ]
    out = ours(*ours_in)
    ref = theirs(*theirs_in)
    ref_value = ref.detach().numpy()
    if out.shape != ref_value.shape:
        raise AssertionError(f"scratch vs torch: output shapes differ, {out.shape} vs "
                             f"{ref_value.shape}")
    r = np.random.default_rng(seed).standard_normal(out.shape)
    grads: list[float] = []
    if out.requires_grad:
        out.backward(r)
        ref.backward(torch.as_tensor(r, dtype=ref.dtype))
        for a, b, f in zip(ours_in, theirs_in, flags, strict=True):
            if not f:
                continue
            ga = a.grad if a.grad is not None else np.zeros(a.shape)
            gb = b.grad.numpy() if b.grad is not None else np.zeros(a.shape)
            grads.append(relative_error(ga, gb))
    return TorchCheckResult(relative_error(out.data, ref_value), tuple(grads))
