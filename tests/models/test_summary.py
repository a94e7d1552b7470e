"""Tests for foveal.models.summary.

Oracles: ``torch.utils.flop_counter.FlopCounterMode`` (PyTorch's own operator-level counter,
one multiply–accumulate = 2 FLOPs, biases and elementwise work not counted) for the
multiply–accumulates of conv, linear and attention layers; ``sum(p.numel())`` for parameters;
closed forms worked by hand for the elementwise FLOPs and the activation bytes.
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from foveal.errors import ConfigError
from foveal.models.registry import create
from foveal.models.summary import format_summary, layer_flops, summarize


def counter_flops(model: nn.Module, x: torch.Tensor) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def conv_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, stride=2, groups=4), nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=2, dilation=2), nn.MaxPool2d(2),
        nn.Conv2d(12, 12, 3, groups=12), nn.Conv2d(12, 16, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


@pytest.mark.parametrize("layer, input_size", [
    (nn.Conv2d(3, 8, 3), (3, 11, 9)),
    (nn.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=1, bias=False), (4, 12, 12)),
    (nn.Conv2d(6, 9, 3, groups=3, dilation=2), (6, 13, 13)),
    (nn.Conv2d(8, 8, 3, groups=8, padding="same"), (8, 7, 7)),
    (nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (4, 5, 6)),
    (nn.Conv1d(3, 5, 4, stride=2), (3, 17)),
    (nn.Conv3d(2, 4, 3), (2, 5, 6, 7)),
    (nn.Linear(7, 5), (4, 7)),
])
def test_layer_macs_match_flop_counter_mode(layer, input_size):
    s = summarize(layer, input_size, batch_size=3)
    assert 2 * s.total_macs == counter_flops(layer, torch.zeros(3, *input_size))
    (row,) = s.layers
    n_out = torch.Size(row.output_shape).numel()
    bias = n_out if layer.bias is not None else 0
    assert row.flops == 2 * row.macs + bias  # the bias adds one FLOP per output


@pytest.mark.parametrize("build, input_size", [
    (conv_net, (3, 20, 20)),
    (lambda: create("resnet9", num_classes=10, width=8), (3, 32, 32)),
    (lambda: create("small_cnn", num_classes=10), (3, 32, 32)),
    (lambda: create("mlp", num_classes=10, image_size=16, hidden=(32,)), (3, 16, 16)),
])
def test_model_macs_match_flop_counter_mode(build, input_size):
    torch.manual_seed(0)
    model = build()
    s = summarize(model, input_size, batch_size=2)
    assert 2 * s.total_macs == counter_flops(model, torch.zeros(2, *input_size))
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in s.layers) == s.total_params


class Attention(nn.Module):
    """Multi-head self-attention through F.scaled_dot_product_attention (ViT style)."""

    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(n, length, dim))


def test_scaled_dot_product_attention_calls_are_counted():
    model = Attention()
    s = summarize(model, (7, 16), batch_size=2)
    # FlopCounterMode has no formula for the CPU flash kernel; the math backend runs two bmm
    with sdpa_kernel(SDPBackend.MATH):
        assert 2 * s.total_macs == counter_flops(model, torch.zeros(2, 7, 16))
    (row,) = [r for r in s.layers if r.name == ""]  # the module calling sdpa gets a row
    b, lq, ls, e = 2 * 4, 7, 7, 4
    assert row.macs == b * lq * ls * (e + e)
    assert row.flops == 2 * row.macs + 4 * b * lq * ls


class WindowAttention(nn.Module):
    """Swin-style attention written with F.linear on the children's weights and ``@``."""

    def __init__(self, dim: int = 12, heads: int = 3) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.bias_table = nn.Parameter(torch.zeros(heads, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias)
        q, k, v = qkv.view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) + self.bias_table).softmax(-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(n, length, dim)
        return F.linear(y, self.proj.weight)


class StandardizedConv(nn.Module):
    """A conv whose weight it owns and applies with F.conv2d (weight standardization style)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 2, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True))
        return F.conv2d(x, w, stride=2, groups=2)


@pytest.mark.parametrize("model, input_size", [
    (WindowAttention(), (9, 12)), (StandardizedConv(), (4, 9, 9)),
])
def test_functional_matrix_products_in_a_forward_are_counted(model, input_size):
    s = summarize(model, input_size, batch_size=2)
    assert s.total_macs > 0
    assert 2 * s.total_macs == counter_flops(model, torch.zeros(2, *input_size))
    assert [r.name for r in s.layers] == [""]  # the module that calls them holds the row
    # the uncalled qkv and proj Linear modules' weights are on that row too
    assert s.layers[0].params == s.total_params == sum(p.numel() for p in model.parameters())
    assert s.uncounted == ()


class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(16, 4, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x)[0]


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_is_one_unit(batch_first):
    model = SelfAttention(batch_first)
    s = summarize(model, (5, 16), batch_size=2)  # batch_first=False reads (L=2, N=5)
    x = torch.zeros(2, 5, 16)
    with sdpa_kernel(SDPBackend.MATH):  # grad enabled as well: no fused fast path
        assert 2 * s.total_macs == counter_flops(model, x)
    assert [r.name for r in s.layers] == ["attention"]  # out_proj: no row of its own
    assert s.layers[0].params == s.total_params == sum(p.numel() for p in model.parameters())


def test_elementwise_flops_closed_forms():
    """Per-element counts of the module docstring, worked by hand on a 2×4×5×5 input."""
    model = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), nn.GroupNorm(2, 4), nn.GELU(),
                          nn.LayerNorm([5, 5], elementwise_affine=False),
                          nn.MaxPool2d(2, stride=1), nn.AvgPool2d(3, stride=2, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Softmax(1), nn.Dropout(), nn.Identity())
    s = summarize(model, (4, 5, 5), batch_size=2)
    n = 2 * 4 * 5 * 5
    flops = [r.flops for r in s.layers]
    assert flops == [2 * n, n, 7 * n, n, 5 * n,
                     2 * 4 * 4 * 4 * 4,  # 4×4 outputs, 2×2 windows
                     2 * 4 * 2 * 2 * 9,  # 2×2 outputs, 3×3 windows
                     2 * 4 * 2 * 2,  # one window over the whole 2×2 map
                     3 * 2 * 4, 0, 0]
    assert s.total_macs == 0 and s.total_flops == sum(flops)


def test_adaptive_pooling_counts_its_exact_overlapping_windows():
    # PyTorch's windows for 5 → 3: [0, 2), [1, 4), [3, 5): lengths 2 + 3 + 2 = 7 per axis
    pool = nn.AdaptiveMaxPool2d(3)
    macs, flops = layer_flops(pool, (torch.zeros(1, 2, 5, 5),), pool(torch.zeros(1, 2, 5, 5)))
    assert (macs, flops) == (0, 2 * 7 * 7)


def test_unknown_layer_types_are_listed_not_guessed():
    model = nn.Sequential(nn.Linear(4, 6), nn.Upsample(scale_factor=2))
    s = summarize(model, (2, 4))
    assert s.layers[1].flops is None and s.uncounted == ("Upsample",)
    assert s.total_flops == s.layers[0].flops
    assert "?" in format_summary(s) and "Upsample" in format_summary(s)


def test_leaves_returning_their_input_cost_nothing():
    from foveal.models.stochastic_depth import DropPath

    s = summarize(nn.Sequential(nn.Linear(4, 4), DropPath(0.5)), (4,))
    assert s.layers[1].flops == 0 and s.layers[1].inplace and s.uncounted == ()


def test_tuple_outputs_give_nested_shapes():
    lstm = nn.LSTM(6, 5, batch_first=True)
    s = summarize(lstm, (7, 6), batch_size=3)
    (row,) = s.layers
    assert row.output_shape == ((3, 7, 5), ((1, 3, 5), (1, 3, 5)))
    assert row.output_bytes == 4 * (3 * 7 * 5 + 2 * 3 * 5)
    assert row.params == sum(p.numel() for p in lstm.parameters())


def test_activation_bytes_leave_out_in_place_outputs():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(inplace=True), nn.Dropout(),
                          nn.Conv2d(3, 2, 1)).double()
    s = summarize(model, (1, 6, 6), batch_size=2)
    conv1, relu, dropout, conv2 = s.layers
    assert conv1.output_bytes == 8 * 2 * 3 * 4 * 4  # float64
    assert relu.inplace and dropout.inplace and not conv1.inplace  # eval dropout returns x
    assert s.activation_bytes == conv1.output_bytes + conv2.output_bytes


class TokenModel(nn.Module):
    """A module that owns a parameter directly (a class token) besides its children."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.embed = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), self.embed(x)], 1)
        return self.head(tokens[:, 0])


def test_modules_owning_parameters_directly_get_a_row():
    s = summarize(TokenModel(), (5, 4))
    assert [(r.name, r.params) for r in s.layers] == [("", 8), ("embed", 40), ("head", 27)]
    assert s.total_params == 75
    # the model returns head's output tensor: its bytes are counted once
    assert s.layers[0].inplace and s.activation_bytes == 4 * (5 * 8 + 3)


def test_shared_and_frozen_parameters_are_counted_once():
    shared = nn.Linear(6, 6)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(6, 2))
    model[3].weight.requires_grad_(False)
    s = summarize(model, (6,))
    assert [r.params for r in s.layers] == [42, 0, 0, 14]  # second call of `shared`: 0
    assert [r.name for r in s.layers][:3] == ["0", "1", "0"]
    assert s.total_params == 56 and s.trainable_params == 56 - 12
    assert s.layers[2].flops == s.layers[0].flops  # but its FLOPs count again


