"""Initialisation against closed forms: the empirical std and bounds of the weights vs
Glorot & Bengio 2010 eq. 16, He et al. 2015 eq. 10 and LeCun et al. 1998; the same draws as
torch.nn.init; the forward second moment through a deep ReLU MLP (He et al. §2.2); and the
zero-initialised residual block computing ``ReLU(shortcut(x))`` (Goyal et al. 2017, §5.1)."""

import math

import pytest
import torch
from torch import nn

import foveal.models.resnet
from foveal.errors import ConfigError
from foveal.models.init import INIT_SCHEMES, TRUNCATED_NORMAL_STD, init_weights, zero_init_last_bn
from foveal.models.registry import create
from foveal.models.resnet import BasicBlock, Bottleneck, PadShortcut, projection

LIN_IN, LIN_OUT = 800, 400
CONV_IN, CONV_OUT, K = 64, 96, 3


def layers() -> nn.Sequential:
    return nn.Sequential(nn.Linear(LIN_IN, LIN_OUT), nn.Conv2d(CONV_IN, CONV_OUT, K))


FANS = [(LIN_IN, LIN_OUT), (CONV_IN * K * K, CONV_OUT * K * K)]


def initialised(scheme: str, **kwargs) -> nn.Sequential:
    net = layers()
    init_weights(net, scheme, generator=torch.Generator().manual_seed(0), **kwargs)
    return net


@pytest.mark.parametrize(("scheme", "expected_std", "uniform"), [
    ("xavier_uniform", lambda fi, fo: math.sqrt(2.0 / (fi + fo)), True),     # G&B eq. 16
    ("xavier_normal", lambda fi, fo: math.sqrt(2.0 / (fi + fo)), False),
    ("kaiming_uniform", lambda fi, fo: math.sqrt(2.0 / fi), True),            # He eq. 10
    ("kaiming_normal", lambda fi, fo: math.sqrt(2.0 / fi), False),
    ("lecun_uniform", lambda fi, fo: math.sqrt(1.0 / fi), True),              # LeCun 1998
    ("lecun_normal", lambda fi, fo: math.sqrt(1.0 / fi), False),
])
def test_weight_std_and_bounds_match_closed_forms(scheme, expected_std, uniform):
    net = initialised(scheme)
    for layer, (fan_in, fan_out) in zip(net, FANS, strict=True):
        w = layer.weight.detach()
        std = expected_std(fan_in, fan_out)
        assert w.std().item() == pytest.approx(std, rel=0.02)
        assert abs(w.mean().item()) < 0.02 * std
        assert torch.all(layer.bias == 0)
        if uniform:  # U(-b, b) has std b/√3
            bound = std * math.sqrt(3.0)
            assert w.abs().max().item() <= bound
            assert w.abs().max().item() > 0.99 * bound
        elif scheme == "lecun_normal":  # truncated at ±2σ' with σ' = σ / 0.8796
            bound = 2.0 * std / TRUNCATED_NORMAL_STD
            assert w.abs().max().item() <= bound
            assert w.abs().max().item() > 0.99 * bound


def test_truncated_normal_std_constant_matches_sampling():
    torch.manual_seed(0)
    x = nn.init.trunc_normal_(torch.empty(400_000), 0.0, 1.0, -2.0, 2.0)
    assert x.std().item() == pytest.approx(TRUNCATED_NORMAL_STD, rel=0.005)
    assert abs(TRUNCATED_NORMAL_STD - 0.87962566103423978) < 1e-12


def test_kaiming_fan_out_and_leaky_relu_gain():
    net = initialised("kaiming_normal", mode="fan_out")
    for layer, (_, fan_out) in zip(net, FANS, strict=True):
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.02)
    net = initialised("kaiming_normal", nonlinearity="leaky_relu", negative_slope=0.2)
    for layer, (fan_in, _) in zip(net, FANS, strict=True):
        expected = math.sqrt(2.0 / (1 + 0.2 ** 2) / fan_in)
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.02)


