"""ConvNeXt V2: exact parameter counts, GRN and LayerNorm2d against their closed forms.

Oracles: parameter counts of the official implementation's layout (facebookresearch/ConvNeXt-V2,
models/convnextv2.py; its README and timm round them to 3.7M, 5.2M, 9.1M, 15.6M, 28.6M), a
brute-force Python loop for GRN (Woo et al. 2023, eq. 1–3), torch.autograd.gradcheck for its
gradient, torch.nn.functional.layer_norm for LayerNorm2d, and timm where it can be imported.
"""

import math

import pytest
import torch
from torch import nn

import foveal.models.convnext  # noqa: F401  (registers the builders)
from foveal.errors import ConfigError
from foveal.models.convnext import (
    GRN,
    ConvNeXtBlock,
    ConvNeXtV2,
    LayerNorm2d,
    global_response_norm,
)
from foveal.models.registry import build_model, create, get_model_entry

# Counted from the official layout for 1000 classes: stem conv + LN, 3 × (LN + conv 2×2),
# blocks of dw 7×7 (+bias), LN, C→4C, GRN (γ, β ∈ R^4C), 4C→C, final LN and the head.
COUNTS = {
    "convnextv2_atto": 3_708_400,  # README: 3.7M
    "convnextv2_femto": 5_233_240,  # README: 5.2M
    "convnextv2_pico": 9_066_280,  # README: 9.1M
    "convnextv2_nano": 15_623_800,  # README: 15.6M
    "convnextv2_tiny": 28_635_496,  # README: 28.6M; paper Table: 28.6M
}
# The larger configurations run the same code as atto, only wider: smoke-tested with -m slow.
SMOKE_NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in COUNTS and n != "convnextv2_atto"
               else n for n in [*sorted(COUNTS), "convnext_cifar"]]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def closed_form_block_params(c: int) -> int:
    """dw 7×7 with bias, LN, C→4C and 4C→C linears with bias, GRN γ and β."""
    return (49 * c + c) + 2 * c + (4 * c * c + 4 * c) + 2 * 4 * c + (4 * c * c + c)


@pytest.mark.parametrize(("name", "expected"), sorted(COUNTS.items()))
def test_parameter_count_is_exact(name, expected):
    with torch.device("meta"):
        model = create(name)
    assert count(model) == expected
    assert get_model_entry(name).params == expected


def test_tiny_count_matches_the_closed_form_sum():
    depths, dims = (3, 3, 9, 3), (96, 192, 384, 768)
    n = 3 * 16 * dims[0] + dims[0] + 2 * dims[0]  # stem conv 4×4 + LN
    n += sum(2 * dims[i] + 4 * dims[i] * dims[i + 1] + dims[i + 1] for i in range(3))
    n += sum(d * closed_form_block_params(c) for d, c in zip(depths, dims, strict=True))
    n += 2 * dims[-1] + dims[-1] * 1000 + 1000  # final LN + head
    assert n == COUNTS["convnextv2_tiny"]


def grn_loop(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-6):
    """Eq. 1–3 element by element on a channels-last (N, H, W, C) tensor."""
    n, h, w, c = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        g = [math.sqrt(sum(float(x[i, a, b, k]) ** 2 for a in range(h) for b in range(w)))
             for k in range(c)]
        mean_g = sum(g) / c
        for k in range(c):
            nk = g[k] / (mean_g + eps)
            out[i, :, :, k] = gamma[k] * (x[i, :, :, k] * nk) + beta[k] + x[i, :, :, k]
    return out


def test_grn_matches_the_closed_form():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    gamma = torch.randn(5, dtype=torch.float64)
    beta = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(global_response_norm(x, gamma, beta), grn_loop(x, gamma, beta))


def test_grn_starts_as_the_identity():
    # γ = β = 0 at init, so GRN(X) = X and a fresh block's GRN changes nothing.
    x = torch.randn(2, 3, 3, 8)
    torch.testing.assert_close(GRN(8)(x), x)


def test_grn_gradient_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(4, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(global_response_norm, (x, gamma, beta))


def test_layernorm2d_normalises_over_channels():
    torch.manual_seed(0)
    norm = LayerNorm2d(6)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 3, 4)
    expected = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight,
                                              norm.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)


def test_block_is_identity_when_its_last_linear_is_zero():
    block = ConvNeXtBlock(8).eval()
    nn.init.zeros_(block.pwconv2.weight)
    nn.init.zeros_(block.pwconv2.bias)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("name", SMOKE_NAMES)
def test_forward_backward_small_input(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, num_classes=5, image_size=32)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    out.square().sum().backward()
    grad = model.stem[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_single_channel_input_and_cifar_defaults():
    entry = get_model_entry("convnext_cifar")
    assert entry.image_size == 32
    model = build_model("convnext_cifar", in_channels=1, num_classes=10, image_size=32).eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    # 2×2 stem: the four stages see 16, 8, 4 and 2 pixels.
    assert model.stem[0].stride == (2, 2)


def test_drop_path_rates_rise_linearly_to_the_last_block():
    model = ConvNeXtV2((2, 2, 6, 2), (8, 16, 32, 64), drop_path_rate=0.2)
    rates = [b.drop_path.p for stage in model.stages for b in stage]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    assert rates == pytest.approx([0.2 * i / 11 for i in range(12)])


def test_eval_mode_ignores_drop_path():
    torch.manual_seed(0)
    model = ConvNeXtV2((1, 1, 1, 1), (8, 16, 32, 64), num_classes=3, drop_path_rate=0.5).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), model(x))


def test_image_size_must_be_a_multiple_of_the_total_stride():
    with pytest.raises(ConfigError, match=r"multiple of 32 .* got 48"):
        build_model("convnextv2_atto", in_channels=3, num_classes=10, image_size=48)
    with pytest.raises(ConfigError, match=r"multiple of 16 .* got 8"):
        build_model("convnext_cifar", in_channels=3, num_classes=10, image_size=8)
    model = create("convnext_cifar", num_classes=10).eval()
    with pytest.raises(ConfigError, match="H and W multiples of 16, got 40×40"):
        model(torch.randn(1, 3, 40, 40))


def test_wrong_channel_count_at_forward():
    model = create("convnext_cifar", num_classes=10).eval()
    with pytest.raises(ConfigError, match=r"expects images of shape \(N, 3, H, W\), got \(2, 1"):
        model(torch.randn(2, 1, 32, 32))


def test_bad_configuration():
    with pytest.raises(ConfigError, match=r"drop_path_rate in \[0, 1\), got 1\.5"):
        build_model("convnext_cifar", in_channels=3, num_classes=10, image_size=32,
                    drop_path_rate=1.5)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_sizes_match_timm(name):
    timm = pytest.importorskip("timm")
    # timm stores GRN's γ, β as (C,) and the official code as (1, 1, 1, C): compare sizes.
    ours = sorted(p.numel() for p in create(name).parameters())
    theirs = sorted(p.numel() for p in timm.create_model(name, pretrained=False).parameters())
    assert ours == theirs
