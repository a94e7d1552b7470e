"""Vision Transformer against published parameter counts (Dosovitskiy et al. 2021, Table 1;
torchvision vit_b_16; timm vit_tiny/small_patch16_224) and multi-head attention against the
explicit formula softmax(QKᵀ/√d_head)V written out with matrix products and against
torch.nn.MultiheadAttention."""

import math

import pytest
import torch
from torch.nn import functional as F

import foveal.models.vit  # noqa: F401  (registers the builders)
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry
from foveal.models.vit import MultiHeadSelfAttention, VisionTransformer

# Published counts (1000 classes, 3×224×224). vit_b_16: torchvision's Weights meta "num_params"
# (86,567,656). vit_ti_16 / vit_s_16: timm vit_tiny_patch16_224 (5,717,416) and
# vit_small_patch16_224 (22,050,664), the DeiT-Ti/S layout; the same layout as ViT-B, so the
# count follows from D, depth and D_mlp: 3·256·D + D (patch conv) + 197·D + D (tokens)
# + depth·(4D² + 4D + 2·D·D_mlp + D_mlp + D + 4D) + 2D (final LN) + 1000·D + 1000 (head).
PUBLISHED = {"vit_ti_16": 5_717_416, "vit_s_16": 22_050_664, "vit_b_16": 86_567_656}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _closed_form(d: int, depth: int, d_mlp: int) -> int:
    per_block = 4 * d * d + 4 * d + 2 * d * d_mlp + d_mlp + d + 4 * d
    return 3 * 256 * d + d + 197 * d + d + depth * per_block + 2 * d + 1000 * d + 1000


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_published(name):
    with torch.device("meta"):
        model = create(name)
    assert _count(model) == PUBLISHED[name] == get_model_entry(name).params


def test_published_counts_follow_from_the_configuration_table():
    assert _closed_form(192, 12, 768) == PUBLISHED["vit_ti_16"]
    assert _closed_form(384, 12, 1536) == PUBLISHED["vit_s_16"]
    assert _closed_form(768, 12, 3072) == PUBLISHED["vit_b_16"]


def _explicit_attention(m: MultiHeadSelfAttention, x: torch.Tensor, scale_dim: int):
    """softmax(Q Kᵀ / √scale_dim) V per head, heads concatenated, then W_O."""
    dim = x.shape[-1]
    h, d = m.num_heads, m.head_dim
    w_q, w_k, w_v = m.qkv.weight.split(dim)
    b_q, b_k, b_v = m.qkv.bias.split(dim)
    heads = []
    for i in range(h):
        rows = slice(i * d, (i + 1) * d)
        q = x @ w_q[rows].T + b_q[rows]
        k = x @ w_k[rows].T + b_k[rows]
        v = x @ w_v[rows].T + b_v[rows]
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(scale_dim), dim=-1)
        heads.append(a @ v)
    return torch.cat(heads, dim=-1) @ m.proj.weight.T + m.proj.bias


def test_attention_matches_explicit_softmax_formula():
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(12, 3).eval()
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(m(x), _explicit_attention(m, x, m.head_dim))


def test_attention_scales_by_sqrt_head_dim_not_model_dim():
    torch.manual_seed(1)
    m = MultiHeadSelfAttention(64, 8).double().eval()
    for p in m.parameters():  # large logits make the scale matter
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(1, 6, 64, dtype=torch.float64)
    y = m(x)
    torch.testing.assert_close(y, _explicit_attention(m, x, 8))
    assert not torch.allclose(y, _explicit_attention(m, x, 64), atol=1e-3)


def test_attention_matches_torch_multihead_attention():
    # nn.MultiheadAttention packs [W_Q; W_K; W_V] in in_proj_weight as our qkv layer does.
    torch.manual_seed(5)
    ours = MultiHeadSelfAttention(16, 4).eval()
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.qkv.weight)
        theirs.in_proj_bias.copy_(ours.qkv.bias)
        theirs.out_proj.weight.copy_(ours.proj.weight)
        theirs.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(3, 7, 16)
    torch.testing.assert_close(ours(x), theirs(x, x, x, need_weights=False)[0])


def test_attention_bias_is_added_to_the_logits():
    torch.manual_seed(2)
    m = MultiHeadSelfAttention(8, 2).eval()
    x = torch.randn(1, 4, 8)
    forbid = torch.zeros(4, 4).masked_fill(~torch.eye(4, dtype=torch.bool), float("-inf"))
    # Each token attends only to itself: the output is W_O(V) token by token.
    v = F.linear(x, m.qkv.weight[16:], m.qkv.bias[16:])
    torch.testing.assert_close(m(x, forbid), m.proj(v))


