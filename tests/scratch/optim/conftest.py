"""Shared fixture for the optimizer tests: run ours and torch.optim in lockstep on one gradient
stream and compare the parameters after every step."""

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import pytest
import torch

ODD_SHAPES = [(3,), (4, 5), (2, 3, 4), (7, 1)]


@pytest.fixture
def lockstep() -> Callable[..., None]:
    """``lockstep(ours, reference, shapes, steps=50)`` with ``ours(params)`` building one of our
    optimizers and ``reference(tensors)`` the torch one; asserts equal parameters at every step
    (rtol 1e-6, float64). Gradients are i.i.d. normal, the same for both."""

    def run(
        ours: Callable[[list[SimpleNamespace]], object],
        reference: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
        shapes: Sequence[tuple[int, ...]] = ODD_SHAPES,
        steps: int = 50,
        seed: int = 0,
    ) -> None:
        rng = np.random.default_rng(seed)
        params = [SimpleNamespace(data=rng.standard_normal(s), grad=None) for s in shapes]
        tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
        opt, ref = ours(params), reference(tensors)
        for t in range(steps):
            for p, pt in zip(params, tensors, strict=True):
                g = rng.standard_normal(p.data.shape)
                p.grad, pt.grad = g.copy(), torch.from_numpy(g.copy())
            opt.step()
            ref.step()
            for i, (p, pt) in enumerate(zip(params, tensors, strict=True)):
                np.testing.assert_allclose(
                    p.data,
                    pt.detach().numpy(),
                    rtol=1e-6,
                    atol=1e-12,
                    err_msg=f"parameter {i} after step {t + 1}",
                )

    return run
