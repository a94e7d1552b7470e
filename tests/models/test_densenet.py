"""DenseNet against published numbers: torchvision's ``DenseNet*_Weights.IMAGENET1K_V1``
``num_params`` (exact), the closed-form channel bookkeeping of eq. 2 and the compression rule
(``c + L·k`` out of a block, ``⌊θc⌋`` out of a transition; paper Table 1 widths), the closed-form
minimum input side (29 px, torchvision's ``min_size``), and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F

import foveal.models.densenet as densenet
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry, list_models

# torchvision DenseNet{121,161,169,201}_Weights.IMAGENET1K_V1 meta["num_params"] (1000 classes).
PUBLISHED = {
    "densenet121": 7_978_856, "densenet161": 28_681_000,
    "densenet169": 14_149_480, "densenet201": 20_013_928,
}


def test_registered_names():
    assert sorted(e.name for e in list_models("densenet")) == sorted(PUBLISHED)


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_parameter_count_matches_torchvision(name, count):
    with torch.device("meta"):
        model = create(name)
    assert sum(p.numel() for p in model.parameters()) == count
    assert get_model_entry(name).params == count


@pytest.mark.parametrize(("name", "k", "blocks", "stem", "final"), [
    ("densenet121", 32, (6, 12, 24, 16), 64, 1024),
    ("densenet169", 32, (6, 12, 32, 32), 64, 1664),
    ("densenet201", 32, (6, 12, 48, 32), 64, 1920),
    ("densenet161", 48, (6, 12, 36, 24), 96, 2208),
])
def test_feature_width_follows_growth_and_compression(name, k, blocks, stem, final):
    # c ← c + L·k per block, c ← ⌊c / 2⌋ per transition (θ = 0.5).
    c = stem
    for i, layers in enumerate(blocks):
        c += layers * k
        if i < len(blocks) - 1:
            c //= 2
    assert c == final
    with torch.device("meta"):
        assert create(name).fc.in_features == final


def test_dense_block_concatenates_input_and_every_layer():
    block = densenet.DenseBlock(3, in_channels=5, growth_rate=4, bn_size=2).eval()
    x = torch.randn(2, 5, 6, 6)
    y = block(x)
    assert y.shape == (2, 5 + 3 * 4, 6, 6)
    torch.testing.assert_close(y[:, :5], x)  # the block's input passes through unchanged
    # Layer ℓ sees x₀ and the ℓ earlier outputs: 5 + ℓ·k input channels.
    assert [layer.conv1.in_channels for layer in block.layers] == [5, 9, 13]


def test_transition_compresses_with_floor_and_halves_the_side():
    t = densenet.Transition(7, int(7 * 0.5))
    assert t(torch.randn(1, 7, 9, 9)).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_forward_backward_at_the_minimum_size_29_with_one_channel(name):
    model = create(name, 10, in_channels=1, image_size=29)
    out = model(torch.randn(2, 1, 29, 29))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    first = model.features[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_too_small_image_is_a_config_error():
    # 28 → 14 → 7 → 3 → 1 → 0 after the stem, max-pool and three 2×2 transitions.
    with pytest.raises(ConfigError, match=r"densenet121 needs images of at least 29×29 .*got 28"):
        create("densenet121", image_size=28)


def test_compression_outside_unit_interval_is_a_config_error():
    with pytest.raises(ConfigError, match=r"compression θ in \(0, 1\], got 0.0"):
        densenet.DenseNet(compression=0.0)


def test_wrong_channel_count_fails_at_first_forward():
    model = densenet.DenseNet(8, (1, 1), 16, in_channels=1, num_classes=10)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_shapes_match_torchvision(name):
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours, theirs = create(name), getattr(tv.models, name)()
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
