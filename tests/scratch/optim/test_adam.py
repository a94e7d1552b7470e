"""Adam and AdamW against torch.optim.Adam / AdamW, step by step on a shared gradient stream."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import Adam, AdamW


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"weight_decay": 1e-2}, {"betas": (0.5, 0.9), "eps": 1e-6}, {"betas": (0.0, 0.99)}],
)
def test_adam_matches_torch_every_step(lockstep, amsgrad, kwargs):
    lockstep(
        lambda p: Adam(p, lr=1e-2, amsgrad=amsgrad, **kwargs),
        lambda t: torch.optim.Adam(t, lr=1e-2, amsgrad=amsgrad, **kwargs),
    )


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("weight_decay", [1e-2, 0.3])
def test_adamw_matches_torch_every_step(lockstep, amsgrad, weight_decay):
    kwargs = {"amsgrad": amsgrad, "weight_decay": weight_decay, "betas": (0.8, 0.95)}
    lockstep(
        lambda p: AdamW(p, lr=1e-2, **kwargs), lambda t: torch.optim.AdamW(t, lr=1e-2, **kwargs)
    )


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.99, 0.999)])
def test_adam_uses_bias_corrected_moments(betas):
    """Closed form: the first step is η m̂/(sqrt(v̂) + ε) = η g/(|g| + ε) ≈ η sign(g) whatever the
    betas. Uncorrected moments would step η (1 - β1)/sqrt(1 - β2) sign(g) instead."""
    lr, g = 1e-3, np.array([0.7, -2.0, 30.0])
    p = SimpleNamespace(data=np.zeros(3), grad=g)
    Adam([p], lr=lr, betas=betas).step()
    np.testing.assert_allclose(p.data, -lr * np.sign(g), rtol=1e-6)
    b1, b2 = betas
    uncorrected = lr * (1 - b1) / np.sqrt(1 - b2)
    assert abs(uncorrected - lr) > 0.5 * lr


def test_adamw_decay_is_decoupled_from_gradient():
    """AdamW shrinks θ by (1 - ηλ) outside the moments: it equals a decay followed by an Adam
    step with no weight decay, and differs from Adam with the same λ as an L2 gradient term."""
    rng = np.random.default_rng(3)
    data, grads = rng.standard_normal(8), rng.standard_normal((10, 8))
    lr, lam = 0.05, 0.5
    pw, pl, pd = (SimpleNamespace(data=data.copy(), grad=None) for _ in range(3))
    adamw = AdamW([pw], lr=lr, weight_decay=lam)
    adam_l2 = Adam([pl], lr=lr, weight_decay=lam)
    adam_plain = Adam([pd], lr=lr)
    for g in grads:
        pw.grad = pl.grad = pd.grad = g
        adamw.step()
        adam_l2.step()
        pd.data *= 1 - lr * lam
        adam_plain.step()
    np.testing.assert_allclose(pw.data, pd.data, rtol=1e-12)
    assert np.abs(pw.data - pl.data).max() > 1e-2


def test_adamw_default_weight_decay_is_torchs():
    p = SimpleNamespace(data=np.zeros(1), grad=None)
    assert AdamW([p]).weight_decay == torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"betas": (0.9, 1.0)}, "betas", r"\(0.9, 1.0\)"),
        ({"betas": (-0.1, 0.999)}, "betas", r"\(-0.1, 0.999\)"),
        ({"eps": 0.0}, "eps", "0.0"),
        ({"weight_decay": -0.01}, "weight_decay", "-0.01"),
        ({"lr": -1e-3}, "lr", "-0.001"),
    ],
)
@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_rejects_bad_hyperparameters(cls, kwargs, name, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: {name} must be .*got {value}"):
        cls([SimpleNamespace(data=np.zeros(2), grad=None)], **kwargs)
