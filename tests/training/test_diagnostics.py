"""Training diagnostics against closed forms and torch itself.

Oracles: ``log C`` for the loss of uniform predictions; the label entropy as the best loss of a
model that ignores its input; ``lr_i = start · γ^i`` from torch.optim.lr_scheduler.ExponentialLR;
a Python loop for the bias-corrected moving average; the gradient-descent stability limit
``lr < 2 / a`` on ``L = a w² / 2``; the backward gain ``σ'(0) · sqrt(n Var w) = 1/4 · sqrt(1/3)``
of a sigmoid layer with PyTorch's default Linear init; ReLU units that are provably never
positive; and torch autograd (``loss.backward()``) for the weight gradients.
"""

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from foveal.errors import ConfigError, DataError
from foveal.report.diagnostics import plot_layer_statistics, plot_lr_range
from foveal.training.diagnostics import (
    dead_relu_fraction,
    freeze_backbone,
    initial_loss_check,
    layer_statistics,
    lr_range_test,
    overfit_one_batch,
    transfer_learning_param_groups,
)


def mlp(in_features=8, hidden=32, classes=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def random_batch(n=64, in_features=8, classes=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, in_features, generator=g), torch.randint(0, classes, (n,), generator=g)


# --------------------------------------------------------------------------- initial loss


def test_initial_loss_equals_log_c_with_zero_final_layer():
    model = mlp(classes=7)
    nn.init.zeros_(model[-1].weight)
    nn.init.zeros_(model[-1].bias)
    report = initial_loss_check(model, random_batch(classes=7), 7)
    assert report.expected == pytest.approx(math.log(7))
    assert report.loss == pytest.approx(math.log(7), abs=1e-6)
    assert report.within_tolerance and report.logit_std == 0


def test_initial_loss_of_default_init_is_near_log_c():
    report = initial_loss_check(mlp(classes=10), random_batch(classes=10), 10)
    assert report.within_tolerance
    assert abs(report.loss - math.log(10)) < 0.1


def test_large_final_layer_init_makes_initial_loss_much_larger_than_log_c():
    model = mlp(classes=10)
    with torch.no_grad():
        model[-1].weight.mul_(100)
    report = initial_loss_check(model, random_batch(classes=10), 10)
    assert not report.within_tolerance
    assert report.loss > 3 * math.log(10)
    assert report.logit_std > 1


def test_initial_loss_check_runs_in_eval_mode_and_restores_mode():
    model = nn.Sequential(nn.Linear(8, 5), nn.Dropout(0.9))
    model.train()
    x, y = random_batch()
    a = initial_loss_check(model, (x, y), 5).loss
    b = initial_loss_check(model, (x, y), 5).loss
    assert a == b and model.training


def test_initial_loss_check_rejects_bad_input():
    model, batch = mlp(), random_batch()
    with pytest.raises(ConfigError, match="num_classes"):
        initial_loss_check(model, batch, 1)
    with pytest.raises(DataError, match=r"logits \(N, 6\)"):
        initial_loss_check(model, batch, 6)
    with pytest.raises(DataError, match="batch"):
        initial_loss_check(model, batch[0], 5)


# --------------------------------------------------------------------------- overfit one batch


def test_mlp_overfits_16_random_labelled_samples_to_zero_loss():
    model = mlp(in_features=32, hidden=64, classes=10)
    batch = random_batch(n=16, in_features=32, classes=10)
    report = overfit_one_batch(model, batch, steps=300, lr=1e-2, threshold=1e-3)
    assert report.reached and report.final_loss < 1e-3
    assert report.losses[0] == pytest.approx(math.log(10), abs=0.3)
    assert len(report.losses) == report.steps_taken + 1 <= 301
    assert model.training


def test_model_ignoring_its_input_cannot_overfit_below_label_entropy():
    class Prior(nn.Module):  # logits = b for every sample
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(4))

        def forward(self, x):
            return self.b.expand(len(x), -1)

    x = torch.randn(8, 3)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 2, 3])
    p = torch.tensor([4, 2, 1, 1]) / 8
    entropy = float(-(p * p.log()).sum())  # min over b of the cross-entropy
    report = overfit_one_batch(Prior(), (x, y), steps=400, lr=0.1, threshold=1e-3)
    assert not report.reached and report.steps_taken == 400
    assert report.final_loss == pytest.approx(entropy, abs=1e-3)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_overfit_one_batch_other_optimizers_reduce_the_loss(name):
    report = overfit_one_batch(mlp(), random_batch(n=16), steps=50, lr=0.05, optimizer=name)
    assert report.final_loss < 0.5 * report.losses[0]


