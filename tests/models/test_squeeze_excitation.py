"""SqueezeExcitation against its closed form σ(W₂ δ(W₁ GAP(x))) ⊙ x written with plain matmuls."""

import torch

from foveal.models.squeeze_excitation import SqueezeExcitation


def test_squeeze_excitation_matches_closed_form():
    torch.manual_seed(0)
    se = SqueezeExcitation(8, 2).double()
    x = torch.randn(3, 8, 5, 4, dtype=torch.float64)
    s = x.mean((2, 3))
    w1, b1 = se.fc1.weight[:, :, 0, 0], se.fc1.bias
    w2, b2 = se.fc2.weight[:, :, 0, 0], se.fc2.bias
    gate = torch.sigmoid(torch.relu(s @ w1.T + b1) @ w2.T + b2)
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])


def test_squeeze_excitation_parameter_count_closed_form():
    se = SqueezeExcitation(64, 4)
    assert sum(p.numel() for p in se.parameters()) == 64 * 4 + 4 + 4 * 64 + 64
