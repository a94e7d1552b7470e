"""Learning-rate multipliers against torch.optim.lr_scheduler's own schedules (StepLR,
CosineAnnealingLR, LinearLR, MultiStepLR, ExponentialLR, OneCycleLR stepped in a loop,
ReduceLROnPlateau through build_scheduler) and, for inverse_sqrt and warmup, the closed form."""

import math

import numpy as np
import pytest
import torch

from foveal.errors import ConfigError, DataError
from foveal.training.schedules import (
    SCHEDULE_NAMES,
    build_scheduler,
    lr_curve,
    lr_multiplier,
)


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


def test_multistep_matches_multistep_lr():
    f = lr_multiplier("multistep", 40, milestones=(0.25, 0.6, 0.9), gamma=0.3)
    ref = torch_lrs(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [10, 24, 36], gamma=0.3), 40
    )
    assert [f(t) for t in range(40)] == pytest.approx(ref, rel=1e-12)


def test_multistep_milestones_count_from_end_of_warmup():
    f = lr_multiplier("multistep", 50, warmup_steps=10, milestones=(0.5,), gamma=0.1)
    # 40 post-warmup steps: the drop lands 20 steps after warmup
    assert f(29) == pytest.approx(1.0)
    assert f(30) == pytest.approx(0.1)


def test_exponential_matches_exponential_lr_reaching_final_fraction():
    f = lr_multiplier("exponential", 30, final_fraction=0.01)
    gamma = 0.01 ** (1 / 30)
    ref = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), 30)
    assert [f(t) for t in range(30)] == pytest.approx(ref, rel=1e-10)
    assert f(30) == pytest.approx(0.01)


def test_inverse_sqrt_closed_form_normalised_at_end_of_warmup():
    W = 8
    f = lr_multiplier("inverse_sqrt", 100, warmup_steps=W)
    assert [f(t) for t in range(W)] == pytest.approx([(t + 1) / W for t in range(W)])
    assert f(W) == pytest.approx(1.0)
    for t in (W, 9, 20, 32, 99):
        assert f(t) == pytest.approx(math.sqrt(W / max(t, W)))
    assert f(4 * W) == pytest.approx(0.5)


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize(
    ("total", "pct_start", "div_factor", "final_div_factor"),
    [(100, 0.3, 25.0, 1e4), (37, 0.25, 10.0, 100.0), (10, 0.5, 5.0, 2.0)],
)
def test_one_cycle_matches_one_cycle_lr(total, pct_start, div_factor, final_div_factor,
                                        anneal_strategy):
    options = dict(pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor,
                   anneal_strategy=anneal_strategy)
    max_lr = 0.4

    def make(o):
        return torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=max_lr, total_steps=total, cycle_momentum=False, **options
        )

    ref = torch_lrs(make, total)
    ours = lr_curve("one_cycle", total, max_lr, **options)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    # the peak step pct_start·T − 1 may fall between steps (37 · 0.25 − 1 = 8.25), as in torch
    assert ours.max() <= max_lr * (1 + 1e-12)
    if float(pct_start * total).is_integer():
        assert ours.max() == pytest.approx(max_lr)
    assert ours[0] == pytest.approx(max_lr / div_factor)
    assert ours[-1] == pytest.approx(max_lr / (div_factor * final_div_factor))


def test_warmup_composes_with_exponential_and_multistep():
    for name, options in (("exponential", {"final_fraction": 0.1}),
                          ("multistep", {"milestones": (0.5,), "gamma": 0.5})):
        f = lr_multiplier(name, 40, warmup_steps=5, **options)
        assert [f(t) for t in range(5)] == pytest.approx([(t + 1) / 5 for t in range(5)])
        assert f(5) == pytest.approx(1.0)
        assert f(39) < 1.0


def test_lr_curve_equals_base_lr_times_multiplier():
    f = lr_multiplier("cosine", 25, warmup_steps=3, final_fraction=0.05)
    lrs = lr_curve("cosine", 25, 0.2, warmup_steps=3, final_fraction=0.05)
    assert lrs.shape == (25,) and lrs.dtype == np.float64
    assert lrs == pytest.approx([0.2 * f(t) for t in range(25)], rel=1e-12)


def test_build_scheduler_returns_lambda_lr_for_every_multiplier_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    extra = {"multistep": {"milestones": (0.5,)}, "exponential": {"final_fraction": 0.1},
             "inverse_sqrt": {"warmup_steps": 2}}
    for name in SCHEDULE_NAMES:
        sched = build_scheduler(name, opt, 20, **extra.get(name, {}))
        assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)


def test_plateau_reduces_after_patience_epochs_without_improvement():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler("plateau", opt, 100, factor=0.5, patience=2)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    lrs = []
    for val_loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]:
        opt.step()
        sched.step(val_loss)
        lrs.append(opt.param_groups[0]["lr"])
    # the third epoch in a row without improvement halves the rate, then the count restarts
    assert lrs == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25])


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [("multistep", {}, "milestone fractions"),
     ("multistep", {"milestones": (0.6, 0.3)}, "milestone fractions"),
     ("multistep", {"milestones": (1.5,)}, "milestone fractions"),
     ("exponential", {}, "final_fraction"),
     ("exponential", {"final_fraction": 2.0}, "final_fraction"),
     ("inverse_sqrt", {}, "warmup_steps >= 1"),
     ("one_cycle", {"warmup_steps": 3}, "warmup_steps=0"),
     ("one_cycle", {"pct_start": 1.0}, "pct_start"),
     ("one_cycle", {"div_factor": 0.0}, "div_factor"),
     ("one_cycle", {"anneal_strategy": "exp"}, "anneal_strategy"),
     ("cosine", {"milestone": (0.5,)}, "bad option for schedule 'cosine'"),
     ("plateau", {"patience": 2, "gamma": 0.1}, "unknown plateau option"),
     ("plateau", {"factor": 1.5}, "bad plateau option"),
     ("cyclic", {}, "unknown schedule 'cyclic'")],
)
def test_bad_new_schedule_settings(name, options, message):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ConfigError, match=message):
        build_scheduler(name, opt, 20, **options)


def test_one_cycle_too_short_for_two_phases():
    with pytest.raises(ConfigError, match="both phases"):
        lr_multiplier("one_cycle", 4, pct_start=0.25)


def test_plateau_is_not_a_step_multiplier():
    with pytest.raises(ConfigError, match="build_scheduler"):
        lr_multiplier("plateau", 10)
    with pytest.raises(ConfigError, match="no curve"):
        lr_curve("plateau", 10, 0.1)


def test_plot_lr_schedule_writes_png(tmp_path):
    from foveal.report.schedules import plot_lr_schedule

    path = plot_lr_schedule(lr_curve("one_cycle", 50, 0.1), tmp_path / "lr.png", log=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(DataError, match="1-D"):
        plot_lr_schedule(np.zeros((2, 2)), tmp_path / "bad.png")
    with pytest.raises(DataError, match="log axis"):
        plot_lr_schedule([0.1, 0.0], tmp_path / "bad.png", log=True)
