"""Adagrad against torch.optim.Adagrad, step by step on a shared random gradient stream."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import Adagrad


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr_decay": 0.05},
        {"weight_decay": 0.1},
        {"initial_accumulator_value": 0.5},
        {"lr_decay": 0.01, "weight_decay": 0.02, "initial_accumulator_value": 0.1, "eps": 1e-6},
    ],
)
def test_adagrad_matches_torch_every_step(lockstep, kwargs):
    lockstep(
        lambda p: Adagrad(p, lr=0.1, **kwargs), lambda t: torch.optim.Adagrad(t, lr=0.1, **kwargs)
    )


def test_adagrad_first_step_is_lr_times_sign():
    """Closed form: with S_0 = 0 the first step is η g / (|g| + ε) ≈ η sign(g)."""
    g = np.array([3.0, -0.02, 1e3])
    p = SimpleNamespace(data=np.zeros(3), grad=g)
    Adagrad([p], lr=0.5).step()
    np.testing.assert_allclose(p.data, -0.5 * np.sign(g), rtol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"lr": -1.0}, "lr", "-1.0"),
        ({"lr_decay": -0.1}, "lr_decay", "-0.1"),
        ({"eps": 0.0}, "eps", "0.0"),
        ({"initial_accumulator_value": -1.0}, "initial_accumulator_value", "-1.0"),
    ],
)
def test_adagrad_rejects_bad_hyperparameters(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"Adagrad: {name} must be .*got {value}"):
        Adagrad([SimpleNamespace(data=np.zeros(2), grad=None)], **kwargs)
