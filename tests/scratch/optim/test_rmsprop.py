"""RMSprop against torch.optim.RMSprop, step by step on a shared random gradient stream."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import RMSprop


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_rmsprop_matches_torch_every_step(lockstep, centered, momentum, weight_decay):
    kwargs = {"centered": centered, "momentum": momentum, "weight_decay": weight_decay}
    lockstep(
        lambda p: RMSprop(p, lr=1e-2, alpha=0.9, **kwargs),
        lambda t: torch.optim.RMSprop(t, lr=1e-2, alpha=0.9, **kwargs),
    )


def test_rmsprop_adds_eps_after_the_square_root():
    """Closed form for one step from v_0 = 0: θ_1 = -η g / (sqrt((1 - α) g²) + ε). Putting ε
    inside the root would give sqrt((1 - α) g² + ε), a visibly different step for small g."""
    g, lr, alpha, eps = np.array([1e-3]), 1.0, 0.99, 1e-4
    p = SimpleNamespace(data=np.zeros(1), grad=g)
    RMSprop([p], lr=lr, alpha=alpha, eps=eps).step()
    after = -lr * g / (np.sqrt((1 - alpha) * g**2) + eps)
    inside = -lr * g / np.sqrt((1 - alpha) * g**2 + eps)
    np.testing.assert_allclose(p.data, after, rtol=1e-12)
    assert abs(p.data[0] - inside[0]) > 0.1 * abs(inside[0])


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"alpha": 1.5}, "alpha", "1.5"),
        ({"momentum": 1.0}, "momentum", "1.0"),
        ({"eps": -1e-8}, "eps", "-1e-08"),
    ],
)
def test_rmsprop_rejects_bad_hyperparameters(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"RMSprop: {name} must be .*got {value}"):
        RMSprop([SimpleNamespace(data=np.zeros(2), grad=None)], **kwargs)
