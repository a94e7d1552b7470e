"""Compare a scratch op or layer with its torch twin (forward and every gradient).

Both sides get the same float64 inputs and the same random upstream gradient ``r``; we compare
``f(x)`` and each ``∂(Σ r ⊙ f)/∂xᵢ`` with :func:`~foveal.scratch.gradcheck.relative_error`.
:func:`torch_check` does this for a function of tensors; :func:`module_check` also compares the
gradient of every parameter of a layer with the torch layer's parameter of the same name.
torch is imported lazily: the engine itself needs only NumPy (and scipy.fft for the FFT
convolution).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from foveal.scratch.gradcheck import relative_error
from foveal.scratch.layers.module import Module
from foveal.scratch.tensor import Tensor


@dataclass(frozen=True)
class TorchCheckResult:
    """Relative errors of the forward value and of the gradient for each input."""

    forward_error: float
    grad_errors: tuple[float, ...]
    param_errors: tuple[tuple[str, float], ...] = ()

    @property
    def max_error(self) -> float:
        return max((self.forward_error, *self.grad_errors, *(e for _, e in self.param_errors)))

    def assert_close(self, tolerance: float = 1e-8) -> None:
        if self.max_error > tolerance:
            params = "".join(f", {name} {e:.2e}" for name, e in self.param_errors)
            raise AssertionError(
                f"scratch vs torch: forward error {self.forward_error:.2e}, gradient errors "
                f"{', '.join(f'{e:.2e}' for e in self.grad_errors)}{params} "
                f"(tolerance {tolerance:.0e})"
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


def module_check(
    ours: Module,
    theirs: Any,
    inputs: Sequence[np.ndarray],
    call_ours: Callable[..., Tensor] | None = None,
    call_theirs: Callable[..., Any] | None = None,
    *,
    load_weights: bool = True,
    seed: int = 0,
) -> TorchCheckResult:
    """Compare a scratch layer with its torch twin: output, input and parameter gradients.

    ``ours`` is a :class:`~foveal.scratch.layers.module.Module` and ``theirs`` the matching
    ``torch.nn.Module`` in float64. With ``load_weights`` ours first loads torch's state dict, so
    both start from the same weights. ``call_ours(*inputs)`` and ``call_theirs(*inputs)`` run the
    layers (default: the layers themselves; pass lambdas for masks or keyword arguments). Both
    sides' parameter names must agree; gradients already held are cleared first.
    """
    if load_weights:
        ours.load_state_dict(theirs.state_dict())
    ours.zero_grad()
    theirs.zero_grad()
    theirs_params = dict(theirs.named_parameters())
    ours_names = [name for name, _ in ours.named_parameters()]
    if ours_names != list(theirs_params):
        raise AssertionError(f"scratch vs torch: parameter names differ, {ours_names} vs "
                             f"{list(theirs_params)}")
    result = torch_check(call_ours or ours, call_theirs or theirs, inputs, seed=seed)
    errors = []
    for name, p in ours.named_parameters():
        ref = theirs_params[name].grad
        ga = p.grad if p.grad is not None else np.zeros(p.shape)
        gb = ref.numpy() if ref is not None else np.zeros(p.shape)
        errors.append((name, relative_error(ga, gb)))
    return TorchCheckResult(result.forward_error, result.grad_errors, tuple(errors))