def test_class_token_and_position_embedding_shapes():
    m = create("vit_cifar", num_classes=10)
    assert m.class_token.shape == (1, 1, 192)
    assert m.pos_embed.shape == (1, 8 * 8 + 1, 192)


def test_stochastic_depth_rises_linearly_to_the_last_block():
    m = create("vit_cifar", drop_path=0.3)
    rates = [b.drop_path.p for b in m.blocks]
    assert rates == pytest.approx([0.0, 0.06, 0.12, 0.18, 0.24, 0.3])


def _smoke(model: torch.nn.Module, channels: int, size: int, classes: int) -> None:
    x = torch.randn(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, classes)
    out.square().sum().backward()
    grad = model.patch_embed.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["vit_cifar", "vit_ti_16", "vit_s_16",
                                  pytest.param("vit_b_16", marks=pytest.mark.slow)])
def test_forward_backward_smallest_input(name):
    # 32 px gives 2×2 patches of 16 px for the ImageNet configurations.
    torch.manual_seed(3)
    _smoke(create(name, num_classes=7, image_size=32), 3, 32, 7)


def test_one_channel_input():
    _smoke(create("vit_cifar", num_classes=10, in_channels=1, depth=2), 1, 32, 10)


def test_eval_is_deterministic_with_dropout_and_drop_path():
    m = create("vit_cifar", dropout=0.1, attention_dropout=0.1, drop_path=0.2, depth=2).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(m(x), m(x))


@pytest.mark.parametrize("size", [30, 225, 8])
def test_image_size_not_divisible_by_patch_is_rejected_at_build(size):
    patch = 16 if size != 30 else 4
    name = "vit_b_16" if patch == 16 else "vit_cifar"
    with pytest.raises(ConfigError, match=f"divisible by the patch size {patch}, got {size}"):
        create(name, image_size=size)


def test_heads_must_divide_width():
    with pytest.raises(ConfigError, match="divides the width 100, got 3"):
        create("vit_cifar", embed_dim=100, num_heads=3)


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 64, 64), (3, 32, 32)])
def test_wrong_input_shape_is_a_one_line_config_error(shape):
    m = create("vit_cifar", depth=1)
    with pytest.raises(ConfigError, match=r"vit expects images of shape \(N, 3, 32, 32\), got"):
        m(torch.randn(*shape))


def test_model_class_is_exported():
    assert isinstance(create("vit_cifar", depth=1), VisionTransformer)


def test_parameter_shapes_match_torchvision_vit_b_16():
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours = create("vit_b_16")
        theirs = tv.models.vit_b_16()
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape) for p in theirs.parameters())


@pytest.mark.parametrize(("name", "timm_name"), [("vit_ti_16", "vit_tiny_patch16_224"),
                                                 ("vit_s_16", "vit_small_patch16_224")])
def test_parameter_shapes_match_timm(name, timm_name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ours = create(name)
    theirs = timm.create_model(timm_name, pretrained=False)
    assert _count(theirs) == PUBLISHED[name]
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape) for p in theirs.parameters())


@pytest.mark.slow
def test_vit_b_16_matches_torchvision_outputs_with_copied_weights():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(4)
    theirs = tv.models.vit_b_16().eval()
    ours = create("vit_b_16").eval()
    pairs = [(ours.class_token, theirs.class_token),
             (ours.pos_embed, theirs.encoder.pos_embedding),
             (ours.patch_embed.weight, theirs.conv_proj.weight),
             (ours.patch_embed.bias, theirs.conv_proj.bias),
             (ours.norm.weight, theirs.encoder.ln.weight), (ours.norm.bias, theirs.encoder.ln.bias),
             (ours.head.weight, theirs.heads.head.weight), (ours.head.bias, theirs.heads.head.bias)]
    for block, layer in zip(ours.blocks, theirs.encoder.layers, strict=True):
        pairs += [(block.attn.qkv.weight, layer.self_attention.in_proj_weight),
                  (block.attn.qkv.bias, layer.self_attention.in_proj_bias),
                  (block.attn.proj.weight, layer.self_attention.out_proj.weight),
                  (block.attn.proj.bias, layer.self_attention.out_proj.bias)]
        for a, b in [(block.norm1, layer.ln_1), (block.norm2, layer.ln_2),
                     (block.mlp[0], layer.mlp[0]), (block.mlp[3], layer.mlp[3])]:
            pairs += [(a.weight, b.weight), (a.bias, b.bias)]
    assert len(pairs) == len(list(ours.parameters())) == len(list(theirs.parameters()))
    with torch.no_grad():
        for a, b in pairs:
            a.copy_(b)
        torch.nn.init.normal_(ours.head.weight, std=0.02)  # torchvision zero-initialises it
        theirs.heads.head.weight.copy_(ours.head.weight)
    x = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
