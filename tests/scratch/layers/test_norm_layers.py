"""Normalisation layers against the torch nn layers of the same name (float64): state-dict keys
and round trips, outputs, input and parameter gradients, and running buffers over several
train/eval steps."""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor
from foveal.scratch.layers.norm import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)

rng = np.random.default_rng(0)


def randomise(torch_layer):
    """Non-trivial γ, β so a swapped or ignored parameter shows."""
    with torch.no_grad():
        for p in torch_layer.parameters():
            p.copy_(torch.as_tensor(rng.standard_normal(tuple(p.shape))))
    return torch_layer


def compare_step(ours, theirs, x):
    """One forward + backward on both; outputs, input and parameter gradients must agree."""
    xt = Tensor(x, requires_grad=True)
    xr = torch.tensor(x, requires_grad=True)
    y, ref = ours(xt), theirs(xr)
    np.testing.assert_allclose(y.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ref.backward(torch.as_tensor(g))
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    ours.zero_grad()
    theirs.zero_grad()


def assert_same_state(ours, theirs):
    ref = theirs.state_dict()
    ours_state = ours.state_dict()
    assert list(ours_state) == list(ref)
    for key, value in ref.items():
        np.testing.assert_allclose(ours_state[key], value.numpy(), rtol=1e-12, err_msg=key)
        assert ours_state[key].dtype == value.numpy().dtype, key


@pytest.mark.parametrize(("ours_cls", "theirs_cls", "shape"), [
    (BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    (BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 5)),
])
@pytest.mark.parametrize("momentum", [0.1, 0.25, None])
def test_batchnorm_train_then_eval_tracks_torch_over_steps(ours_cls, theirs_cls, shape, momentum):
    theirs = randomise(theirs_cls(3, momentum=momentum).double())
    ours = ours_cls(3, momentum=momentum).to(np.float64)
    ours.load_state_dict(theirs.state_dict())
    for step in range(4):
        compare_step(ours, theirs, rng.standard_normal(shape) * 2 + step)
        assert_same_state(ours, theirs)  # running_mean, running_var, num_batches_tracked
    assert int(ours.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    for _ in range(2):
        compare_step(ours, theirs, rng.standard_normal(shape))
    assert_same_state(ours, theirs)  # eval leaves the buffers alone


def test_batchnorm_state_dict_round_trips_with_torch_including_num_batches_tracked():
    theirs = torch.nn.BatchNorm2d(4).double()
    theirs(torch.randn(3, 4, 2, 2, dtype=torch.float64))  # move the buffers off their defaults
    ours = BatchNorm2d(4)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    ours.load_state_dict(theirs.state_dict())
    assert ours.num_batches_tracked.dtype == np.int64 and int(ours.num_batches_tracked) == 1
    assert ours.running_mean.dtype == np.float32  # loading keeps our dtype
    fresh = torch.nn.BatchNorm2d(4)
    fresh.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
    assert int(fresh.num_batches_tracked) == 1
    np.testing.assert_allclose(fresh.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-6)


@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False), (False, False)])
def test_batchnorm_options_match_torch_keys_and_outputs(affine, track):
    theirs = torch.nn.BatchNorm1d(3, affine=affine, track_running_stats=track).double()
    ours = BatchNorm1d(3, affine=affine, track_running_stats=track).to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if affine:
        randomise(theirs)
        ours.load_state_dict(theirs.state_dict())
    compare_step(ours, theirs, rng.standard_normal((5, 3)))
    ours.eval()
    theirs.eval()  # without running stats, eval still uses the batch statistics
    compare_step(ours, theirs, rng.standard_normal((5, 3)) + 1)


@pytest.mark.parametrize(("shape", "normalized"), [((4, 7), 7), ((2, 3, 5), (3, 5))])
@pytest.mark.parametrize(("affine", "bias"), [(True, True), (True, False), (False, True)])
def test_layernorm_matches_torch(shape, normalized, affine, bias):
    theirs = randomise(torch.nn.LayerNorm(normalized, elementwise_affine=affine,
                                          bias=bias).double())
    ours = LayerNorm(normalized, elementwise_affine=affine, bias=bias).to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    compare_step(ours, theirs, rng.standard_normal(shape) * 3 - 1)
    ours.eval()
    theirs.eval()
    compare_step(ours, theirs, rng.standard_normal(shape))


@pytest.mark.parametrize(("groups", "shape"), [(2, (3, 4, 5)), (4, (2, 4, 3, 3)), (1, (2, 4))])
@pytest.mark.parametrize("affine", [True, False])
def test_groupnorm_matches_torch(groups, shape, affine):
    theirs = randomise(torch.nn.GroupNorm(groups, 4, affine=affine).double())
    ours = GroupNorm(groups, 4, affine=affine).to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    compare_step(ours, theirs, rng.standard_normal(shape) + 0.5)


@pytest.mark.parametrize("affine", [False, True])
def test_instancenorm2d_matches_torch_in_train_and_eval(affine):
    theirs = randomise(torch.nn.InstanceNorm2d(3, affine=affine).double())
    ours = InstanceNorm2d(3, affine=affine).to(np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    compare_step(ours, theirs, rng.standard_normal((2, 3, 4, 5)))
    ours.eval()
    theirs.eval()
    compare_step(ours, theirs, rng.standard_normal((2, 3, 4, 5)) * 2)


def test_norm_layers_default_to_float32_and_reject_wrong_inputs():
    bn = BatchNorm2d(3)
    y = bn(Tensor(rng.standard_normal((2, 3, 2, 2)).astype(np.float32)))
    assert y.dtype == np.float32 and bn.running_mean.dtype == np.float32
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input .* C = 3, got "
                                         r"\(2, 3, 4\)"):
        bn(Tensor(np.zeros((2, 3, 4), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected a 2-D or 3-D input .* C = 3"):
        BatchNorm1d(3)(Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match="GroupNorm: num_channels must be a positive multiple"):
        GroupNorm(3, 4)
    with pytest.raises(ValueError, match="BatchNorm1d: momentum must be in"):
        BatchNorm1d(3, momentum=2.0)
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected input \(N, C, H, W\)"):
        InstanceNorm2d(3)(Tensor(np.zeros((2, 3, 4), np.float32)))
