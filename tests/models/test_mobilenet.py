"""MobileNet v1 and v2 against published numbers: the Keras ``MobileNet(alpha=1.0)`` trainable
parameter count (4,231,976, the v1 paper's "4.2 M") and torchvision's
``MobileNet_V2_Weights.IMAGENET1K_V1`` ``num_params`` (3,504,872), both exact; closed forms for a
depthwise separable block (``k²M + MN`` weights) and the channel rounding rule; the residual and
linear-bottleneck structure of the v2 paper; and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import foveal.models.mobilenet as mobilenet
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry, list_models

PUBLISHED = {
    "mobilenet_v1": 4_231_976,  # Keras MobileNet(alpha=1.0) "Trainable params"; paper Table 1
    "mobilenet_v2": 3_504_872,  # torchvision MobileNet_V2_Weights.IMAGENET1K_V1 num_params
}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names():
    assert sorted(e.name for e in list_models("mobilenet")) == sorted(PUBLISHED)


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_parameter_count_matches_reference(name, count):
    with torch.device("meta"):
        model = create(name)
    assert _count(model) == count
    assert get_model_entry(name).params == count


def test_depthwise_separable_block_has_k2m_plus_mn_weights():
    m, n = 32, 64
    block = mobilenet.depthwise_separable(m, n)
    weights = sum(c.weight.numel() for c in block.modules() if isinstance(c, nn.Conv2d))
    assert weights == 3 * 3 * m + m * n
    assert _count(block) == weights + 2 * m + 2 * n  # plus BN γ, β


@pytest.mark.parametrize(("value", "expected"), [
    (32 * 0.35, 16),   # 8 would lose more than 10 %, so one step up
    (24 * 0.35, 8),
    (320 * 1.1, 352),
    (1280 * 1.4, 1792),
    (96 * 0.75, 72),
    (3.0, 8),          # never below the divisor
])
def test_make_divisible_rounds_to_nearest_multiple_of_8(value, expected):
    assert mobilenet.make_divisible(value) == expected


def test_v2_blocks_follow_table_2():
    with torch.device("meta"):
        model = create("mobilenet_v2")
    blocks = [m for m in model.features if isinstance(m, mobilenet.InvertedResidual)]
    assert len(blocks) == 1 + 2 + 3 + 4 + 3 + 3 + 1
    # A residual connection exactly where stride 1 and c_in = c_out: repeats after the first.
    assert [b.use_residual for b in blocks] == [False, False, True, False, True, True,
                                                False, True, True, True, False, True, True,
                                                False, True, True, False]


def test_v2_projection_is_linear():
    # The linear bottleneck: the block ends with BN, no ReLU6 after the 1×1 projection.
    block = mobilenet.InvertedResidual(16, 16, 1, expand_ratio=6)
    assert isinstance(block.block[-1][-1], nn.BatchNorm2d)
    assert isinstance(block.block[0][-1], nn.ReLU6)
    assert block.eval().block(torch.randn(1, 16, 4, 4)).min() < 0  # negative outputs survive


def test_v2_without_expansion_has_no_expand_convolution():
    block = mobilenet.InvertedResidual(32, 16, 1, expand_ratio=1)
    assert len(block.block) == 2


@pytest.mark.parametrize(("width", "last", "first"), [(0.5, 1280, 16), (1.0, 1280, 32),
                                                      (1.4, 1792, 48)])
def test_v2_width_multiplier(width, last, first):
    # The last convolution keeps 1280 channels unless the multiplier exceeds 1.
    with torch.device("meta"):
        model = create("mobilenet_v2", width_mult=width)
    assert model.fc.in_features == last
    assert model.features[0][0].out_channels == first


def test_v1_width_multiplier_scales_every_layer():
    with torch.device("meta"):
        model = create("mobilenet_v1", width_mult=0.5)
    assert model.features[0][0].out_channels == 16
    assert model.fc.in_features == 512


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_forward_backward_at_32px_with_one_channel(name):
    model = create(name, 10, in_channels=1, image_size=32)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    first = model.features[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_same_padding_accepts_any_input_size(name):
    # Every stride-2 convolution maps S to ⌈S/2⌉, so even a 1×1 image reaches the classifier.
    model = create(name, 10, in_channels=3, image_size=1).eval()
    assert model(torch.randn(1, 3, 1, 1)).shape == (1, 10)
    assert model(torch.randn(1, 3, 17, 23)).shape == (1, 10)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_non_positive_width_is_a_config_error(name):
    with pytest.raises(ConfigError, match=f"{name} width_mult must be positive, got 0"):
        create(name, width_mult=0)


def test_non_positive_image_size_is_a_config_error():
    with pytest.raises(ConfigError, match="mobilenet_v2 needs a positive image size, got 0"):
        create("mobilenet_v2", image_size=0)


def test_wrong_channel_count_fails_at_first_forward():
    model = create("mobilenet_v2", 10, in_channels=1, image_size=32)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(1, 3, 32, 32))


def test_v2_parameter_shapes_match_torchvision():
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours, theirs = create("mobilenet_v2"), tv.models.mobilenet_v2()
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
