"""Learning-rate schedules against torch.optim.lr_scheduler (same index convention: t counts
scheduler.step() calls) and against closed forms."""

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from foveal.scratch.optim import (
    cosine_lr,
    exponential_lr,
    inverse_sqrt_lr,
    linear_lr,
    linear_warmup,
    multistep_lr,
    reduce_on_plateau_lr,
    step_lr,
)

BASE_LR = 0.1


def torch_lrs(make: Callable[[torch.optim.Optimizer], object], n: int) -> list[float]:
    """The lr a torch scheduler puts in force at steps 0..n-1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    scheduler = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def assert_schedule_matches(ours: Callable[[int], float], torch_make, n: int = 40) -> None:
    np.testing.assert_allclose([ours(t) for t in range(n)], torch_lrs(torch_make, n), rtol=1e-12)


def test_step_lr_matches_torch():
    assert_schedule_matches(
        lambda t: step_lr(t, BASE_LR, step_size=7, gamma=0.5),
        lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    )


def test_multistep_lr_matches_torch_including_repeated_milestones():
    milestones = [5, 12, 12, 30]
    assert_schedule_matches(
        lambda t: multistep_lr(t, BASE_LR, milestones, gamma=0.3),
        lambda o: lr_scheduler.MultiStepLR(o, milestones, gamma=0.3),
    )


def test_exponential_lr_matches_torch():
    assert_schedule_matches(
        lambda t: exponential_lr(t, BASE_LR, gamma=0.93),
        lambda o: lr_scheduler.ExponentialLR(o, gamma=0.93),
    )


@pytest.mark.parametrize("eta_min", [0.0, 1e-3])
def test_cosine_lr_matches_torch_up_to_t_max(eta_min):
    assert_schedule_matches(
        lambda t: cosine_lr(t, BASE_LR, t_max=25, eta_min=eta_min),
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=25, eta_min=eta_min),
        n=26,
    )


def test_cosine_lr_closed_form_and_stays_at_eta_min_after_t_max():
    assert cosine_lr(0, 1.0, 10) == 1.0
    assert cosine_lr(5, 1.0, 10) == pytest.approx(0.5, rel=1e-15)
    assert cosine_lr(10, 1.0, 10, eta_min=0.01) == pytest.approx(0.01, rel=1e-15)
    assert cosine_lr(17, 1.0, 10, eta_min=0.01) == pytest.approx(0.01, rel=1e-15)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"start_factor": 0.25, "end_factor": 0.5, "total_iters": 9},
        {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 20},
    ],
)
def test_linear_lr_matches_torch(kwargs):
    assert_schedule_matches(
        lambda t: linear_lr(t, BASE_LR, **kwargs), lambda o: lr_scheduler.LinearLR(o, **kwargs)
    )


def test_inverse_sqrt_lr_matches_torch_lambda_lr():
    W = 8
    noam = lambda t: min(t / W, math.sqrt(W / t)) if t > 0 else 0.0  # noqa: E731
    assert_schedule_matches(
        lambda t: inverse_sqrt_lr(t, BASE_LR, W), lambda o: lr_scheduler.LambdaLR(o, noam)
    )


@pytest.mark.parametrize("step", [1, 100, 4000, 10_000, 100_000])
def test_inverse_sqrt_lr_equals_transformer_formula(step):
    """Vaswani et al. 2017, eq. 3: d^-0.5 min(t^-0.5, t W^-1.5) with d = 512, W = 4000. The
    peak, at t = W, is d^-0.5 W^-0.5 ≈ 6.99e-4."""
    d_model, W = 512, 4000
    paper = d_model**-0.5 * min(step**-0.5, step * W**-1.5)
    peak = d_model**-0.5 * W**-0.5
    assert inverse_sqrt_lr(step, peak, W) == pytest.approx(paper, rel=1e-12)
    assert peak == pytest.approx(6.988e-4, rel=1e-3)


@pytest.mark.parametrize("start_factor", [0.01, 0.25])
def test_linear_warmup_then_cosine_matches_torch_sequential_lr(start_factor):
    W, T = 6, 20
    assert_schedule_matches(
        lambda t: linear_warmup(
            t, BASE_LR, W, after=lambda k: cosine_lr(k, BASE_LR, T), start_factor=start_factor
        ),
        lambda o: lr_scheduler.SequentialLR(
            o,
            [
                lr_scheduler.LinearLR(o, start_factor, 1.0, total_iters=W),
                lr_scheduler.CosineAnnealingLR(o, T_max=T),
            ],
            milestones=[W],
        ),
        n=W + T + 1,
    )


def test_linear_warmup_then_step_matches_torch_sequential_lr():
    W = 5
    assert_schedule_matches(
        lambda t: linear_warmup(
            t, BASE_LR, W, after=lambda k: step_lr(k, BASE_LR, 4, 0.5), start_factor=0.1
        ),
        lambda o: lr_scheduler.SequentialLR(
            o,
            [lr_scheduler.LinearLR(o, 0.1, 1.0, total_iters=W), lr_scheduler.StepLR(o, 4, 0.5)],
            milestones=[W],
        ),
    )


def test_linear_warmup_from_zero_closed_form():
    """torch's LinearLR refuses start_factor = 0; the closed form is η_0 t / W, then η_0."""
    assert [linear_warmup(t, 1.0, 4) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def noisy_metrics(seed: int, n: int = 60, sign: float = 1.0) -> list[float]:
    """A decaying loss with plateaus and noise (several reductions happen on it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    trend = 1.0 / (1.0 + 0.2 * np.minimum(t, 15)) + 0.3 * (t > 35)
    return list(sign * (trend + 0.02 * rng.standard_normal(n)))


PLATEAU_CASES = [
    {"mode": "min", "threshold_mode": "rel", "patience": 3, "threshold": 1e-2},
    {"mode": "min", "threshold_mode": "abs", "patience": 2, "threshold": 0.01, "cooldown": 3},
    {"mode": "max", "threshold_mode": "rel", "patience": 4, "threshold": 1e-3, "cooldown": 2},
    {
        "mode": "max",
        "threshold_mode": "abs",
        "patience": 0,
        "threshold": 0.0,
        "factor": 0.5,
        "min_lr": 3e-3,
    },
    {"mode": "min", "threshold_mode": "rel", "patience": 1, "cooldown": 1, "factor": 0.5},
]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kwargs", PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch_after_every_metric(kwargs, seed):
    sign = -1.0 if kwargs["mode"] == "max" else 1.0  # max mode watches e.g. accuracy
    if seed == 2:
        sign = -sign  # metrics of the "wrong" sign exercise torch's rel-threshold quirk
    metrics = noisy_metrics(seed, sign=sign)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    ours, ref = [], []
    for k, m in enumerate(metrics):
        scheduler.step(m)
        ref.append(opt.param_groups[0]["lr"])
        ours.append(reduce_on_plateau_lr(metrics[: k + 1], BASE_LR, **kwargs))
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert len(set(ref)) > 1  # the sequence did trigger a reduction


def test_reduce_on_plateau_reduces_after_patience_bad_epochs():
    """Closed form: a flat metric reduces once more than ``patience`` epochs fail to improve."""
    flat = [1.0] * 5
    assert reduce_on_plateau_lr(flat[:4], 1.0, patience=3) == 1.0
    assert reduce_on_plateau_lr(flat, 1.0, patience=3) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: step_lr(-1, 0.1, 5), r"t must be >= 0, got -1"),
        (lambda: cosine_lr(3, 0.1, 0), r"t_max must be > 0, got 0"),
        (lambda: reduce_on_plateau_lr([1.0], 0.1, factor=1.5), r"factor must be < 1, got 1.5"),
        (lambda: reduce_on_plateau_lr([1.0], 0.1, mode="up"), r"mode must be .*got 'up'"),
    ],
)
def test_schedules_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
