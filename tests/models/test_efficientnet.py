"""EfficientNet against published numbers: torchvision's ``EfficientNet_B*_Weights.IMAGENET1K_V1``
``num_params`` (exact, B0–B7); the paper's eq. 3 and its α = 1.2, β = 1.1, γ = 1.15 (closed form);
the B0 layout of Table 1 (16 MBConv blocks, SE squeeze width ``c_in / 4``); the linear
stochastic-depth rule; and torch autograd for gradient flow."""

import pytest
import torch
import torch.nn.functional as F

import foveal.models.efficientnet as eff
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry, list_models
from foveal.models.squeeze_excitation import SqueezeExcitation
from foveal.models.stochastic_depth import DropPath

# torchvision EfficientNet_B{0..7}_Weights.IMAGENET1K_V1 meta["num_params"] (1000 classes).
PUBLISHED = {
    "efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616, "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704, "efficientnet_b7": 66_347_960,
}
FAST = ["efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"]


def test_registered_names_and_default_resolutions():
    assert sorted(e.name for e in list_models("efficientnet")) == sorted(PUBLISHED)
    sizes = [get_model_entry(f"efficientnet_b{i}").image_size for i in range(8)]
    assert sizes == [224, 240, 260, 300, 380, 456, 528, 600]


@pytest.mark.parametrize(("name", "count"), PUBLISHED.items())
def test_parameter_count_matches_torchvision(name, count):
    with torch.device("meta"):
        model = create(name)
    assert sum(p.numel() for p in model.parameters()) == count
    assert get_model_entry(name).params == count


def test_compound_coefficients_follow_equation_3():
    d, w, r = eff.compound_coefficients(1.0)
    assert (d, w, r) == (1.2, 1.1, 1.15)
    # α·β²·γ² ≈ 2: FLOPs roughly double per unit of φ.
    assert d * w**2 * r**2 == pytest.approx(1.92, abs=0.01)
    d3, w3, r3 = eff.compound_coefficients(3.0)
    assert (d3, w3, r3) == pytest.approx((1.2**3, 1.1**3, 1.15**3))
    assert eff.compound_coefficients(0.0) == (1.0, 1.0, 1.0)


def test_compound_bases_below_one_are_a_config_error():
    with pytest.raises(ConfigError, match="expected compound scaling bases α, β, γ ≥ 1"):
        eff.compound_coefficients(1.0, alpha=0.9)


@pytest.mark.parametrize(("channels", "width", "expected"),
                         [(32, 1.0, 32), (320, 1.1, 352), (40, 1.2, 48), (16, 1.8, 32),
                          (24, 1.4, 32)])
def test_scale_width_rounds_to_multiples_of_8(channels, width, expected):
    assert eff.scale_width(channels, width) == expected


@pytest.mark.parametrize(("repeats", "depth", "expected"),
                         [(1, 1.0, 1), (2, 1.1, 3), (3, 1.1, 4), (4, 3.1, 13), (1, 3.1, 4)])
def test_scale_depth_rounds_up(repeats, depth, expected):
    assert eff.scale_depth(repeats, depth) == expected


def test_b0_layout_and_se_squeeze_is_a_quarter_of_the_block_input_not_the_expansion():
    with torch.device("meta"):
        model = create("efficientnet_b0")
    blocks = [m for m in model.features if isinstance(m, eff.MBConv)]
    assert len(blocks) == 16
    for block in blocks:
        se = next(m for m in block.modules() if isinstance(m, SqueezeExcitation))
        c_in = block.block[0][0].in_channels
        assert se.fc1.out_channels == max(1, c_in // 4)
    assert model.fc.in_features == 1280


def test_stochastic_depth_rises_linearly_to_the_last_block():
    with torch.device("meta"):
        model = create("efficientnet_b0", stochastic_depth=0.2)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    assert rates == pytest.approx([0.2 * i / 15 for i in range(16)])


def test_eval_mode_is_deterministic_despite_stochastic_depth():
    model = create("efficientnet_b0", 10, image_size=32, stochastic_depth=0.5).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model(x))


def _train_step(name: str) -> None:
    model = create(name, 10, in_channels=1, image_size=32)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    first = model.features[0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


@pytest.mark.parametrize("name", FAST)
def test_forward_backward_at_32px_with_one_channel(name):
    _train_step(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(PUBLISHED) - set(FAST)))
def test_forward_backward_at_32px_large_variants(name):
    _train_step(name)


def test_same_padding_accepts_any_input_size():
    model = create("efficientnet_b0", 10, image_size=1).eval()
    assert model(torch.randn(1, 3, 1, 1)).shape == (1, 10)


def test_bad_multipliers_and_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="positive EfficientNet width and depth multipliers"):
        eff.EfficientNet(width_mult=0.0)
    with pytest.raises(ConfigError, match="efficientnet_b0 needs a positive image size, got 0"):
        create("efficientnet_b0", image_size=0)


def test_wrong_channel_count_fails_at_first_forward():
    model = create("efficientnet_b0", 10, in_channels=1, image_size=32)
    with pytest.raises(RuntimeError, match="to have 1 channels, but got 3 channels"):
        model(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_shapes_match_torchvision(name):
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours, theirs = create(name), getattr(tv.models, name)()
    assert sorted(p.shape for p in ours.parameters()) == sorted(
        p.shape for p in theirs.parameters())
