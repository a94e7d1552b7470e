"""Tests for foveal.models.receptive_field.

Oracles: the closed form ``R = 1 + Σ_j (F'_j − 1) Π_{i<j} S_i`` against the gradient measurement
(torch autograd: the extent of the non-zero input gradient of the centre output unit) on conv
and pooling stacks with strides, dilation and padding; textbook numbers: three stacked 3×3
convolutions see 7×7 (Simonyan & Zisserman 2015, sec. 2.3), VGG-16 sees 196 pixels at conv5_3
and 212 after pool5 (Araujo et al., "Computing receptive fields of convolutional neural
networks", Distill 2019, whose table lists 212 for VGG-16).
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from foveal.errors import ConfigError
from foveal.models.receptive_field import (
    chain_receptive_field,
    empirical_receptive_field,
    layer_geometry,
    receptive_field,
)
from foveal.models.registry import create


def vgg16_features(width: int = 2) -> nn.Sequential:
    """VGG-16's conv1_1 … pool5 (configuration D), with ``width`` channels everywhere: the
    receptive field depends on kernels and strides only."""
    layers: list[nn.Module] = []
    c = 3
    for block in (2, 2, 3, 3, 3):
        for _ in range(block):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
            c = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def test_three_stacked_3x3_convolutions_see_7x7():
    assert receptive_field([(3, 1)] * 3) == 7
    net = nn.Sequential(*(nn.Conv2d(1, 1, 3) for _ in range(3)))
    assert chain_receptive_field(net) == (7, 7)
    assert empirical_receptive_field(net, (1, 15, 15)) == (7, 7)


def test_vgg16_receptive_field_textbook_numbers():
    features = vgg16_features()
    assert chain_receptive_field(features) == (212, 212)  # after pool5
    assert chain_receptive_field(features[:-1]) == (196, 196)  # conv5_3 (+ its ReLU)
    assert empirical_receptive_field(features[:-2], (3, 224, 224)) == (196, 196)


def test_a_single_layer_is_its_own_chain():
    assert chain_receptive_field(nn.Conv2d(1, 1, (3, 5), dilation=(1, 2))) == (3, 9)
    assert empirical_receptive_field(nn.Conv2d(1, 1, (3, 5), dilation=(1, 2)),
                                     (1, 12, 12)) == (3, 9)


def test_closed_form_examples():
    assert receptive_field([]) == 1
    assert receptive_field([(5, 1)]) == 5
    assert receptive_field([(3, 1, 2)]) == 5  # dilated kernel d(F − 1) + 1
    assert receptive_field([(2, 2), (2, 2), (2, 2)]) == 8  # non-overlapping pooling pyramid
    # AlexNet conv1 11/4, pool 3/2, conv2 5/1: 11 + 2·4 + 4·8 = 51
    assert receptive_field([(11, 4), (3, 2), (5, 1)]) == 51


STACKS = {
    "strided": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.ReLU(),
                                     nn.Conv2d(2, 2, 3, stride=2), nn.ReLU(),
                                     nn.Conv2d(2, 1, 3)),
    "dilated": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.ReLU(),
                                     nn.Conv2d(2, 2, 3, dilation=4), nn.ReLU(),
                                     nn.Conv2d(2, 1, 3, dilation=1)),
    "padded_bn_pools": lambda: nn.Sequential(nn.Conv2d(2, 4, 5, padding=2), nn.BatchNorm2d(4),
                                             nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
                                             nn.Conv2d(4, 4, 3, padding=1), nn.AvgPool2d(2),
                                             nn.Conv2d(4, 3, 3, stride=2, padding=1)),
    "non_square": lambda: nn.Sequential(nn.Conv2d(1, 2, (3, 7), stride=(1, 2)), nn.GELU(),
                                        nn.MaxPool2d((2, 3), stride=(2, 1), dilation=(1, 2)),
                                        nn.Conv2d(2, 1, (5, 1), dilation=(2, 1))),
    "dilated_strided": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, dilation=3),
                                             nn.ReLU6(), nn.Conv2d(2, 2, 2, stride=3),
                                             nn.MaxPool2d(2, dilation=2), nn.Conv2d(2, 1, 3)),
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_closed_form_matches_gradient_measurement(name):
    torch.manual_seed(0)
    net = STACKS[name]()
    in_channels = net[0].in_channels
    expected = chain_receptive_field(net)
    assert empirical_receptive_field(net, (in_channels, 97, 97)) == expected
    geometry = layer_geometry(net)
    assert [g.name for g in geometry] == [n for n, m in net.named_children()
                                          if isinstance(m, (nn.Conv2d, nn.MaxPool2d,
                                                            nn.AvgPool2d))]


def test_max_pool_routes_its_gradient_to_one_element_so_it_is_measured_as_average():
    # A naive measurement through a real max pool sees one element per window: 1, not 2.
    net = nn.Sequential(nn.MaxPool2d(2, 2))
    x = torch.rand(1, 1, 8, 8, requires_grad=True)
    net(x)[0, 0, 2, 2].backward()
    assert int((x.grad != 0).sum()) == 1
    assert empirical_receptive_field(net, (1, 8, 8)) == (2, 2) == chain_receptive_field(net)


class FunctionalCNN(nn.Module):
    """small_cnn's layout with F.relu and F.max_pool2d in forward, plus a flatten head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 5)
        self.conv2 = nn.Conv2d(2, 2, 5)
        self.fc = nn.LazyLinear(4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.max_pool2d(F.relu(self.conv2(x)), kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


def test_functional_pooling_in_forward_is_part_of_the_chain():
    # conv 5 → pool 2 → conv 5 → pool 2: 1 + 4 + 1·1 + 4·2 + 1·2 = 16
    model = FunctionalCNN()
    assert chain_receptive_field(model) == (16, 16)
    assert [g.name for g in layer_geometry(model)] == ["conv1", "max_pool2d", "conv2",
                                                       "max_pool2d_1"]

    class Features(nn.Module):
        def __init__(self, m: FunctionalCNN) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m.features(x)

    assert empirical_receptive_field(Features(model), (3, 40, 40)) == (16, 16)


def test_registry_models():
    assert chain_receptive_field(create("small_cnn", num_classes=10)) == (16, 16)
    assert layer_geometry(create("mlp", num_classes=10, hidden=(8,))) == []  # no spatial layer
    with pytest.raises(ConfigError, match="expected a plain chain of layers, got ResNet9"):
        layer_geometry(create("resnet9", num_classes=10, width=4))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def test_residual_branch_is_not_a_plain_chain():
    with pytest.raises(ConfigError) as info:
        layer_geometry(nn.Sequential(nn.Conv2d(1, 2, 3), Residual()))
    assert "got a branch at" in str(info.value) and "\n" not in str(info.value)


def test_unknown_layer_before_the_head_is_rejected():
    with pytest.raises(ConfigError, match="got Upsample"):
        layer_geometry(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)))


def test_measurement_leaves_the_model_alone_and_works_from_meta():
    net = STACKS["padded_bn_pools"]().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    expected = empirical_receptive_field(net, (2, 64, 64))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training
    with torch.device("meta"):
        meta = STACKS["padded_bn_pools"]()
    assert empirical_receptive_field(meta, (2, 64, 64)) == expected


@pytest.mark.parametrize("layers", [[(0, 1)], [(3, 0)], [(3, 1, 0)], [(3,)], [(3.0, 1)]])
def test_bad_layers(layers):
    with pytest.raises(ConfigError, match=r"layers\[0\]: expected \(kernel, stride"):
        receptive_field(layers)


def test_empirical_needs_a_feature_map():
    with pytest.raises(ConfigError, match=r"expected a model that returns a \(N, C, H, W\)"):
        empirical_receptive_field(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), (1, 4, 4))
    with pytest.raises(ConfigError, match="expected input_size"):
        empirical_receptive_field(nn.Conv2d(1, 1, 3), (8, 8))
