"""Optimisers against their oracles: SGD-Nesterov against its recursion written out by hand,
each name against the torch.optim class it stands for (and the trainer's build_optimizer),
MuonWithAdamW against torch.optim.Muon + torch.optim.AdamW on the same tensors (conv kernels
against Muon on the flattened matrix), Lookahead against a hand-written loop of Zhang et al.
2019, Algorithm 1, and state_dict round trips against uninterrupted runs."""

import copy
import io

import pytest
import torch
from torch import nn

from foveal.errors import ConfigError
from foveal.training.config import TrainConfig
from foveal.training.optimizers import (
    OPTIMIZER_NAMES,
    Lookahead,
    MuonWithAdamW,
    build_optimizer,
    param_groups_for_muon,
)
from foveal.training.regularization import weight_decay_param_groups
from foveal.training.trainer import build_optimizer as trainer_build_optimizer


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(4, 6, 3, bias=False)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        return self.fc(self.conv(x).mean((2, 3)))


class SmallTransformer(nn.Module):
    def __init__(self, vocab=11, dim=8, length=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.02)
        self.block = nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        return self.head(self.norm(self.block(self.embed(tokens) + self.pos)))


def mlp():
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 3))


def loss_of(model, seed):
    g = torch.Generator().manual_seed(seed)
    if isinstance(model, SmallCNN):
        return model(torch.randn(2, 3, 6, 6, generator=g)).square().mean()
    if isinstance(model, SmallTransformer):
        return model(torch.randint(0, 11, (2, 6), generator=g)).square().mean()
    return model(torch.randn(4, 5, generator=g)).square().mean()


def run(model, optimizer, steps, start=0):
    for t in range(start, start + steps):
        optimizer.zero_grad()
        loss_of(model, t).backward()
        optimizer.step()


def names_in(model, params):
    ids = {id(p) for p in params}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def assert_same_params(a, b, atol=0.0):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=atol, rtol=0.0 if atol == 0 else 1e-5, msg=name)


# --- SGD ------------------------------------------------------------------------------------


def test_sgd_nesterov_matches_recursion_written_out():
    torch.manual_seed(0)
    theta0 = torch.randn(4, 3)
    grads = [torch.randn(4, 3) for _ in range(4)]
    lr, mu, lam = 0.1, 0.9, 0.01
    p = theta0.clone().requires_grad_()
    opt = build_optimizer("sgd", [p], lr=lr, momentum=mu, nesterov=True, weight_decay=lam)
    theta, v = theta0.clone(), None
    for g in grads:
        p.grad = g.clone()
        opt.step()
        d = g + lam * theta                   # L2 in the gradient
        v = d if v is None else mu * v + d    # v ← μ v + g (first step: v = g)
        theta = theta - lr * (d + mu * v)     # Nesterov: θ ← θ − η (g + μ v)
        torch.testing.assert_close(p.detach(), theta)


def test_nesterov_uses_lookahead_gradient_sign():
    """With a constant gradient g the update is η(g + μv), v = (1 + μ + ...)g: Nesterov moves
    *further* along −g than heavy ball (θ − ηv); subtracting μv instead would move less."""
    lr, mu, g = 0.1, 0.9, torch.tensor([1.0, -2.0])
    out = {}
    for nesterov in (False, True):
        p = torch.zeros(2, requires_grad=True)
        opt = build_optimizer("sgd", [p], lr=lr, momentum=mu, nesterov=nesterov)
        for _ in range(2):
            p.grad = g.clone()
            opt.step()
        out[nesterov] = p.detach()
    torch.testing.assert_close(out[False], -lr * g * (1 + (1 + mu)))
    torch.testing.assert_close(out[True], -lr * g * ((1 + mu) + (1 + mu * (1 + mu))))
    assert torch.all(out[True].abs() > out[False].abs())


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_trainer_build_optimizer_equals_torch_sgd_and_adamw(name):
    # the trainer builds through build_optimizer; its sgd / adamw must stay exactly torch's
    # SGD (Nesterov) and AdamW over all trainable parameters in one group
    config = TrainConfig(optimizer=name, lr=0.05, momentum=0.8, nesterov=True,
                         betas=(0.8, 0.99), weight_decay=1e-3, model="mlp")
    torch.manual_seed(0)
    a = SmallCNN()
    b = copy.deepcopy(a)
    if name == "sgd":
        ref = torch.optim.SGD(a.parameters(), lr=config.lr, momentum=config.momentum,
                              nesterov=True, weight_decay=config.weight_decay)
    else:
        ref = torch.optim.AdamW(a.parameters(), lr=config.lr, betas=config.betas,
                                weight_decay=config.weight_decay)
    ours = trainer_build_optimizer(config, b)
    assert type(ours) is type(ref)
    assert ours.state_dict()["param_groups"] == ref.state_dict()["param_groups"]
    run(a, ref, 3)
    run(b, ours, 3)
    assert_same_params(a, b)