def test_summarize_restores_training_mode_and_leaves_weights_alone():
    model = conv_net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summarize(model, (3, 20, 20), batch_size=2)
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats not updated


def test_meta_device_model_gives_the_same_rows_as_cpu():
    torch.manual_seed(0)
    cpu = create("small_cnn", num_classes=10)
    with torch.device("meta"):
        meta = create("small_cnn", num_classes=10)
    assert summarize(meta, (3, 32, 32)) == summarize(cpu, (3, 32, 32))


def test_published_small_cnn_numbers():
    """LeNet-style CNN of the PyTorch CIFAR-10 tutorial: 62,006 parameters."""
    s = summarize(create("small_cnn", num_classes=10), (3, 32, 32))
    assert s.total_params == 62_006
    assert [r.output_shape for r in s.layers] == [(1, 6, 28, 28), (1, 16, 10, 10), (1, 120),
                                                  (1, 84), (1, 10)]
    # conv1: 6·28·28 outputs × 3·5·5 MACs each
    assert s.layers[0].macs == 6 * 28 * 28 * 75


@pytest.mark.parametrize("input_size, message", [
    ((3, 224), "expected an input size Sequential accepts, got (1, 3, 224)"),
    ((3, 0, 8), "expected input_size as positive integers (C, H, W), got (3, 0, 8)"),
    ((), "expected input_size as positive integers"),
    ((3, 2, 2), "expected an input size Sequential accepts"),  # too small for the kernels
])
def test_bad_input_size_is_one_line_config_error(input_size, message):
    with pytest.raises(ConfigError) as info:
        summarize(conv_net(), input_size)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_batch_size():
    with pytest.raises(ConfigError, match="expected batch_size >= 1, got 0"):
        summarize(conv_net(), (3, 8, 8), batch_size=0)


