"""AlexNet against published numbers: torchvision's ``AlexNet_Weights.IMAGENET1K_V1``
``num_params`` (exact), a closed-form per-layer count, the closed-form minimum input side (63 px,
torchvision's ``min_size``), and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F

import foveal.models.alexnet as alexnet
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry

# torchvision AlexNet_Weights.IMAGENET1K_V1 meta["num_params"] (1000 classes).
PUBLISHED = 61_100_840


def test_parameter_count_matches_torchvision():
    with torch.device("meta"):
        model = create("alexnet")
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED
    assert get_model_entry("alexnet").params == PUBLISHED


def test_parameter_count_closed_form():
    # (k² · c_in + 1) · c_out per convolution, (n_in + 1) · n_out per FC layer.
    convs = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]
    fcs = [(256 * 6 * 6, 4096), (4096, 4096), (4096, 1000)]
    total = sum((k * k * i + 1) * o for k, i, o in convs) + sum((i + 1) * o for i, o in fcs)
    assert total == PUBLISHED


def test_forward_backward_at_the_minimum_size_63_with_one_channel():
    model = create("alexnet", 10, in_channels=1, image_size=63)
    out = model(torch.randn(2, 1, 63, 63))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([0, 9])).backward()
    first = model.features[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_cifar_sized_image_is_too_small_for_three_unpadded_pools():
    # 32 px: 11×11/4 conv → 7, pool → 3, pool → 1, and the last 3×3 pool has nothing to cover.
    assert alexnet.MIN_IMAGE_SIZE == 63
    with pytest.raises(ConfigError, match=r"alexnet needs images of at least 63×63 .*got 62×62"):
        create("alexnet", image_size=62)


def test_wrong_channel_count_fails_at_first_forward():
    model = alexnet.AlexNet(in_channels=1, num_classes=10)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(1, 3, 63, 63))


def test_parameter_shapes_match_torchvision():
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours, theirs = create("alexnet"), tv.models.alexnet()
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
