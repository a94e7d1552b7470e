"""SGD against torch.optim.SGD, step by step on a shared random gradient stream."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import SGD


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"weight_decay": 1e-2},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.5, "dampening": 0.1, "weight_decay": 5e-2},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.8, "nesterov": True, "weight_decay": 1e-2},
    ],
)
def test_sgd_matches_torch_every_step(lockstep, kwargs):
    lockstep(lambda p: SGD(p, lr=0.05, **kwargs), lambda t: torch.optim.SGD(t, lr=0.05, **kwargs))


def test_nesterov_uses_gradient_plus_momentum_times_buffer():
    """torch's Nesterov step is θ -= η (g_t + μ b_t) with b_t = μ b_{t-1} + g_t. The common wrong
    variant steps along μ b_{t-1} + g_t -- which is just b_t, i.e. heavy-ball momentum."""
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((5, 6))
    lr, mu = 0.1, 0.9

    p = SimpleNamespace(data=np.zeros(6), grad=None)
    ours = SGD([p], lr=lr, momentum=mu, nesterov=True)
    pt = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    ref = torch.optim.SGD([pt], lr=lr, momentum=mu, nesterov=True)
    wrong, b = np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads):
        p.grad, pt.grad = g, torch.from_numpy(g.copy())
        ours.step()
        ref.step()
        wrong -= lr * (mu * b + g)  # look-ahead with the *previous* buffer
        b = g.copy() if t == 0 else mu * b + g
        np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12)
    assert np.abs(wrong - pt.detach().numpy()).max() > 0.1


def test_sgd_without_momentum_is_plain_gradient_descent():
    """Closed form: θ_T = θ_0 - η Σ_t g_t."""
    rng = np.random.default_rng(2)
    grads = rng.standard_normal((4, 3))
    p = SimpleNamespace(data=np.ones(3), grad=None)
    opt = SGD([p], lr=0.3)
    for g in grads:
        p.grad = g
        opt.step()
    np.testing.assert_allclose(p.data, 1.0 - 0.3 * grads.sum(axis=0), rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"lr": -0.1}, "lr", "-0.1"),
        ({"lr": 0.1, "momentum": 1.0}, "momentum", "1.0"),
        ({"lr": 0.1, "momentum": -0.5}, "momentum", "-0.5"),
        ({"lr": 0.1, "weight_decay": -1e-4}, "weight_decay", "-0.0001"),
        ({"lr": 0.1, "nesterov": True}, "nesterov", "True"),
        ({"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True}, "dampening", "0.1"),
    ],
)
def test_sgd_rejects_bad_hyperparameters(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"SGD: {name} must be .*got {value}"):
        SGD([SimpleNamespace(data=np.zeros(2), grad=None)], **kwargs)