@pytest.mark.parametrize(
    ("name", "kwargs", "make"),
    [("adam", {"weight_decay": 0.1, "betas": (0.8, 0.9)},
      lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
     ("adamw", {"weight_decay": 0.1}, lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
     ("rmsprop", {"momentum": 0.5, "alpha": 0.9},
      lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, alpha=0.9)),
     ("rmsprop", {}, lambda ps: torch.optim.RMSprop(ps, lr=0.01)),
     ("adagrad", {"weight_decay": 0.1, "lr_decay": 0.01},
      lambda ps: torch.optim.Adagrad(ps, lr=0.01, weight_decay=0.1, lr_decay=0.01)),
     ("sgd", {}, lambda ps: torch.optim.SGD(ps, lr=0.01))],
)
def test_each_name_steps_like_its_torch_optimizer(name, kwargs, make):
    torch.manual_seed(0)
    a = mlp()
    b = copy.deepcopy(a)
    run(a, make(list(a.parameters())), 3)
    run(b, build_optimizer(name, b, lr=0.01, **kwargs), 3)
    assert_same_params(a, b)


def test_decay_biases_and_norms_false_uses_weight_decay_param_groups():
    torch.manual_seed(0)
    a = SmallCNN()
    b = copy.deepcopy(a)
    ref = torch.optim.AdamW(weight_decay_param_groups(a, 0.1), lr=0.01)
    ours = build_optimizer("adamw", b, lr=0.01, weight_decay=0.1, decay_biases_and_norms=False)
    assert [g["weight_decay"] for g in ours.param_groups] == [0.1, 0.0]
    assert names_in(b, ours.param_groups[0]["params"]) == ["stem.weight", "conv.weight",
                                                           "fc.weight"]
    run(a, ref, 2)
    run(b, ours, 2)
    assert_same_params(a, b)


# --- Muon -----------------------------------------------------------------------------------


def test_muon_groups_cnn_hidden_kernels_only():
    model = SmallCNN()
    muon, adamw = param_groups_for_muon(model)
    assert (muon["use_muon"], adamw["use_muon"]) == (True, False)
    assert names_in(model, muon["params"]) == ["stem.weight", "conv.weight"]
    assert names_in(model, adamw["params"]) == ["stem.bias", "bn.weight", "bn.bias",
                                                "fc.weight", "fc.bias"]


def test_muon_groups_mlp_excludes_the_head():
    model = mlp()
    muon, adamw = param_groups_for_muon(model)
    assert names_in(model, muon["params"]) == ["0.weight", "2.weight"]
    assert names_in(model, adamw["params"]) == ["0.bias", "2.bias", "4.weight", "4.bias"]
    # naming another head moves it out instead
    muon, _ = param_groups_for_muon(model, head="0")
    assert names_in(model, muon["params"]) == ["2.weight", "4.weight"]


def test_muon_groups_transformer_embeddings_norms_and_head_to_adamw():
    model = SmallTransformer()
    muon, adamw = param_groups_for_muon(model)
    assert names_in(model, muon["params"]) == [
        "block.self_attn.in_proj_weight", "block.self_attn.out_proj.weight",
        "block.linear1.weight", "block.linear2.weight",
    ]
    assert set(names_in(model, adamw["params"])) == (
        {n for n, _ in model.named_parameters()} - set(names_in(model, muon["params"]))
    )
    assert "embed.weight" in names_in(model, adamw["params"])
    assert "pos" in names_in(model, adamw["params"])
    assert "head.weight" in names_in(model, adamw["params"])


def test_frozen_parameters_are_in_no_group():
    model = mlp()
    model[0].weight.requires_grad_(False)
    muon, adamw = param_groups_for_muon(model)
    assert "0.weight" not in names_in(model, muon["params"] + adamw["params"])


def test_muon_with_adamw_step_equals_torch_muon_and_adamw():
    torch.manual_seed(0)
    a = SmallTransformer()
    b = copy.deepcopy(a)
    muon, adamw = param_groups_for_muon(a)
    ref_muon = torch.optim.Muon(muon["params"], lr=0.02, weight_decay=0.01, momentum=0.9)
    ref_adamw = torch.optim.AdamW(adamw["params"], lr=1e-3, weight_decay=0.01, betas=(0.9, 0.95))
    ours = build_optimizer("muon", b, lr=0.02, weight_decay=0.01, momentum=0.9,
                           betas=(0.9, 0.95), adamw_lr=1e-3)
    assert isinstance(ours, MuonWithAdamW)
    for t in range(3):
        for opt in (ref_muon, ref_adamw, ours):
            opt.zero_grad()
        loss_of(a, t).backward()
        loss_of(b, t).backward()
        ref_muon.step()
        ref_adamw.step()
        ours.step()
    assert_same_params(a, b)


def test_conv_kernel_muon_step_equals_torch_muon_on_flattened_matrix():
    torch.manual_seed(0)
    kernel = torch.randn(6, 4, 3, 3)
    grads = [torch.randn(6, 4, 3, 3) for _ in range(2)]
    matrix = kernel.reshape(6, -1).clone().requires_grad_()
    ref = torch.optim.Muon([matrix], lr=0.02, weight_decay=0.0)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        p = nn.Parameter(kernel.clone().to(memory_format=memory_format))
        ours = MuonWithAdamW([{"params": [p], "use_muon": True}], lr=0.02)
        for g in grads:
            p.grad = g.clone().to(memory_format=memory_format)
            ours.step()
        assert p.is_contiguous(memory_format=memory_format)
        if memory_format is torch.contiguous_format:
            for g in grads:
                matrix.grad = g.reshape(6, -1).clone()
                ref.step()
        torch.testing.assert_close(p.detach().reshape(6, -1), matrix.detach())


def test_lr_scheduler_scales_muon_and_adamw_groups_together():
    model = SmallCNN()
    opt = build_optimizer("muon", model, lr=0.02, adamw_lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    run(model, opt, 1)
    sched.step()
    assert opt.muon.param_groups[0]["lr"] == pytest.approx(0.01)
    assert opt.adamw.param_groups[0]["lr"] == pytest.approx(5e-4)


# --- Lookahead ------------------------------------------------------------------------------


def test_lookahead_matches_algorithm_1_loop():
    """Alg. 1: θ_{t,0} ← φ_{t−1}; k inner SGD steps θ ← θ − η∇L(θ); φ_t ← φ + α(θ_{t,k} − φ)."""
    torch.manual_seed(0)
    A = torch.randn(5, 5)
    A = A @ A.T / 5 + torch.eye(5)
    b = torch.randn(5)

    def loss(theta):
        return 0.5 * theta @ A @ theta - b @ theta

    lr, k, alpha, outer = 0.1, 3, 0.4, 4
    phi = torch.randn(5)
    p = phi.clone().requires_grad_()
    opt = Lookahead(torch.optim.SGD([p], lr=lr), k=k, alpha=alpha)
    for _ in range(outer):
        theta = phi.clone()
        for _ in range(k):
            theta = theta - lr * (A @ theta - b)   # ∇L = Aθ − b
            opt.zero_grad()
            loss(p).backward()
            opt.step()
        phi = phi + alpha * (theta - phi)
        torch.testing.assert_close(p.detach(), phi)
    # mid-cycle the parameters are the fast weights
    opt.zero_grad()
    loss(p).backward()
    opt.step()
    torch.testing.assert_close(p.detach(), phi - lr * (A @ phi - b))


def test_lookahead_alpha_one_is_the_base_optimizer():
    torch.manual_seed(0)
    a = mlp()
    b = copy.deepcopy(a)
    run(a, torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9), 7)
    run(b, build_optimizer("sgd", b, lr=0.05, momentum=0.9, lookahead_k=3, lookahead_alpha=1.0), 7)
    assert_same_params(a, b, atol=1e-6)


def test_lookahead_scheduler_drives_base_lr():
    model = mlp()
    opt = build_optimizer("adamw", model, lr=0.1, lookahead_k=2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    run(model, opt, 1)
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


# --- state_dict -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_model", "name", "kwargs"),
    [(mlp, "sgd", {"momentum": 0.9, "nesterov": True, "lookahead_k": 3}),
     (SmallCNN, "muon", {"adamw_lr": 1e-3}),
     (SmallCNN, "muon", {"adamw_lr": 1e-3, "lookahead_k": 2}),
     (SmallTransformer, "adamw", {"weight_decay": 0.01})],
)
def test_state_dict_round_trip_resumes_identically(make_model, name, kwargs):
    torch.manual_seed(0)
    model = make_model()
    opt = build_optimizer(name, model, lr=0.02, **kwargs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for t in range(4):       # mid Lookahead cycle
        run(model, opt, 1, start=t)
        sched.step()
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict()}, buffer)
    for t in range(4, 7):
        run(model, opt, 1, start=t)
        sched.step()

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    torch.manual_seed(1)
    resumed = make_model()
    resumed.load_state_dict(saved["model"])
    opt2 = build_optimizer(name, resumed, lr=0.02, **kwargs)
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=10)
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    for t in range(4, 7):
        run(resumed, opt2, 1, start=t)
        sched2.step()
    assert_same_params(model, resumed)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