@pytest.mark.parametrize("name, torch_optimizer", [
    ("sgd", lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)),
    ("adam", lambda params, lr: torch.optim.Adam(params, lr=lr)),
    ("adamw", lambda params, lr: torch.optim.AdamW(params, lr=lr)),
])
def test_overfit_one_batch_optimizer_matches_torch_optim_loop(name, torch_optimizer):
    # the names are built by foveal.training.optimizers.build_optimizer, keeping SGD's momentum
    # 0.9 and torch's defaults otherwise (AdamW's weight decay 0.01 included)
    batch = random_batch(n=16)
    report = overfit_one_batch(mlp(), batch, steps=5, lr=0.05, optimizer=name, threshold=1e-9)
    model = mlp()
    opt = torch_optimizer(model.parameters(), 0.05)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.cross_entropy(model(batch[0]), batch[1])
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    assert report.losses == pytest.approx(losses, rel=1e-6)


def test_overfit_one_batch_rejects_bad_settings():
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'"):
        overfit_one_batch(mlp(), random_batch(), optimizer="lbfgs")
    with pytest.raises(ConfigError, match="steps >= 1"):
        overfit_one_batch(mlp(), random_batch(), steps=0)
    with pytest.raises(ConfigError, match="lr > 0"):
        overfit_one_batch(mlp(), random_batch(), lr=-1.0)


# --------------------------------------------------------------------------- LR range test


def test_lr_schedule_matches_exponential_lr():
    start, end, steps = 1e-5, 1.0, 20
    result = lr_range_test(mlp(), [random_batch()], start_lr=start, end_lr=end, steps=steps,
                           divergence=1e9)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=start)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(end / start) ** (1 / (steps - 1)))
    expected = []
    for _ in range(steps):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert not result.diverged
    assert result.lrs == pytest.approx(expected, rel=1e-9)
    assert result.lrs[-1] == pytest.approx(end)


def test_smoothed_loss_is_the_bias_corrected_moving_average():
    beta = 0.9
    result = lr_range_test(mlp(), [random_batch(seed=s) for s in range(3)], start_lr=1e-4,
                           end_lr=1e-1, steps=15, smooth=beta, divergence=1e9)
    average, expected = 0.0, []
    for i, loss in enumerate(result.losses):
        average = beta * average + (1 - beta) * loss
        expected.append(average / (1 - beta ** (i + 1)))
    assert result.smoothed == pytest.approx(expected, rel=1e-12)
    assert result.smoothed[0] == pytest.approx(result.losses[0])  # bias correction at step 0


def test_range_test_stops_past_the_quadratic_stability_limit():
    # L(w) = a w² / 2 with plain gradient descent: w ← (1 − lr·a) w diverges iff lr > 2 / a.
    a = 4.0
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    batch = (torch.ones(1, 1), torch.zeros(1, 1))

    def loss_fn(out, target):
        return 0.5 * a * (out - target).pow(2).sum()

    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    result = lr_range_test(model, [batch], optimizer=opt, loss_fn=loss_fn, start_lr=1e-4,
                           end_lr=100.0, steps=200, smooth=0.0)
    assert result.diverged and len(result.lrs) < 200
    assert result.lrs[-1] > 2 / a
    assert result.suggested_lr is not None and result.suggested_lr < 2 / a
    # losses[i] is measured before the update with lrs[i]: the lowest loss comes right after
    # the last stable rate.
    assert result.lrs[result.lrs.index(result.min_loss_lr) - 1] <= 2 / a < result.min_loss_lr
    assert result.min_loss_lr_over_10 == pytest.approx(result.min_loss_lr / 10)