def test_draws_equal_torch_nn_init():
    for scheme, reference in [
        ("xavier_uniform", lambda w, g: nn.init.xavier_uniform_(w, generator=g)),
        ("kaiming_normal", lambda w, g: nn.init.kaiming_normal_(
            w, nonlinearity="relu", generator=g)),
    ]:
        net = initialised(scheme)
        g = torch.Generator().manual_seed(0)
        for fresh, ours in zip(layers(), net, strict=True):
            assert torch.equal(reference(fresh.weight.detach(), g), ours.weight.detach())


def second_moments(scheme: str, seed: int, depth: int = 12, width: int = 512) -> list[float]:
    """E[y_l²] of the pre-activations y_l = W_l ReLU(y_{l−1}) of a bias-free MLP, l = 1..depth."""
    torch.manual_seed(seed)
    net = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(depth)])
    init_weights(net, scheme, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = net[0](torch.randn(64, width))
        moments = [y.square().mean().item()]
        for layer in net[1:]:
            y = layer(torch.relu(y))
            moments.append(y.square().mean().item())
    return moments


def depth_gains(scheme: str, nets: int = 8) -> tuple[float, float]:
    """Over independent networks: the mean of E[y_L²] / E[y_1²] (exactly 1 in expectation
    under Kaiming, He et al. eq. 10; one network's ratio has std ≈ 0.27 at this width) and the
    geometric mean of the per-layer ratio."""
    moments = [second_moments(scheme, seed) for seed in range(nets)]
    ratios = [m[-1] / m[0] for m in moments]
    layers_between = len(moments[0]) - 1
    per_layer = math.exp(sum(math.log(r) for r in ratios) / (nets * layers_between))
    return sum(ratios) / nets, per_layer


def test_kaiming_preserves_the_variance_through_a_deep_relu_mlp():
    end_to_end, per_layer = depth_gains("kaiming_normal")
    assert 0.7 < end_to_end < 1.4
    assert per_layer == pytest.approx(1.0, abs=0.03)


def test_xavier_with_relu_halves_the_variance_per_layer():
    end_to_end, per_layer = depth_gains("xavier_normal")
    assert per_layer == pytest.approx(0.5, abs=0.03)
    assert end_to_end < 1e-2  # 2^-11 ≈ 5e-4


def test_zero_init_blocks_are_relu_of_the_shortcut():
    torch.manual_seed(0)
    blocks = nn.ModuleList([
        BasicBlock(8, 8),
        BasicBlock(8, 16, 2, projection(8, 16, 2)),
        BasicBlock(8, 16, 2, PadShortcut(8, 16, 2)),
        Bottleneck(16, 4),
        Bottleneck(8, 4, 2, projection(8, 16, 2), se_reduction=4),
    ])
    assert zero_init_last_bn(blocks) == 5
    for training in (True, False):
        blocks.train(training)
        for block in blocks:
            x = torch.randn(2, block.conv1.in_channels, 8, 8)
            shortcut = x if block.shortcut is None else block.shortcut(x)
            assert torch.allclose(block(x), torch.relu(shortcut), atol=1e-6)


def test_zero_init_residual_blocks_differ_from_the_identity_without_it():
    torch.manual_seed(0)
    block = BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 8, 8)
    assert not torch.allclose(block(x), torch.relu(x), atol=1e-3)


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_zero_init_last_bn_equals_resnets_zero_init_residual(name):
    assert foveal.models.resnet  # registers the builders
    torch.manual_seed(0)
    ours = create(name, num_classes=10)
    torch.manual_seed(0)
    reference = create(name, num_classes=10, zero_init_residual=True)
    assert zero_init_last_bn(ours) == sum(isinstance(m, BasicBlock) for m in ours.modules())
    for (key, a), b in zip(ours.state_dict().items(), reference.state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), key


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="init scheme"):
        init_weights(layers(), "orthogonal")
    with pytest.raises(ConfigError, match="nonlinearity"):
        init_weights(layers(), "kaiming_normal", nonlinearity="swish")
    with pytest.raises(ConfigError, match="mode"):
        init_weights(layers(), "kaiming_normal", mode="fan_avg")
    with pytest.raises(ConfigError, match="no Linear or Conv"):
        init_weights(nn.BatchNorm2d(3), "xavier_uniform")
    with pytest.raises(ConfigError, match="no residual block"):
        zero_init_last_bn(layers())
    assert len(INIT_SCHEMES) == 6