# --- bad settings ---------------------------------------------------------------------------


def test_bad_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown optimizer 'lion'") as info:
        build_optimizer("lion", mlp(), lr=0.1)
    assert str(info.value).endswith(", ".join(OPTIMIZER_NAMES))


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [("sgd", {"nesterov": True}, "nesterov momentum needs momentum > 0"),
     ("sgd", {"lr": -1.0}, "expected lr >= 0"),
     ("adamw", {"weight_decay": -0.1}, "expected weight_decay >= 0"),
     ("adamw", {"lookahead_k": -1}, "lookahead_k"),
     ("adamw", {"lookahead_k": 2, "lookahead_alpha": 0.0}, "alpha in \\(0, 1\\]"),
     ("adam", {"foo": 1}, "bad settings for optimizer 'adam'.*foo"),
     ("muon", {"head": "nope"}, "head 'nope' is not a module")],
)
def test_bad_settings_raise_config_error(name, kwargs, message):
    kwargs = {"lr": 0.1} | kwargs
    with pytest.raises(ConfigError, match=message):
        build_optimizer(name, mlp(), **kwargs)


def test_muon_needs_a_module():
    with pytest.raises(ConfigError, match=r"optimizer 'muon' needs an nn\.Module, got list"):
        build_optimizer("muon", list(mlp().parameters()), lr=0.1)


def test_wrong_state_dict_kind_is_refused():
    model = mlp()
    lookahead = build_optimizer("sgd", model, lr=0.1, lookahead_k=2)
    muon = build_optimizer("muon", model, lr=0.1)
    with pytest.raises(ConfigError, match="expected a Lookahead state_dict"):
        lookahead.load_state_dict(muon.state_dict())
    with pytest.raises(ConfigError, match="expected a MuonWithAdamW state_dict"):
        muon.load_state_dict(lookahead.state_dict())


def test_lookahead_over_muon_syncs_channels_last_kernels():
    """Lookahead must write φ into the kernel itself, not into Muon's copy of a channels_last
    kernel (which the next step overwrites from the kernel)."""
    torch.manual_seed(0)
    kernel = torch.randn(6, 4, 3, 3)
    grads = [torch.randn(6, 4, 3, 3) for _ in range(5)]
    out = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        p = nn.Parameter(kernel.clone().to(memory_format=memory_format))
        opt = Lookahead(MuonWithAdamW([{"params": [p], "use_muon": True}], lr=0.02), k=2)
        for g in grads:
            p.grad = g.clone().to(memory_format=memory_format)
            opt.step()
        out.append(p.detach().contiguous())
    torch.testing.assert_close(out[1], out[0])