def test_range_test_restores_model_and_optimizer_state():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 5))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = random_batch()
    for _ in range(3):  # give Adam some moments to restore
        opt.zero_grad()
        F.cross_entropy(model(batch[0]), batch[1]).backward()
        opt.step()
    model.eval()
    before_model = copy.deepcopy(model.state_dict())
    before_opt = copy.deepcopy(opt.state_dict())
    lr_range_test(model, [batch], optimizer=opt, steps=30, end_lr=1.0)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_model[key]), key  # includes BN running stats
    after_opt = opt.state_dict()
    assert after_opt["param_groups"] == before_opt["param_groups"]
    for index, state in before_opt["state"].items():
        for key, value in state.items():
            assert torch.equal(after_opt["state"][index][key], value)
    assert all(p.grad is None for p in model.parameters())


def test_range_test_restarts_a_short_loader():
    batches = [random_batch(seed=s) for s in range(2)]
    result = lr_range_test(mlp(), batches, steps=7, end_lr=1e-2)
    assert len(result.losses) == 7


def test_range_test_rejects_bad_settings():
    with pytest.raises(ConfigError, match="end_lr > start_lr"):
        lr_range_test(mlp(), [random_batch()], start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError, match="smooth"):
        lr_range_test(mlp(), [random_batch()], smooth=1.0)
    with pytest.raises(ConfigError, match="divergence > 1"):
        lr_range_test(mlp(), [random_batch()], divergence=1.0)
    with pytest.raises(DataError, match="at least one batch"):
        lr_range_test(mlp(), [], steps=5)


# --------------------------------------------------------------------------- layer statistics


def test_deep_sigmoid_mlp_gradients_vanish_toward_the_input_at_the_closed_form_rate():
    # Backward through one sigmoid layer multiplies the signal by about
    # σ'(z) · sqrt(n · Var w); with z ≈ 0, σ'(0) = 1/4, and PyTorch's default Linear init
    # U(±1/sqrt(n)) has n · Var w = 1/3.  Inputs to the hidden layers are all sigmoid outputs,
    # so the weight-gradient norms of successive hidden layers shrink by the same factor.
    torch.manual_seed(0)
    width, depth = 64, 8
    layers = [nn.Linear(32, width), nn.Sigmoid()]
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    stats = layer_statistics(model, random_batch(n=256, in_features=32, classes=10))
    norms = [s.weight_grad_norm for s in stats if s.kind == "Linear"]
    assert len(norms) == depth + 2
    assert all(a < b for a, b in itertools.pairwise(norms))  # monotone toward output
    hidden = norms[1:-1]
    ratios = [a / b for a, b in itertools.pairwise(hidden)]
    rate = math.prod(ratios) ** (1 / len(ratios))
    assert rate == pytest.approx(0.25 * math.sqrt(1 / 3), rel=0.15)
    assert norms[0] < 1e-6 * norms[-1]


def test_relu_layer_with_large_negative_bias_is_entirely_dead():
    # |w·x| <= 8 · (1/sqrt 8) · 1 < 3 for x in [-1, 1]^8 and the default init, so with bias −100
    # the first ReLU is never positive; the next layer then sees zeros and outputs its bias, so
    # its dead fraction is exactly the fraction of non-positive biases.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU(),
                          nn.Linear(32, 3))
    nn.init.constant_(model[0].bias, -100.0)
    x = torch.rand(128, 8) * 2 - 1
    batch = (x, torch.randint(0, 3, (128,)))
    expected_second = float((model[2].bias <= 0).float().mean())
    fractions = dead_relu_fraction(model, batch)
    assert fractions == {"1": 1.0, "3": pytest.approx(expected_second)}
    stats = {s.name: s for s in layer_statistics(model, batch)}
    assert stats["1"].dead_fraction == 1.0
    assert stats["3"].dead_fraction == pytest.approx(expected_second)
    assert stats["0"].dead_fraction is None
    assert stats["0"].weight_grad_norm == 0.0  # a dead layer passes no gradient


def test_dead_units_of_a_conv_relu_are_channels():
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.copy_(torch.tensor([0.0, -10.0, 0.0, -10.0]))
    model = nn.Sequential(conv, nn.ReLU(inplace=True))
    x = torch.rand(2, 1, 5, 5)  # in [0, 1): channels with bias −10 never fire
    assert dead_relu_fraction(model, x) == {"1": 0.5}


