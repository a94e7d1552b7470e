"""Activation and loss layers against torch's nn layers (float64): same constructor arguments,
state dicts that round-trip, outputs and gradients equal under torch autograd.

The loss layers (:mod:`foveal.scratch.layers.loss`) are tested here too, at the end.
"""

import numpy as np
import pytest
import torch
from torch import nn

from foveal.scratch import Tensor
from foveal.scratch.layers import activation as act
from foveal.scratch.layers import loss as losses
from foveal.scratch.layers.linear import Linear
from foveal.scratch.layers.module import Sequential
from foveal.scratch.torchcheck import torch_check

rng = np.random.default_rng(0)

PAIRS = [
    (act.ReLU(), nn.ReLU()),
    (act.LeakyReLU(0.2), nn.LeakyReLU(0.2)),
    (act.ELU(alpha=0.7), nn.ELU(alpha=0.7)),
    (act.SELU(), nn.SELU()),
    (act.GELU(), nn.GELU()),
    (act.GELU("tanh"), nn.GELU("tanh")),
    (act.Sigmoid(), nn.Sigmoid()),
    (act.Tanh(), nn.Tanh()),
    (act.Softplus(beta=2.0, threshold=3.0), nn.Softplus(beta=2.0, threshold=3.0)),
    (act.SiLU(), nn.SiLU()),
    (act.GLU(dim=1), nn.GLU(dim=1)),
    (act.Softmax(dim=1), nn.Softmax(dim=1)),
    (act.LogSoftmax(dim=-1), nn.LogSoftmax(dim=-1)),
]
IDS = [repr(theirs) for _, theirs in PAIRS]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=IDS)
def test_layer_matches_torch_layer(ours, theirs):
    """After loading torch's (empty) state dict: same output and input gradient, same repr."""
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict() == {}
    assert repr(ours) == repr(theirs)
    x = 2 * rng.standard_normal((3, 6, 5))
    torch_check(ours, theirs, [x]).assert_close(1e-8)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=IDS)
def test_activation_between_linear_layers_gives_torchs_parameter_gradients(ours, theirs):
    """Linear → activation → Linear, weights copied torch → ours, gradients of every weight."""
    width = 3 if isinstance(theirs, nn.GLU) else 6  # GLU halves its input
    torch.manual_seed(0)
    t_model = nn.Sequential(nn.Linear(4, 6), theirs, nn.Linear(width, 3)).double()
    ours_model = Sequential(Linear(4, 6, dtype=np.float64), ours,
                            Linear(width, 3, dtype=np.float64))
    ours_model.load_state_dict(t_model.state_dict())

    x = rng.standard_normal((5, 4))
    r = rng.standard_normal((5, 3))
    y = ours_model(Tensor(x))
    y.backward(r)
    t_y = t_model(torch.tensor(x))
    t_y.backward(torch.tensor(r))
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = {name: p.grad for name, p in ours_model.named_parameters()}
    for name, p in t_model.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_maxout_layer_matches_torch_unflatten_max():
    layer = act.Maxout(pieces=3)
    x = rng.standard_normal((2, 6, 4))
    torch_check(layer, lambda x: x.unflatten(1, (2, 3)).max(2).values, [x]).assert_close(1e-8)
    assert repr(layer) == "Maxout(pieces=3, axis=1)"


@pytest.mark.parametrize(("make", "match"), [
    (lambda: act.Softmax(), r"Softmax: pass dim explicitly"),
    (lambda: act.GELU("erf"), r"GELU: approximate must be one of"),
    (lambda: act.Maxout(0), r"Maxout: pieces must be a positive integer, got 0"),
    (lambda: act.Softplus(beta=-1.0), r"Softplus: beta must be > 0, got -1.0"),
    (lambda: losses.MSELoss(reduction="avg"), r"MSELoss: reduction must be one of"),
])
def test_bad_configuration_raises_value_error_naming_the_layer(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------- loss layers
def class_inputs(n: int = 5, c: int = 4) -> list[np.ndarray]:
    return [rng.standard_normal((n, c)), rng.integers(0, c, size=n)]


LOSS_PAIRS = [
    (losses.CrossEntropyLoss(label_smoothing=0.1), nn.CrossEntropyLoss(label_smoothing=0.1),
     class_inputs, [True, False]),
    (losses.CrossEntropyLoss(reduction="none"), nn.CrossEntropyLoss(reduction="none"),
     class_inputs, [True, False]),
    (losses.MSELoss(), nn.MSELoss(),
     lambda: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))], None),
    (losses.L1Loss(reduction="sum"), nn.L1Loss(reduction="sum"),
     lambda: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))], None),
    (losses.SmoothL1Loss(beta=0.5), nn.SmoothL1Loss(beta=0.5),
     lambda: [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))], None),
    (losses.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss(),
     lambda: [rng.standard_normal((3, 4)), rng.random((3, 4))], None),
    (losses.TripletMarginLoss(margin=2.0, p=1.0, swap=True),
     nn.TripletMarginLoss(margin=2.0, p=1.0, swap=True),
     lambda: [rng.standard_normal((4, 3)) for _ in range(3)], None),
]


@pytest.mark.parametrize(("ours", "theirs", "inputs", "differentiable"), LOSS_PAIRS,
                         ids=[repr(t) + str(i) for i, (_, t, _, _) in enumerate(LOSS_PAIRS)])
def test_loss_layer_matches_torch_layer(ours, theirs, inputs, differentiable):
    ours.load_state_dict(theirs.state_dict())
    torch_check(ours, theirs, inputs(), differentiable=differentiable).assert_close(1e-8)


def test_bce_pos_weight_is_a_buffer_that_round_trips_with_torch():
    theirs = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64))
    ours = losses.BCEWithLogitsLoss(pos_weight=np.ones(3))
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == ["pos_weight"]
    np.testing.assert_array_equal(ours.state_dict()["pos_weight"], [0.5, 2.0, 3.0])
    x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    torch_check(ours, theirs, [x, t]).assert_close(1e-8)


def test_multiclass_hinge_layer_is_torch_multi_margin_times_c():
    x, y = class_inputs(6, 5)
    torch_check(losses.MulticlassHingeLoss(margin=0.5),
                lambda x, y: 5 * nn.MultiMarginLoss(margin=0.5)(x, y),
                [x, y], differentiable=[True, False]).assert_close(1e-8)
