"""The Optimizer base class, exercised through every update rule: skipping missing gradients,
checkpointing, hyperparameter validation, and a schedule-driven lr (torch as the reference)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from foveal.scratch.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Muon,
    Optimizer,
    RMSprop,
    cosine_lr,
)

# 2-D shapes so that Muon fits in the same tests.
SHAPES = [(3, 4), (5, 2)]
MAKERS = {
    "sgd": lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adagrad": lambda p: Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.1),
    "rmsprop": lambda p: RMSprop(p, lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
    "adam": lambda p: Adam(p, lr=0.01, amsgrad=True, weight_decay=0.1),
    "adamw": lambda p: AdamW(p, lr=0.01, weight_decay=0.1),
    "muon": lambda p: Muon(p, lr=0.02, weight_decay=0.1),
}


def make_params(seed: int = 0) -> list[SimpleNamespace]:
    rng = np.random.default_rng(seed)
    return [SimpleNamespace(data=rng.standard_normal(s), grad=None) for s in SHAPES]


def run(opt: Optimizer, params, grads) -> None:
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g
        opt.step()


def gradient_stream(steps: int, seed: int = 1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


@pytest.mark.parametrize("name", MAKERS)
def test_state_dict_round_trip_equals_uninterrupted_run(name):
    """10 steps, save, load into a fresh optimizer, 10 more == 20 uninterrupted steps. The
    original keeps stepping after the save, which must not leak into the saved copy."""
    grads = gradient_stream(20)
    straight = make_params()
    run(MAKERS[name](straight), straight, grads)

    first = make_params()
    opt = MAKERS[name](first)
    run(opt, first, grads[:10])
    saved = opt.state_dict()
    snapshot = [p.data.copy() for p in first]
    run(opt, first, grads[10:15])  # mutates opt.state in place

    resumed = [SimpleNamespace(data=d, grad=None) for d in snapshot]
    fresh = MAKERS[name](resumed)
    fresh.load_state_dict(saved)
    run(fresh, resumed, grads[10:])
    for a, b in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_restores_lr_and_checks_shapes():
    params = make_params()
    opt = Adam(params, lr=0.01)
    run(opt, params, gradient_stream(2))
    opt.lr = 0.005
    saved = opt.state_dict()
    fresh = Adam(make_params(), lr=0.01)
    fresh.load_state_dict(saved)
    assert fresh.lr == 0.005
    with pytest.raises(ValueError, match=r"state for 2 parameters, this optimizer has 1"):
        Adam(make_params()[:1]).load_state_dict(saved)
    swapped = Adam(make_params()[::-1])
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(3, 4\), the parameter has"):
        swapped.load_state_dict(saved)


@pytest.mark.parametrize("name", MAKERS)
def test_params_without_grad_are_skipped(name):
    """grad=None means "not part of this step": no weight decay, no state, no step count."""
    params = make_params()
    opt = MAKERS[name](params)
    frozen = params[1].data.copy()
    for g in gradient_stream(3):
        params[0].grad, params[1].grad = g[0], None
        opt.step()
    np.testing.assert_array_equal(params[1].data, frozen)
    assert opt.state[1] == {}
    assert not np.array_equal(params[0].data, make_params()[0].data)


def test_late_gradient_starts_its_own_step_count_like_torch():
    """A parameter whose first gradient arrives at step 4 gets Adam's t = 1 bias correction
    then, as in torch (per-parameter step counters)."""
    grads = gradient_stream(8)
    params = make_params()
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, ref = Adam(params, lr=0.1), torch.optim.Adam(tensors, lr=0.1)
    for t, (g0, g1) in enumerate(grads):
        late = g1 if t >= 3 else None
        params[0].grad, params[1].grad = g0, late
        tensors[0].grad = torch.from_numpy(g0.copy())
        tensors[1].grad = None if late is None else torch.from_numpy(late.copy())
        opt.step()
        ref.step()
        for p, pt in zip(params, tensors, strict=True):
            np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-10)
    assert opt.state[1]["step"] == 5


def test_lr_set_by_a_schedule_each_step_matches_torch_scheduler():
    """Reassigning ``opt.lr`` every step reproduces torch's optimizer + CosineAnnealingLR."""
    grads = gradient_stream(12)
    params = make_params()
    tensors = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = SGD(params, lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(tensors, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=12)
    for t, step_grads in enumerate(grads):
        opt.lr = cosine_lr(t, 0.1, t_max=12)
        for p, pt, g in zip(params, tensors, step_grads, strict=True):
            p.grad, pt.grad = g, torch.from_numpy(g.copy())
        opt.step()
        ref.step()
        scheduler.step()
    for p, pt in zip(params, tensors, strict=True):
        np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12)


def test_zero_grad_sets_grads_to_none():
    params = make_params()
    for p in params:
        p.grad = np.ones_like(p.data)
    SGD(params, lr=0.1).zero_grad()
    assert all(p.grad is None for p in params)


def test_step_rejects_a_gradient_of_the_wrong_shape():
    p = SimpleNamespace(data=np.zeros((2, 3)), grad=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"SGD: grad shape \(3, 2\) does not match .*\(2, 3\)"):
        SGD([p], lr=0.1).step()


def test_step_rejects_a_negative_lr_set_by_hand():
    opt = SGD(make_params(), lr=0.1)
    opt.lr = -1.0
    with pytest.raises(ValueError, match=r"SGD: lr must be >= 0, got -1.0"):
        opt.step()


def test_optimizer_rejects_an_empty_parameter_list():
    with pytest.raises(ValueError, match=r"Adam: got an empty parameter list"):
        Adam([])


def test_state_dict_survives_a_json_and_safetensors_style_round_trip():
    """A checkpoint writer may turn tuples into lists and hand back read-only arrays."""
    grads = gradient_stream(6)
    straight = make_params()
    run(AdamW(straight, lr=0.01, betas=(0.8, 0.9)), straight, grads)

    params = make_params()
    opt = AdamW(params, lr=0.01, betas=(0.8, 0.9))
    run(opt, params, grads[:3])
    saved = opt.state_dict()
    saved["hyperparameters"]["betas"] = list(saved["hyperparameters"]["betas"])
    for s in saved["state"]:
        for v in s.values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False
    fresh = AdamW(params, lr=0.01)
    fresh.load_state_dict(saved)
    assert fresh.betas == (0.8, 0.9)
    run(fresh, params, grads[3:])
    for a, b in zip(straight, params, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_rejects_another_optimizers_state():
    saved = SGD(make_params(), lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match=r"Adam: state_dict has hyperparameters .*another"):
        Adam(make_params()).load_state_dict(saved)
