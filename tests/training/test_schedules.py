"""Learning-rate multipliers against torch.optim.lr_scheduler's own schedules."""

import math

import pytest
import torch

from foveal.errors import ConfigError
from foveal.training.schedules import lr_multiplier


def torch_lrs(make, steps):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_matches_cosine_annealing_lr():
    f = lr_multiplier("cosine", 50)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=50), 50)
    assert [f(t) for t in range(50)] == pytest.approx(ref, abs=1e-12)


def test_step_matches_step_lr():
    f = lr_multiplier("step", 40, step_size=7, gamma=0.5)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 7, gamma=0.5), 40)
    assert [f(t) for t in range(40)] == pytest.approx(ref, abs=1e-12)


def test_linear_matches_linear_lr_to_zero():
    f = lr_multiplier("linear", 20)
    ref = torch_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=20), 20
    )
    assert [f(t) for t in range(20)] == pytest.approx(ref, abs=1e-12)


def test_warmup_rises_linearly_then_cosine_starts_at_one():
    f = lr_multiplier("cosine", 100, warmup_steps=10, final_fraction=0.1)
    assert [f(t) for t in range(10)] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert f(10) == pytest.approx(1.0)
    # closed form halfway through the decay
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"name": "exp", "total_steps": 5}, "unknown schedule 'exp'"),
     ({"name": "cosine", "total_steps": 0}, "at least 1 step"),
     ({"name": "cosine", "total_steps": 5, "warmup_steps": 5}, "warmup_steps")],
)
def test_bad_schedule_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        lr_multiplier(**kwargs)
