"""VGG against published numbers: torchvision's ``VGG*_Weights.IMAGENET1K_V1`` ``num_params``
(exact), the paper's Table 1 layer counts, closed forms for the batch-norm parameters and the
minimum input side, and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import foveal.models.vgg as vgg
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry, list_models

# torchvision VGG{11,13,16,19}[_BN]_Weights.IMAGENET1K_V1 meta["num_params"] (1000 classes).
PUBLISHED = {
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840,
    "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names():
    assert sorted(e.name for e in list_models("vgg")) == sorted(PUBLISHED)


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_parameter_count_matches_torchvision(name, count):
    with torch.device("meta"):
        model = create(name)
    assert _count(model) == count
    assert get_model_entry(name).params == count


@pytest.mark.parametrize(("config", "depth"), [("A", 11), ("B", 13), ("D", 16), ("E", 19)])
def test_depth_is_convolutions_plus_three_fc_layers(config, depth):
    # Table 1: VGG-n has n weight layers, the last three fully connected.
    with torch.device("meta"):
        model = vgg.VGG(config)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (len(convs), len(fcs)) == (depth - 3, 3)
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)


@pytest.mark.parametrize(("name", "config"),
                         [("vgg11", "A"), ("vgg13", "B"), ("vgg16", "D"), ("vgg19", "E")])
def test_bn_variant_adds_two_parameters_per_conv_channel_and_keeps_conv_bias(name, config):
    # torchvision's _bn layout keeps the convolution bias, so BN adds exactly γ and β per channel.
    channels = sum(c for c in vgg.CONFIGS[config] if c != "M")
    assert PUBLISHED[f"{name}_bn"] - PUBLISHED[name] == 2 * channels


def _train_step(name: str, size: int) -> None:
    model = create(name, 10, in_channels=1, image_size=size)
    out = model(torch.randn(2, 1, size, size))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([3, 7])).backward()
    first = model.features[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_forward_backward_at_the_minimum_size_32():
    _train_step("vgg11_bn", 32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PUBLISHED) - {"vgg11_bn"}))
def test_forward_backward_every_variant(name):
    _train_step(name, 32)


def test_image_smaller_than_five_pools_is_a_config_error():
    with pytest.raises(ConfigError, match=r"vgg16 needs images of at least 32×32 .*got 31×31"):
        create("vgg16", image_size=31)


def test_unknown_configuration_is_a_config_error():
    with pytest.raises(ConfigError, match=r"expected a VGG configuration in .*, got 'C'"):
        vgg.VGG("C")


def test_wrong_channel_count_fails_at_first_forward():
    model = vgg.VGG((8, "M"), in_channels=1, num_classes=10)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_shapes_match_torchvision(name):
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours, theirs = create(name), getattr(tv.models, name)()
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
