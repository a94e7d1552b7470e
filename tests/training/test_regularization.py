"""Weight regularisation against closed forms and torch's optimisers: penalties vs hand sums and
autograd, coupled L2 vs torch.optim.SGD / Adam(weight_decay) / AdamW, max-norm vs
``w · min(1, c/‖w‖)``, DropConnect vs a brute-force masked product, and the EMA recursion
``θ̄_t = d^{t−1} θ_1 + (1 − d) Σ_{j≥2} d^{t−j} θ_j``."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from foveal.errors import ConfigError
from foveal.training.regularization import (
    DropConnect,
    WeightEMA,
    apply_max_norm_,
    elastic_net_penalty,
    l1_penalty,
    l2_penalty,
    penalized_parameters,
    weight_decay_param_groups,
)


def small_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    # ReLU before BN, so the conv bias has a real gradient (Adam would amplify round-off)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 5), nn.LayerNorm(5), nn.Linear(5, 2, bias=False))


def test_penalized_parameters_are_the_weights_not_biases_or_norm_parameters():
    net = small_net()
    assert [id(p) for p in penalized_parameters(net)] == [
        id(net[0].weight), id(net[4].weight), id(net[6].weight)]
    decay, no_decay = weight_decay_param_groups(net, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) == 3 and len(no_decay["params"]) == 6


def test_penalties_match_hand_sums_and_ignore_biases():
    net = small_net()
    ws = [net[0].weight, net[4].weight, net[6].weight]
    l1 = sum(w.abs().sum() for w in ws).item()
    sq = sum((w ** 2).sum() for w in ws).item()
    assert l1_penalty(net, 0.3).item() == pytest.approx(0.3 * l1, rel=1e-6)
    assert l2_penalty(net, 0.3).item() == pytest.approx(0.15 * sq, rel=1e-6)
    assert elastic_net_penalty(net, 0.1, 0.2).item() == pytest.approx(0.1 * l1 + 0.1 * sq,
                                                                      rel=1e-6)
    with torch.no_grad():
        net[0].bias.add_(10.0)
        net[2].weight.add_(10.0)
    assert l1_penalty(net, 0.3).item() == pytest.approx(0.3 * l1, rel=1e-6)


def test_penalty_gradients_match_closed_forms():
    net = small_net()
    (l1_penalty(net, 0.3) + l2_penalty(net, 0.2)).backward()
    w = net[4].weight
    assert torch.allclose(w.grad, 0.3 * w.sign() + 0.2 * w.detach(), atol=1e-6)
    assert net[4].bias.grad is None and net[2].weight.grad is None


def test_bad_penalty_weights_raise_config_error():
    with pytest.raises(ConfigError, match="l1 weight >= 0"):
        l1_penalty(small_net(), -1.0)
    with pytest.raises(ConfigError, match="l2 weight"):
        elastic_net_penalty(small_net(), 0.1, float("nan"))


def run_steps(net, make_optimizer, penalty=None, steps=5):
    torch.manual_seed(123)
    opt = make_optimizer(net)
    for _ in range(steps):
        x = torch.randn(4, 2, 6, 6)
        loss = net(x).square().mean()
        if penalty is not None:
            loss = loss + penalty(net)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_sgd_l2_penalty_equals_weight_decay():
    lam = 0.05
    coupled = run_steps(small_net(), lambda m: torch.optim.SGD(m.parameters(), lr=0.1,
                                                               momentum=0.9),
                        penalty=lambda m: l2_penalty(m, lam))
    decayed = run_steps(small_net(), lambda m: torch.optim.SGD(
        weight_decay_param_groups(m, lam), lr=0.1, momentum=0.9))
    assert torch.allclose(coupled, decayed, atol=1e-6)


def test_adam_l2_penalty_is_not_decoupled_weight_decay():
    lam, lr = 0.1, 0.01
    coupled = run_steps(small_net(), lambda m: torch.optim.Adam(m.parameters(), lr=lr),
                        penalty=lambda m: l2_penalty(m, lam))
    # the L2 penalty is exactly Adam's own (coupled) weight_decay ...
    adam_wd = run_steps(small_net(), lambda m: torch.optim.Adam(
        weight_decay_param_groups(m, lam), lr=lr))
    assert torch.allclose(coupled, adam_wd, atol=1e-6)
    # ... and not AdamW's decoupled decay, whose shrinkage is not divided by sqrt(v)
    adamw = run_steps(small_net(), lambda m: torch.optim.AdamW(
        weight_decay_param_groups(m, lam), lr=lr))
    assert (coupled - adamw).abs().max().item() > 1e-3


def test_max_norm_matches_renormalisation_closed_form():
    net = small_net()
    before = {id(p): p.detach().clone() for p in net.parameters()}
    c = 0.6
    apply_max_norm_(net, c)
    for p in net.parameters():
        old = before[id(p)]
        if p.ndim < 2:
            assert torch.equal(p, old)
            continue
        norms = old.flatten(1).norm(dim=1)
        expected = old * (c / norms).clamp(max=1.0).view(-1, *[1] * (old.ndim - 1))
        assert torch.allclose(p, expected, atol=1e-6)
        assert (p.flatten(1).norm(dim=1) <= c + 1e-5).all()
    assert (before[id(net[4].weight)].norm(dim=1) > c).any()  # the test did clip something


def test_max_norm_leaves_units_within_the_ball_unchanged_and_rejects_bad_settings():
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, 0.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0],
                                       [0.0, 0.0, 0.0, 0.2]]))
    apply_max_norm_(lin, 1.0)
    assert torch.equal(lin.weight[0], torch.tensor([0.1, 0.0, 0.0, 0.0]))
    assert torch.allclose(lin.weight[1], torch.tensor([0.6, 0.8, 0.0, 0.0]), atol=1e-6)
    with pytest.raises(ConfigError, match="max_norm > 0"):
        apply_max_norm_(lin, 0.0)
    with pytest.raises(ConfigError, match="dim"):
        apply_max_norm_(lin, 1.0, dim=2)


def test_dropconnect_is_a_plain_linear_in_eval():
    torch.manual_seed(0)
    layer = DropConnect(6, 4, p=0.7).eval()
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_dropconnect_batch_mode_matches_masked_weights():
    torch.manual_seed(0)
    layer = DropConnect(6, 4, p=0.3).train()
    x = torch.randn(5, 6)
    torch.manual_seed(7)
    y = layer(x)
    torch.manual_seed(7)
    mask = torch.empty(4, 6).bernoulli_(0.7)
    assert torch.allclose(y, F.linear(x, layer.weight * mask / 0.7, layer.bias), atol=1e-6)
    # dropped weights get no gradient: it is the weights, not the activations, that drop
    y.sum().backward()
    assert torch.all(layer.weight.grad[mask == 0] == 0)
    assert torch.all(layer.weight.grad[mask == 1] != 0)


def test_dropconnect_sample_mode_matches_a_per_row_loop():
    torch.manual_seed(0)
    layer = DropConnect(6, 4, p=0.5, mode="sample").train()
    x = torch.randn(5, 6)
    torch.manual_seed(3)
    y = layer(x)
    torch.manual_seed(3)
    masks = torch.empty(5, 4, 6).bernoulli_(0.5)
    for i in range(5):
        expected = F.linear(x[i], layer.weight * masks[i] / 0.5, layer.bias)
        assert torch.allclose(y[i], expected, atol=1e-6)


def test_dropconnect_is_unbiased_and_drops_a_fraction_p():
    torch.manual_seed(1)
    layer = DropConnect(50, 40, bias=False, p=0.25).train()
    x = torch.eye(50)  # row j of the output is column j of the effective weight
    draws = torch.stack([layer(x) for _ in range(400)])
    assert abs((draws == 0).float().mean().item() - 0.25) < 0.01
    se = layer.weight.detach().abs().T * (0.25 / 0.75 / 400) ** 0.5
    assert ((draws.mean(0) - layer.weight.detach().T).abs() <= 5 * se + 1e-7).all()


def test_dropconnect_rejects_bad_settings():
    with pytest.raises(ConfigError, match=r"p in \[0, 1\)"):
        DropConnect(3, 2, p=1.0)
    with pytest.raises(ConfigError, match="mode"):
        DropConnect(3, 2, mode="row")
    with pytest.raises(ConfigError, match=r"\(N, 3\)"):
        DropConnect(3, 2, mode="sample").train()(torch.randn(2, 4, 3))


def set_params(net: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)


def test_weight_ema_matches_closed_form_recursion():
    d = 0.9
    net = nn.Linear(3, 2)
    ema = WeightEMA(net, decay=d)
    thetas = [0.5, -1.0, 2.0, 3.0, 0.25, 1.5]
    for theta in thetas:
        set_params(net, theta)
        ema.update_parameters(net)
    t = len(thetas)
    expected = d ** (t - 1) * thetas[0] + (1 - d) * sum(
        d ** (t - j) * thetas[j - 1] for j in range(2, t + 1))
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, expected), atol=1e-6)


def test_weight_ema_warmup_follows_the_tensorflow_decay_schedule():
    d = 0.99
    net = nn.Linear(3, 2)
    ema = WeightEMA(net, decay=d, warmup=True)
    thetas = [1.0, 0.0, 4.0, -2.0, 3.0]
    expected = None
    for n, theta in enumerate(thetas):
        set_params(net, theta)
        ema.update_parameters(net)
        dn = min(d, (1 + n) / (10 + n))
        expected = theta if n == 0 else dn * expected + (1 - dn) * theta
    assert torch.allclose(ema.module.weight, torch.full((2, 3), expected), atol=1e-6)
    assert expected != pytest.approx(d ** 4 * thetas[0], abs=1e-3)  # warmup made a difference


def test_weight_ema_copies_batchnorm_buffers_instead_of_averaging_them():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ema = WeightEMA(net, decay=0.5)
    for _ in range(3):
        net(torch.randn(8, 4) * 3 + 1)
        ema.update_parameters(net)
    bn, ema_bn = net[1], ema.module[1]
    assert torch.equal(ema_bn.running_mean, bn.running_mean)
    assert torch.equal(ema_bn.running_var, bn.running_var)
    assert ema_bn.num_batches_tracked.item() == 3
    x = torch.randn(2, 4)
    ema.eval()
    assert ema(x).shape == (2, 3)


def test_weight_ema_does_not_share_storage_with_the_model_and_rejects_bad_decay():
    net = nn.Linear(2, 2)
    ema = WeightEMA(copy.deepcopy(net), decay=0.9)
    ema.update_parameters(net)
    set_params(net, 7.0)
    assert not torch.equal(ema.module.weight, net.weight)
    with pytest.raises(ConfigError, match=r"decay in \[0, 1\]"):
        WeightEMA(net, decay=1.5)
