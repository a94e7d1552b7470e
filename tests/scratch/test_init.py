"""Initialisers against their closed-form variance and bounds and against torch.nn.init of the same
name (fans, gains, sample statistics), and the activation-statistics experiment through deep
tanh / ReLU stacks."""

import functools
import math

import numpy as np
import pytest
import torch

from foveal.scratch import init

SHAPE = (256, 128)  # (out, in): 32768 samples, relative std of a sample variance ≈ 1 %
N = SHAPE[0] * SHAPE[1]
FAN_IN, FAN_OUT = 128, 256

# name → (ours, torch's, closed-form σ², uniform bound or None)
CASES = {
    "xavier_uniform": (init.xavier_uniform, torch.nn.init.xavier_uniform_,
                       2 / (FAN_IN + FAN_OUT), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "xavier_normal": (init.xavier_normal, torch.nn.init.xavier_normal_,
                      2 / (FAN_IN + FAN_OUT), None),
    "kaiming_uniform": (init.kaiming_uniform,
                        functools.partial(torch.nn.init.kaiming_uniform_, a=0.0),
                        2 / FAN_IN, math.sqrt(6 / FAN_IN)),
    "kaiming_normal": (init.kaiming_normal, torch.nn.init.kaiming_normal_, 2 / FAN_IN, None),
    # torch has no lecun_*: its closed form is kaiming with the linear gain, σ² = 1 / fan_in
    "lecun_uniform": (init.lecun_uniform,
                      functools.partial(torch.nn.init.kaiming_uniform_, nonlinearity="linear"),
                      1 / FAN_IN, math.sqrt(3 / FAN_IN)),
    "lecun_normal": (init.lecun_normal,
                     functools.partial(torch.nn.init.kaiming_normal_, nonlinearity="linear"),
                     1 / FAN_IN, None),
}


def assert_distribution(w, var, bound, who):
    # mean 0 and variance σ², 5-sigma bounds; Var(w²) = 2σ⁴ (normal), 0.8σ⁴ (uniform)
    assert abs(w.mean()) < 5 * math.sqrt(var / w.size), who
    assert abs(w.var() / var - 1) < 5 * math.sqrt(2 / w.size), who
    if bound is not None:
        assert 0.999 * bound < np.abs(w).max() <= bound, who


@pytest.mark.parametrize("name", list(CASES))
def test_initialiser_variance_and_bound_match_closed_form_and_torch(name):
    ours, theirs, var, bound = CASES[name]
    assert init.INITIALISERS[name] is ours
    w = ours(SHAPE, np.random.default_rng(0))
    assert w.shape == SHAPE
    assert_distribution(w, var, bound, f"ours {name}")
    torch.manual_seed(0)
    assert_distribution(theirs(torch.empty(SHAPE, dtype=torch.float64)).numpy(), var, bound,
                        f"torch {name}")


def test_fans_match_torch_for_linear_and_conv_weights():
    for shape in [(5, 3), (8, 4, 3, 3), (6, 2, 5)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        assert init.fans(shape) == expected
    with pytest.raises(ValueError, match="fans: expected a weight with at least 2 axes"):
        init.fans((5,))


def test_relu_gain_matches_torch_calculate_gain():
    assert init.relu_gain() == pytest.approx(torch.nn.init.calculate_gain("relu"), rel=1e-15)
    for a in (0.01, 0.2, math.sqrt(5)):
        expected = torch.nn.init.calculate_gain("leaky_relu", a)
        assert init.relu_gain(a) == pytest.approx(expected, rel=1e-15)


def test_kaiming_leaky_fan_out_matches_torch_closed_form():
    # σ = gain(a) / √fan_out and bound = gain · √(3 / fan_out), as torch's kaiming_*_
    a, gain = 0.2, torch.nn.init.calculate_gain("leaky_relu", 0.2)
    var = gain**2 / FAN_OUT
    w = init.kaiming_normal(SHAPE, np.random.default_rng(1), negative_slope=a, mode="fan_out")
    assert_distribution(w, var, None, "ours kaiming_normal fan_out")
    torch.manual_seed(1)
    ref = torch.nn.init.kaiming_normal_(torch.empty(SHAPE, dtype=torch.float64), a=a,
                                        mode="fan_out")
    assert_distribution(ref.numpy(), var, None, "torch kaiming_normal fan_out")
    w = init.kaiming_uniform(SHAPE, np.random.default_rng(2), negative_slope=a, mode="fan_out")
    assert_distribution(w, var, gain * math.sqrt(3 / FAN_OUT), "ours kaiming_uniform fan_out")
    with pytest.raises(ValueError, match="init: mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_normal(SHAPE, mode="fan_avg")


def test_conv_weight_uses_receptive_field_in_fans():
    # (out, in, kh, kw) = (32, 16, 3, 3): fan_in = 144, so Kaiming σ² = 2/144
    w = init.kaiming_normal((32, 16, 3, 3), np.random.default_rng(3))
    assert_distribution(w, 2 / 144, None, "kaiming_normal conv")


def test_torch_default_linear_init_bound_is_one_over_sqrt_fan_in():
    # nn.Linear: kaiming_uniform_(a=√5) → bound = gain(√5) · √(3/fan_in) = 1/√fan_in
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    assert gain * math.sqrt(3 / FAN_IN) == pytest.approx(1 / math.sqrt(FAN_IN), rel=1e-14)
    w, b = init.kaiming_uniform_linear(SHAPE, np.random.default_rng(4))
    bound = 1 / math.sqrt(FAN_IN)
    assert_distribution(w, bound**2 / 3, bound, "ours linear default")
    assert b.shape == (FAN_OUT,) and np.abs(b).max() <= bound
    torch.manual_seed(4)
    ref = torch.nn.Linear(FAN_IN, FAN_OUT).double().weight.detach().numpy()
    assert_distribution(ref, bound**2 / 3, bound, "torch nn.Linear default")


# ---------------------------------------------------------------- activation statistics
@functools.cache
def stats(init_name, nonlinearity):
    return init.activation_statistics(init_name, nonlinearity, depth=20, width=256, batch=256)


def test_activation_statistics_returns_input_then_one_std_per_layer():
    s = stats("kaiming_normal", "relu")
    assert s.shape == (21,)
    assert s[0] == pytest.approx(1.0, abs=0.01)  # unit-variance input
    with pytest.raises(ValueError, match="activation_statistics: unknown init_name 'he'"):
        init.activation_statistics("he", "relu")
    with pytest.raises(ValueError, match="activation_statistics: nonlinearity must be one of"):
        init.activation_statistics("lecun_normal", "sigmoid")


@pytest.mark.parametrize("name", ["kaiming_uniform", "kaiming_normal"])
def test_kaiming_keeps_relu_activation_std_within_factor_two_over_depth(name):
    # measured (seed 0, batch 256): between 0.75 and 1.2 at every depth up to 20
    s = stats(name, "relu")
    assert np.all((s[1:] > s[0] / 2) & (s[1:] < 2 * s[0]))


def test_xavier_on_relu_loses_half_the_variance_per_layer():
    # fan·σ² = 1 and ReLU halves the second moment: std shrinks by √2 a layer (measured
    # s₂₀/s₁ = 2.0e-3 against 2^(−9.5) = 1.4e-3, seed 0, batch 256)
    s = stats("xavier_uniform", "relu")
    ratio = (s[20] / s[1]) / 2 ** (-19 / 2)
    assert 0.5 < ratio < 2


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_naive_small_init_collapses_activations_to_zero(nonlinearity):
    # N(0, 0.01²) with fan 256: each layer multiplies the std by ~0.16 (ReLU: ~0.11)
    s = stats("naive", nonlinearity)
    assert s[-1] < 1e-12
    assert np.all(np.diff(s) < 0)


@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "lecun_uniform",
                                  "lecun_normal"])
def test_xavier_and_lecun_keep_tanh_activations_from_collapsing(name):
    # tanh has slope 1 at 0, so fan·σ² = 1 keeps the scale up to tanh's slow contraction:
    # measured std 0.16 at depth 20 (seed 0, batch 256); it decays roughly like 1/√depth
    # (0.32 at depth 5), not geometrically as with the naive init
    s = stats(name, "tanh")
    assert s[-1] > 0.1
    assert s[-1] > 1e10 * stats("naive", "tanh")[-1]


def test_unit_normal_init_saturates_tanh_and_explodes_relu():
    # σ = 1 with fan 256 gives pre-activations of std ≈ 16: tanh sits at ±1 (a std above 0.95
    # for a variable bounded by 1 means mean(x²) > 0.9, i.e. almost no gradient flows through
    # tanh' = 1 − x²), and ReLU grows by √128 ≈ 11 a layer
    tanh = stats("unit_normal", "tanh")
    assert np.all(tanh[1:] > 0.95)
    relu = stats("unit_normal", "relu")
    assert relu[-1] > 1e18
