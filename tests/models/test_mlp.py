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


def test_drop_connect_option_swaps_the_hidden_layers_and_keeps_the_state_dict():
    from foveal.models import build_model
    from foveal.training.regularization import DropConnect

    torch.manual_seed(0)
    plain = build_model("mlp", in_channels=1, num_classes=3, image_size=4, hidden=[8])
    torch.manual_seed(0)
    dc = build_model("mlp", in_channels=1, num_classes=3, image_size=4, hidden=[8],
                     drop_connect=0.5)
    assert isinstance(dc.net[1], DropConnect) and not isinstance(dc.net[-1], DropConnect)
    assert plain.state_dict().keys() == dc.state_dict().keys()
    dc.load_state_dict(plain.state_dict())
    x = torch.randn(5, 1, 4, 4)
    torch.testing.assert_close(dc.eval()(x), plain.eval()(x))  # evaluation uses all weights
