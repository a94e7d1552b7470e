"""clip_grad_norm against torch.nn.utils.clip_grad_norm_."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import clip_grad_norm


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipped, untouched
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(7)
    shapes = [(3,), (4, 5), (2, 3, 4)]
    grads = [rng.standard_normal(s) for s in shapes]
    params = [SimpleNamespace(data=np.zeros(g.shape), grad=g.copy()) for g in grads]
    params.append(SimpleNamespace(data=np.zeros(2), grad=None))
    tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())

    total = clip_grad_norm(params, max_norm, norm_type)
    ref_total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type)

    assert total == pytest.approx(float(ref_total), rel=1e-12)
    for p, t in zip(params[:-1], tensors, strict=True):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    assert params[-1].grad is None


def test_clip_grad_norm_returns_norm_before_clipping_and_keeps_direction():
    """Closed form: g = (3, 4) has norm 5; clipped to 1 it becomes (0.6, 0.8) up to the 1e-6."""
    p = SimpleNamespace(data=np.zeros(2), grad=np.array([3.0, 4.0]))
    assert clip_grad_norm([p], max_norm=1.0) == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_without_gradients_returns_zero():
    assert clip_grad_norm([SimpleNamespace(data=np.zeros(2), grad=None)], 1.0) == 0.0


def test_clip_grad_norm_rejects_negative_max_norm():
    with pytest.raises(ValueError, match=r"max_norm must be >= 0, got -1.0"):
        clip_grad_norm([SimpleNamespace(data=np.zeros(2), grad=np.ones(2))], -1.0)