def test_layer_statistics_match_autograd_and_leave_grad_untouched():
    model = mlp()
    x, y = random_batch()
    stats = layer_statistics(model, (x, y))
    assert [s.name for s in stats] == ["0", "1", "2", "3", "4"]
    assert all(p.grad is None for p in model.parameters())
    F.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        hidden = model[1](model[0](x))
    by_name = {s.name: s for s in stats}
    assert by_name["1"].activation_mean == pytest.approx(float(hidden.mean()), rel=1e-5)
    assert by_name["1"].activation_std == pytest.approx(float(hidden.std()), rel=1e-5)
    for name in ("0", "2", "4"):
        grad = model[int(name)].weight.grad
        assert by_name[name].weight_grad_norm == pytest.approx(float(grad.norm()), rel=1e-5)
        assert by_name[name].weight_grad_std == pytest.approx(float(grad.std()), rel=1e-5)
    assert by_name["1"].weight_grad_norm is None and by_name["1"].kind == "ReLU"


# --------------------------------------------------------------------------- transfer learning


@pytest.mark.parametrize("optimizer", ["sgd_weight_decay", "adamw"])
def test_frozen_backbone_params_do_not_change_after_a_step(optimizer):
    model = mlp()
    frozen = freeze_backbone(model, ["4"])
    assert frozen == ["0.weight", "0.bias", "2.weight", "2.bias"]
    before = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=0.1, weight_decay=0.1) if optimizer == "sgd_weight_decay"
           else torch.optim.AdamW(params, lr=0.1))
    x, y = random_batch()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    after = model.state_dict()
    for name in frozen:
        assert torch.equal(after[name], before[name]), name
        assert dict(model.named_parameters())[name].grad is None
    assert not torch.equal(after["4.weight"], before["4.weight"])


def test_transfer_learning_param_groups_have_the_right_lrs():
    model = mlp()
    groups = transfer_learning_param_groups(model, ["4"], lr=0.01, backbone_lr_scale=0.1)
    opt = torch.optim.SGD(groups, lr=1.0, momentum=0.9)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"backbone": pytest.approx(0.001), "head": 0.01}
    ids = {g["name"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert ids["head"] == {id(model[4].weight), id(model[4].bias)}
    assert len(ids["backbone"]) == 4 and not ids["head"] & ids["backbone"]


def test_param_groups_leave_out_frozen_parameters():
    model = mlp()
    freeze_backbone(model, ["2", "4"])
    groups = transfer_learning_param_groups(model, ["4"], lr=0.01)
    assert [(g["name"], len(g["params"])) for g in groups] == [("backbone", 2), ("head", 2)]


def test_head_name_prefix_does_not_match_a_longer_sibling_name():
    # "fc" must not claim "fc2.*": heads are matched on whole dotted name components.
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(2, 2))
    model.add_module("fc2", nn.Linear(2, 2))
    assert freeze_backbone(model, ["fc"]) == ["fc2.weight", "fc2.bias"]


def test_transfer_learning_rejects_bad_settings():
    with pytest.raises(ConfigError, match="head 'classifier'"):
        freeze_backbone(mlp(), ["classifier"])
    with pytest.raises(ConfigError, match="non-empty list"):
        freeze_backbone(mlp(), "4")
    with pytest.raises(ConfigError, match="backbone_lr_scale > 0"):
        transfer_learning_param_groups(mlp(), ["4"], lr=0.1, backbone_lr_scale=0.0)


# --------------------------------------------------------------------------- plots


def test_plots_write_png_atomically(tmp_path):
    result = lr_range_test(mlp(), [random_batch()], steps=40)
    stats = layer_statistics(mlp(), random_batch())
    for path in (plot_lr_range(result, tmp_path / "lr.png"),
                 plot_layer_statistics(stats, tmp_path / "layers.png"),
                 plot_layer_statistics([], tmp_path / "empty.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "layers.png", "lr.png"]
    with pytest.raises(DataError, match="LRRangeResult"):
        plot_lr_range({"lrs": []}, tmp_path / "bad.png")
