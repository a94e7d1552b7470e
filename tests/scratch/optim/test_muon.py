"""Muon against torch.optim.Muon (torch 2.13) and newton_schulz against its SVD closed form.

torch runs Newton-Schulz in bfloat16; ours runs in the input dtype. For the step-by-step
comparison the bfloat16 cast is patched out of torch (``Tensor.bfloat16`` -> a float64 copy),
so everything else -- the lerp momentum, the Nesterov form, the lr adjustment, the decoupled
decay -- is compared at float64 precision. A second test compares with unpatched torch at
bfloat16 tolerance.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import Muon, adjusted_lr, newton_schulz
from foveal.scratch.optim.muon import NS_COEFFICIENTS

TALL_AND_WIDE = [(7, 4), (3, 8), (5, 5)]


@pytest.fixture
def torch_muon_in_float64(monkeypatch):
    """torch.optim.Muon with its bfloat16 Newton-Schulz kept in float64 (a copy, as the cast
    would make: torch then divides it in place)."""
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self, *a, **k: self.clone())
    return torch.optim.Muon


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust_lr_fn", [None, "original", "match_rms_adamw"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_muon_matches_torch_every_step(
    lockstep, torch_muon_in_float64, nesterov, adjust_lr_fn, weight_decay
):
    kwargs = {"nesterov": nesterov, "adjust_lr_fn": adjust_lr_fn, "weight_decay": weight_decay}
    lockstep(
        lambda p: Muon(p, lr=0.02, **kwargs),
        lambda t: torch_muon_in_float64(t, lr=0.02, **kwargs),
        shapes=TALL_AND_WIDE,
    )


def test_muon_matches_bfloat16_torch_to_bfloat16_precision():
    """Unpatched torch: one step's update agrees to within bfloat16 round-off (8-bit mantissa,
    compounded over five NS iterations: a few percent)."""
    rng = np.random.default_rng(4)
    for shape in TALL_AND_WIDE:
        data, g = rng.standard_normal(shape), rng.standard_normal(shape)
        p = SimpleNamespace(data=data.copy(), grad=g)
        Muon([p], lr=1.0, weight_decay=0.0).step()
        pt = torch.tensor(data, requires_grad=True)
        pt.grad = torch.from_numpy(g.copy())
        torch.optim.Muon([pt], lr=1.0, weight_decay=0.0).step()
        ours, ref = p.data - data, pt.detach().numpy() - data
        assert np.linalg.norm(ours - ref) < 0.06 * np.linalg.norm(ref)
        assert np.sum(ours * ref) > 0.998 * np.linalg.norm(ours) * np.linalg.norm(ref)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (8, 8)])
def test_newton_schulz_matches_svd_closed_form(shape):
    """NS applies p(x) = a x + b x³ + c x⁵ to the singular values of G / ‖G‖_F and keeps the
    singular vectors: NS(G) = U p⁵(S / ‖G‖_F) Vᵀ."""
    g = np.random.default_rng(5).standard_normal(shape)
    U, S, Vt = np.linalg.svd(g, full_matrices=False)
    a, b, c = NS_COEFFICIENTS
    s = S / np.linalg.norm(g)
    for _ in range(5):
        s = a * s + b * s**3 + c * s**5
    np.testing.assert_allclose(newton_schulz(g), (U * s) @ Vt, rtol=1e-10, atol=1e-12)


def test_newton_schulz_output_is_near_orthogonal():
    """Quintic NS with Jordan's coefficients does not converge to exactly 1: the singular values
    of a random (well-conditioned, rectangular) matrix land in roughly [0.7, 1.2]."""
    for shape in [(32, 64), (64, 32)]:
        g = np.random.default_rng(6).standard_normal(shape)
        sv = np.linalg.svd(newton_schulz(g), compute_uv=False)
        assert sv.min() > 0.65 and sv.max() < 1.2, (sv.min(), sv.max())
        assert np.abs(sv - 1.0).max() > 0.05  # an exact orthogonaliser would give all ones


def test_newton_schulz_of_zero_is_zero():
    """The ε floor on ‖G‖_F avoids 0 / 0."""
    np.testing.assert_array_equal(newton_schulz(np.zeros((3, 4))), np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("shape", "fn", "expected"),
    [
        ((8, 2), "original", 0.1 * 2.0),
        ((2, 8), "original", 0.1),
        ((8, 2), "match_rms_adamw", 0.1 * 0.2 * np.sqrt(8)),
        ((3, 12), None, 0.1),
    ],
)
def test_adjusted_lr_closed_form(shape, fn, expected):
    assert adjusted_lr(0.1, shape, fn) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_muon_rejects_non_matrix_parameters(shape):
    with pytest.raises(ValueError, match=r"Muon: only 2-D parameters.*parameter 1 has shape"):
        Muon(
            [
                SimpleNamespace(data=np.zeros((2, 2)), grad=None),
                SimpleNamespace(data=np.zeros(shape), grad=None),
            ]
        )


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"momentum": 1.0}, "momentum", "1.0"),
        ({"weight_decay": -0.1}, "weight_decay", "-0.1"),
        ({"adjust_lr_fn": "rms"}, "adjust_lr_fn", "'rms'"),
        ({"ns_steps": 0}, "ns_steps", "0"),
        ({"momentum": 0.0}, "nesterov", "True"),
    ],
)
def test_muon_rejects_bad_hyperparameters(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"Muon: {name} must be .*got {value}"):
        Muon([SimpleNamespace(data=np.zeros((2, 2)), grad=None)], **kwargs)