def test_format_summary_lists_rows_and_totals():
    text = format_summary(summarize(create("small_cnn", num_classes=10), (3, 32, 32)))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "FLOPs",
                                "activations"]
    assert any(line.startswith("conv1") and "1×6×28×28" in line and "456" in line
               for line in lines)
    assert "parameters       62,006 (62,006 trainable)" in text
    assert "1.31 MFLOPs" not in text and "FLOPs            1.31 M" in text


def test_torchvision_resnet18_matches_flop_counter_and_published_count():
    """torchvision resnet18: 11,689,512 parameters, "GFLOPS 1.81" (torchvision's weights table,
    multiply-accumulates at 224×224)."""
    tv = pytest.importorskip("torchvision")
    model = tv.models.resnet18()
    s = summarize(model, (3, 64, 64))
    assert s.total_params == 11_689_512
    assert 2 * s.total_macs == counter_flops(model, torch.zeros(1, 3, 64, 64))
    with torch.device("meta"):
        s = summarize(tv.models.resnet18(), (3, 224, 224))
    assert round(s.total_macs / 1e9, 2) == 1.81  # torchvision's ResNet18_Weights: GFLOPS 1.81


@pytest.mark.parametrize("pool, input_size, flops", [
    (nn.MaxPool1d(3), (4, 10), 4 * 3 * 3),  # unbatched (C, L): 4×3 outputs of 3-windows
    (nn.AvgPool3d(2), (1, 4, 4, 4), 2 * 2 * 2 * 8),
    (nn.AdaptiveAvgPool1d(2), (3, 5), 3 * 6),  # windows [0, 3), [2, 5)
])
def test_pooling_dimensions_come_from_the_layer_type(pool, input_size, flops):
    x = torch.zeros(input_size)
    assert layer_flops(pool, (x,), pool(x)) == (0, flops)


def test_transformer_encoder_blocks_match_flop_counter_mode():
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    s = summarize(model, (10, 32), batch_size=2)
    with sdpa_kernel(SDPBackend.MATH):
        assert 2 * s.total_macs == counter_flops(model, torch.zeros(2, 10, 32))
    assert s.total_params == sum(p.numel() for p in model.parameters())


class VGG16(nn.Module):
    """VGG-16 (configuration D) in torchvision's layout: 7×7 adaptive pool, 3 FC layers."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 1000))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_vgg16_on_the_meta_device_published_numbers():
    """torchvision's VGG16_Weights table: 138,357,544 parameters and "GFLOPS 15.47" at 224×224,
    which counts multiply-accumulates. Built on the meta device: no memory, no compute."""
    with torch.device("meta"):
        model = VGG16()
    s = summarize(model, (3, 224, 224))
    assert s.total_params == 138_357_544
    assert round(s.total_macs / 1e9, 2) == 15.47
    assert s.layers[0].output_shape == (1, 64, 224, 224)
    assert s.param_bytes == 4 * 138_357_544
