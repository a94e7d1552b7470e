"""Swin Transformer against its published size (torchvision swin_t, 28,288,354 parameters) and
shifted-window attention against brute-force Python loops: window partition by slicing, the
relative position index pair by pair, the attention mask from the un-shifted coordinates, and a
token-by-token softmax(q·k/√d + B)v over the neighbours each token may see."""

import math

import pytest
import torch

import foveal.models.swin  # noqa: F401  (registers the builders)
from foveal.errors import ConfigError
from foveal.models.registry import create, get_model_entry
from foveal.models.swin import (
    PatchMerging,
    ShiftedWindowAttention,
    SwinTransformer,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)


def test_parameter_count_matches_torchvision_swin_t():
    # torchvision Swin_T_Weights.IMAGENET1K_V1.meta["num_params"] = 28,288,354 (1000 classes).
    with torch.device("meta"):
        model = create("swin_t")
    n = sum(p.numel() for p in model.parameters())
    assert n == 28_288_354 == get_model_entry("swin_t").params


def test_window_partition_matches_slicing_and_reverse_inverts_it():
    x = torch.randn(2, 14, 21, 3)
    windows = window_partition(x, 7)
    assert windows.shape == (2, 6, 49, 3)
    for r in range(2):
        for c in range(3):
            expected = x[:, 7 * r:7 * r + 7, 7 * c:7 * c + 7].reshape(2, 49, 3)
            torch.testing.assert_close(windows[:, 3 * r + c], expected, rtol=0, atol=0)
    torch.testing.assert_close(window_reverse(windows, 14, 21), x, rtol=0, atol=0)
    torch.testing.assert_close(window_partition(window_reverse(windows, 14, 21), 7), windows,
                               rtol=0, atol=0)


def test_relative_position_index_pair_by_pair():
    m = 3
    index = relative_position_index(m)
    assert index.shape == (9, 9)
    for i in range(9):
        for j in range(9):
            dy, dx = i // m - j // m, i % m - j % m
            assert index[i, j] == (dy + m - 1) * (2 * m - 1) + (dx + m - 1)
    assert sorted(set(index.flatten().tolist())) == list(range((2 * m - 1) ** 2))


