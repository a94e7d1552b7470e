"""MLP against a closed-form forward pass written with explicit matrix products."""

import torch

from foveal.models import MLP


def test_forward_equals_explicit_affine_relu_chain():
    torch.manual_seed(0)
    m = MLP(12, 3, hidden=(5, 4), dropout=0.5).eval()
    x = torch.randn(6, 3, 2, 2)
    linears = [layer for layer in m.net if isinstance(layer, torch.nn.Linear)]
    h = x.reshape(6, 12)
    for layer in linears[:-1]:
        h = torch.clamp(h @ layer.weight.T + layer.bias, min=0)
    expected = h @ linears[-1].weight.T + linears[-1].bias
    torch.testing.assert_close(m(x), expected)
