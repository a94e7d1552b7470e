"""Module bookkeeping and torch state-dict interchange (oracle: torch nn.Linear/Sequential)."""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor
from foveal.scratch.layers import Flatten, Linear, Sequential


def test_state_dict_keys_match_torch_and_round_trip():
    ours = Sequential(Flatten(), Linear(6, 4), Linear(4, 3, bias=False))
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4),
                                 torch.nn.Linear(4, 3, bias=False)).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.to(np.float64).load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    y = ours(Tensor(x))
    np.testing.assert_allclose(y.data, theirs(torch.as_tensor(x)).detach().numpy(), rtol=1e-12)
    theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})


def test_parameter_gradients_match_torch():
    ours = Sequential(Linear(3, 5), Linear(5, 2)).to(np.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2)).double()
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(1).standard_normal((4, 3))
    ours(Tensor(x)).sum().backward()
    theirs(torch.as_tensor(x)).sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, err_msg=name)


def test_default_init_follows_torch_bounds():
    layer = Linear(100, 50, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(100)
    largest = np.abs(layer.weight.data).max()
    assert 0.9 * bound < largest <= bound


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    model = Sequential(Linear(3, 2))
    with pytest.raises(ValueError, match=r"missing keys \['0.bias'\]"):
        model.load_state_dict({"0.weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"0.weight expected shape \(2, 3\), got \(3, 2\)"):
        model.load_state_dict({"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(2)})


def test_train_eval_propagates_and_zero_grad_clears():
    model = Sequential(Linear(3, 2), Sequential(Linear(2, 2)))
    model.eval()
    assert all(not m.training for _, m in model.named_modules())
    model(Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