def _brute_force_mask(h: int, w: int, m: int, s: tuple[int, int]) -> torch.Tensor:
    """Tokens of a window of the rolled map may attend iff, mapped back to the un-rolled map,
    they are less than M apart along both axes (i.e. they did not wrap around apart)."""
    out = torch.zeros((h // m) * (w // m), m * m, m * m, dtype=torch.bool)
    for r in range(h // m):
        for c in range(w // m):
            cells = [(r * m + a, c * m + b) for a in range(m) for b in range(m)]
            orig = [((y + s[0]) % h, (x + s[1]) % w) for y, x in cells]
            for i, (yi, xi) in enumerate(orig):
                for j, (yj, xj) in enumerate(orig):
                    out[r * (w // m) + c, i, j] = abs(yi - yj) < m and abs(xi - xj) < m
    return out


@pytest.mark.parametrize(("h", "w", "m", "s"), [(14, 14, 7, (3, 3)), (12, 8, 4, (2, 2)),
                                                (8, 12, 4, (0, 2)), (9, 6, 3, (1, 1))])
def test_shifted_window_tokens_from_different_regions_never_attend(h, w, m, s):
    mask = shifted_window_mask(h, w, m, s)
    torch.testing.assert_close(mask, _brute_force_mask(h, w, m, s), rtol=0, atol=0)
    # Only the windows along the bottom and right borders mix regions.
    assert mask[0].all()
    if any(s):
        assert not mask[-1].all()


def _reference_window_attention(layer: ShiftedWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Token by token: softmax over the tokens that share its (shifted) window and were its
    neighbours before the shift, logits q·k/√d + B̂[Δy + M − 1, Δx + M − 1]."""
    _, h, w, c = x.shape
    m, s = layer.window_size, layer.shift
    heads = layer.attn.num_heads
    d = c // heads
    q, k, v = layer.attn.qkv(x).split(c, dim=-1)
    table = layer.relative_position_bias_table.view(2 * m - 1, 2 * m - 1, heads)
    out = torch.zeros_like(x)
    for y in range(h):
        for xx in range(w):
            # window of (y, xx) in the rolled frame, where the token sits at (y − s, xx − s)
            wy, wx = ((y - s) % h) // m, ((xx - s) % w) // m
            keys = [(ky, kx) for ky in range(h) for kx in range(w)
                    if ((ky - s) % h) // m == wy and ((kx - s) % w) // m == wx
                    and abs(ky - y) < m and abs(kx - xx) < m]
            for head in range(heads):
                sl = slice(head * d, (head + 1) * d)
                logits = torch.stack([
                    q[0, y, xx, sl] @ k[0, ky, kx, sl] / math.sqrt(d)
                    + table[y - ky + m - 1, xx - kx + m - 1, head] for ky, kx in keys])
                weights = torch.softmax(logits, 0)
                out[0, y, xx, sl] = sum(wt * v[0, ky, kx, sl]
                                        for wt, (ky, kx) in zip(weights, keys, strict=True))
    return layer.attn.proj(out)


@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_matches_token_by_token_reference(shift):
    torch.manual_seed(0)
    layer = ShiftedWindowAttention(8, 2, window_size=4, shift=shift).double().eval()
    torch.nn.init.normal_(layer.relative_position_bias_table, std=1.0)
    x = torch.randn(1, 8, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _reference_window_attention(layer, x))


def test_shifted_attention_output_ignores_tokens_that_wrapped_around():
    # The token at the original (0, 0) lands in the last window after the roll, next to tokens
    # from the far bottom-right; the gradient of its output must not reach them.
    torch.manual_seed(1)
    layer = ShiftedWindowAttention(8, 2, window_size=4, shift=2).eval()
    x = torch.randn(1, 8, 8, 8, requires_grad=True)
    layer(x)[0, 0, 0].sum().backward()
    reached = x.grad[0].abs().sum(-1) > 0
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:2, :2] = True  # its own region: rows 0-1, columns 0-1 of the original map
    torch.testing.assert_close(reached, expected, rtol=0, atol=0)


def test_patch_merging_concatenates_2x2_neighbourhoods():
    merge = PatchMerging(1)
    x = torch.arange(16.0).view(1, 4, 4, 1)
    merge.norm = torch.nn.Identity()
    with torch.no_grad():  # keep the first two of the four slots
        merge.reduction.weight.copy_(torch.eye(2, 4))
    # slots in the order (row, col) = (0,0), (1,0), (0,1), (1,1): pixels 0 and 4 come first
    torch.testing.assert_close(merge(x)[0, 0, 0], torch.tensor([0.0, 4.0]))
    assert merge(torch.randn(2, 5, 7, 1)).shape == (2, 3, 4, 2)  # odd sides are padded


def _smoke(model: torch.nn.Module, channels: int, size: int, classes: int) -> None:
    out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, classes)
    out.square().sum().backward()
    grad = model.patch_embed.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_swin_t_forward_backward_at_smallest_input():
    # 32 px: 8×8 tokens padded to two 7×7 windows per side, then 4, 2, 1 after the merges.
    torch.manual_seed(2)
    _smoke(create("swin_t", num_classes=5, image_size=32), 3, 32, 5)


def test_one_channel_input_and_sizes_not_multiple_of_the_window():
    torch.manual_seed(3)
    model = SwinTransformer(image_size=40, in_channels=1, num_classes=3, embed_dim=8,
                            depths=(2, 2), num_heads=(1, 2), window_size=3)
    _smoke(model, 1, 40, 3)


def test_mask_and_bias_follow_the_query_dtype_under_bf16_autocast():
    # The bias and −inf mask are float32 while autocast makes Q, K, V bfloat16.
    model = SwinTransformer(image_size=32, in_channels=3, num_classes=3, embed_dim=8,
                            depths=(2, 2), num_heads=(1, 2), window_size=3)
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert out.shape == (2, 3) and torch.isfinite(model.patch_embed.weight.grad).all()


@pytest.mark.parametrize("size", [30, 28, 16])
def test_image_size_must_be_a_patch_multiple_and_survive_the_merges(size):
    with pytest.raises(ConfigError, match=f"multiple of the patch size 4 and at least 32, got "
                                          f"{size}"):
        create("swin_t", image_size=size)


def test_wrong_channel_count_is_a_one_line_config_error():
    model = SwinTransformer(image_size=32, in_channels=3, num_classes=3, embed_dim=8,
                            depths=(1, 1), num_heads=(1, 1), window_size=2)
    with pytest.raises(ConfigError, match=r"swin expects images of shape \(N, 3, H, W\) with H, W "
                                          r"divisible by 4, got \(2, 1, 32, 32\)"):
        model(torch.randn(2, 1, 32, 32))


def test_stochastic_depth_default_and_linear_rule():
    model = SwinTransformer(image_size=32, in_channels=3, num_classes=3, embed_dim=8,
                            depths=(2, 3), num_heads=(1, 1), window_size=2, drop_path=0.2)
    rates = [b.drop_path.p for stage in model.stages if isinstance(stage, torch.nn.Sequential)
             for b in stage]
    assert rates == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])


def test_parameter_shapes_match_torchvision_swin_t():
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        ours = create("swin_t")
        theirs = tv.models.swin_t()
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape) for p in theirs.parameters())


@pytest.mark.slow
def test_swin_t_matches_torchvision_outputs_with_copied_weights():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(4)
    theirs = tv.models.swin_t().eval()
    ours = create("swin_t").eval()
    their_params = list(theirs.parameters())
    our_params = list(ours.parameters())
    assert [p.shape for p in our_params] == [p.shape for p in their_params]
    with torch.no_grad():
        for a, b in zip(our_params, their_params, strict=True):
            a.copy_(b)
    x = torch.randn(2, 3, 224, 224)
    # torchvision masks with −100 where we use −inf: equal to float32 precision.
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
