"""MLP-Mixer against its published sizes (Tolstikhin et al. 2021, Table 1; timm mixer_s16_224 and
mixer_b16_224) and the Mixer block against eq. 1 written out with explicit matrix products."""

import pytest
import torch
from torch.nn import functional as F

import foveal.models.mlp_mixer  # noqa: F401  (registers the builders)
from foveal.errors import ConfigError
from foveal.models.mlp_mixer import MixerBlock, MLPMixer
from foveal.models.registry import create, get_model_entry

# timm mixer_s16_224: 18,528,264; mixer_b16_224: 59,880,472 (1000 classes, 3×224×224). With
# T = 196 tokens the count is 3·256·D + D (stem) + blocks·(4D + 2·T·D_S + D_S + T
# + 2·D·D_C + D_C + D) + 2D (final LN) + 1000·D + 1000 (head).
PUBLISHED = {"mixer_s16": 18_528_264, "mixer_b16": 59_880_472}


def _closed_form(d: int, blocks: int, d_s: int, d_c: int, t: int = 196) -> int:
    per_block = 4 * d + 2 * t * d_s + d_s + t + 2 * d * d_c + d_c + d
    return 3 * 256 * d + d + blocks * per_block + 2 * d + 1000 * d + 1000


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_published(name):
    with torch.device("meta"):
        model = create(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]
    assert get_model_entry(name).params == PUBLISHED[name]


def test_published_counts_follow_from_the_configuration_table():
    assert _closed_form(512, 8, 256, 2048) == PUBLISHED["mixer_s16"]
    assert _closed_form(768, 12, 384, 3072) == PUBLISHED["mixer_b16"]


def test_mixer_block_matches_equation_1():
    torch.manual_seed(0)
    t, d = 5, 6  # T ≠ D, so a transposition mistake cannot go unnoticed
    block = MixerBlock(t, d, tokens_hidden=3, channels_hidden=8).double().eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, t, d, dtype=torch.float64)
    tok1, tok2 = block.token_mlp[0], block.token_mlp[3]
    ch1, ch2 = block.channel_mlp[0], block.channel_mlp[3]
    # U[:, i] = X[:, i] + W₂ σ(W₁ LN(X)[:, i]) for each channel column i (an MLP over tokens)
    ln1 = F.layer_norm(x, (d,), block.norm1.weight, block.norm1.bias, eps=1e-6)
    hidden = F.gelu(torch.einsum("st,ntd->nsd", tok1.weight, ln1) + tok1.bias[:, None])
    u = x + torch.einsum("ts,nsd->ntd", tok2.weight, hidden) + tok2.bias[:, None]
    ln2 = F.layer_norm(u, (d,), block.norm2.weight, block.norm2.bias, eps=1e-6)
    y = u + F.gelu(ln2 @ ch1.weight.T + ch1.bias) @ ch2.weight.T + ch2.bias
    torch.testing.assert_close(block(x), y)


def test_token_mixing_mlp_is_shared_across_channels():
    block = MixerBlock(4, 6, tokens_hidden=2, channels_hidden=3)
    assert block.token_mlp[0].weight.shape == (2, 4)  # acts on the token axis
    assert block.channel_mlp[0].weight.shape == (3, 6)


def _smoke(model: torch.nn.Module, channels: int, size: int, classes: int) -> None:
    out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, classes)
    out.square().sum().backward()
    grad = model.stem.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["mixer_cifar", "mixer_s16",
                                  pytest.param("mixer_b16", marks=pytest.mark.slow)])
def test_forward_backward_smallest_input(name):
    # 32 px gives 2×2 patches of 16 px for the ImageNet configurations.
    torch.manual_seed(1)
    _smoke(create(name, num_classes=7, image_size=32), 3, 32, 7)


def test_one_channel_input():
    _smoke(create("mixer_cifar", num_classes=10, in_channels=1, depth=2), 1, 32, 10)


def test_stochastic_depth_rises_linearly_to_the_last_block():
    model = create("mixer_cifar", drop_path=0.35)
    assert [b.drop_path.p for b in model.blocks] == pytest.approx(
        [0.05 * i for i in range(8)])


@pytest.mark.parametrize(("name", "size", "patch"), [("mixer_s16", 200, 16),
                                                     ("mixer_cifar", 30, 4),
                                                     ("mixer_b16", 8, 16)])
def test_image_size_not_divisible_by_patch_is_rejected_at_build(name, size, patch):
    with pytest.raises(ConfigError, match=f"divisible by the patch size {patch}, got {size}"):
        create(name, image_size=size)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 28, 28)])
def test_wrong_input_shape_is_a_one_line_config_error(shape):
    model = create("mixer_cifar", depth=1)
    assert isinstance(model, MLPMixer)
    with pytest.raises(ConfigError,
                       match=r"mlp_mixer expects images of shape \(N, 3, 32, 32\), got"):
        model(torch.randn(*shape))


@pytest.mark.parametrize(("name", "timm_name"), [("mixer_s16", "mixer_s16_224"),
                                                 ("mixer_b16", "mixer_b16_224")])
def test_parameter_shapes_match_timm(name, timm_name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ours = create(name)
    theirs = timm.create_model(timm_name, pretrained=False)
    assert sum(p.numel() for p in theirs.parameters()) == PUBLISHED[name]
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape) for p in theirs.parameters())
