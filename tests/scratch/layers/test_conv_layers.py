"""Conv and pooling layers: state dicts and outputs equal torch's nn layers."""

import numpy as np
import torch

from foveal.scratch import Tensor
from foveal.scratch.layers import Conv2d, ConvTranspose2d, MaxPool2d, Sequential


def test_conv_layers_round_trip_with_torch():
    ours = Sequential(Conv2d(4, 6, 3, stride=2, padding=1, groups=2), MaxPool2d(2),
                      ConvTranspose2d(6, 3, 3, stride=2, padding=1, output_padding=1)).to(
                          np.float64)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 3, 2, 1, groups=2), torch.nn.MaxPool2d(2),
                                 torch.nn.ConvTranspose2d(6, 3, 3, 2, 1, 1)).double()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 4, 12, 12))
    out = ours(Tensor(x))
    ref = theirs(torch.as_tensor(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_default_init_bounds_follow_torch():
    conv = Conv2d(8, 4, 3, rng=np.random.default_rng(0))
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(8 * 9)
    convt = ConvTranspose2d(8, 4, 3, rng=np.random.default_rng(0))
    assert convt.weight.shape == (8, 4, 3, 3)
    assert np.abs(convt.weight.data).max() <= 1 / np.sqrt(4 * 9)  # torch: fan_in = shape[1]·k²
