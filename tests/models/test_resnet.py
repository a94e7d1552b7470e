"""ResNet, ResNeXt, SE-ResNet, pre-activation and CIFAR ResNets.

Oracles: published parameter counts (torchvision's model table and the papers, sources next to
each number), closed forms for the shortcut and the identity-at-init blocks, torch autograd for
gradients reaching the stem, and torchvision's models where it can be imported.
"""

import pytest
import torch
from torch import nn

import foveal.models.resnet  # noqa: F401  (registers the builders)
from foveal.errors import ConfigError
from foveal.models.registry import build_model, create, get_model_entry
from foveal.models.resnet import (
    BasicBlock,
    Bottleneck,
    PadShortcut,
    PreActBasicBlock,
    PreActBottleneck,
    PreActResNet,
    ResNet,
)

# Published counts for 1000 classes and 3 input channels.
IMAGENET_COUNTS = {
    "resnet18": 11_689_512,  # torchvision resnet18 (He et al. 2016, Table 1: 1.8 GFLOPs, 11.7M)
    "resnet34": 21_797_672,  # torchvision resnet34
    "resnet50": 25_557_032,  # torchvision resnet50
    "resnet101": 44_549_160,  # torchvision resnet101
    "resnet152": 60_192_808,  # torchvision resnet152
    "resnext50_32x4d": 25_028_904,  # torchvision resnext50_32x4d (Xie et al. 2017: 25.0M)
    # Hu et al. 2018 report 28.1M; exact count of the authors' model as ported by Cadene's
    # pretrainedmodels (se_resnet50) and osmr's imgclsmob (seresnet50): 28,088,024.
    "se_resnet50": 28_088_024,
    # No published integer count: derived from the authors' ImageNet code (fb.resnet.torch,
    # models/preresnet.lua): resnet18 − 3 projection BNs (1,792) − first-block BN (128)
    # − (BN(C) − BN(C/2)) at 3 stage entries (896) + final BN(512) (1,024).
    "preact_resnet18": 11_687_720,
    # Likewise from resnet50: − 4 projection BNs (7,680); each block's input BN(C_in) replaces
    # its BN(4w): − 512 at the first block (no input BN) and − 3,584 at the 3 stage entries;
    # + final BN(2048) (4,096). Close to the 25.5M timm lists for its resnetv2_50.
    "preact_resnet50": 25_549_352,
}

# CIFAR ResNets with 10 classes (He et al. 2016, Table 6: 0.27M and 0.85M parameters), option-A
# shortcuts as the paper; akamaster/pytorch_resnet_cifar10 lists the same exact counts.
CIFAR_COUNTS = {"resnet20": 269_722, "resnet56": 853_018}
# Option B adds the two projections 16→32 and 32→64 with their BNs: 512 + 64 + 2048 + 128.
OPTION_B_EXTRA = 2_752

ALL_NAMES = sorted(IMAGENET_COUNTS) + sorted(CIFAR_COUNTS)
# The default run smoke-tests resnet18, resnet50, preact_resnet18 and the CIFAR nets by name, and
# the grouped, SE and pre-activation bottlenecks in one-block-per-stage nets
# (test_bottleneck_variants_forward_backward); the other big nets by name only with -m slow.
DEEP_NAMES = {"resnet34", "resnet101", "resnet152", "resnext50_32x4d", "se_resnet50",
              "preact_resnet50"}
SMOKE_NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in DEEP_NAMES else n
               for n in ALL_NAMES]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return count(create(name, **kwargs))


@pytest.mark.parametrize(("name", "expected"), sorted(IMAGENET_COUNTS.items()))
def test_imagenet_parameter_count_is_exact(name, expected):
    assert meta_count(name) == expected
    assert get_model_entry(name).params == expected


@pytest.mark.parametrize(("name", "expected"), sorted(CIFAR_COUNTS.items()))
def test_cifar_parameter_count_is_exact(name, expected):
    assert meta_count(name, num_classes=10) == expected
    assert get_model_entry(name).params == expected
    assert meta_count(name, num_classes=10, shortcut="B") == expected + OPTION_B_EXTRA


def first_conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", SMOKE_NAMES)
def test_forward_backward_small_input(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=3, num_classes=5, image_size=32)
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 5)
    out.square().sum().backward()
    grad = first_conv(model).weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs", [{"groups": 32, "width_per_group": 4}, {"se_reduction": 16}])
def test_bottleneck_variants_forward_backward(kwargs):
    model = ResNet(Bottleneck, (1, 1, 1, 1), num_classes=4, **kwargs)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert torch.isfinite(model.stem[0].weight.grad).all()
    pre = PreActResNet(PreActBottleneck, (1, 1, 1, 1), num_classes=4)
    assert pre(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "resnet20"])
def test_single_channel_input(name):
    model = build_model(name, in_channels=1, num_classes=3, image_size=32).eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_default_sizes_follow_the_registry():
    assert get_model_entry("resnet50").image_size == 224
    assert get_model_entry("resnet20").image_size == 32
    # create() uses the builder's defaults: 10 classes for the CIFAR nets, 1000 for ImageNet.
    assert create("resnet20").fc.out_features == 10
    assert meta_count("resnet20") == CIFAR_COUNTS["resnet20"]


@pytest.mark.parametrize(("name", "blocks"), [("resnet18", 8), ("resnet50", 16),
                                              ("resnet20", 9)])
def test_zero_init_residual_zeroes_last_bn_gamma_of_every_block(name, blocks):
    model = build_model(name, in_channels=3, num_classes=10, image_size=32,
                        zero_init_residual=True)
    found = [m for m in model.modules() if isinstance(m, BasicBlock | Bottleneck)]
    assert len(found) == blocks
    for block in found:
        assert torch.count_nonzero(block.last_bn.weight) == 0
        # Only the last BN: the others keep γ = 1.
        assert torch.all(block.bn1.weight == 1)
    plain = build_model(name, in_channels=3, num_classes=10, image_size=32)
    assert all(torch.all(b.last_bn.weight == 1) for b in plain.modules()
               if isinstance(b, BasicBlock | Bottleneck))


def test_zero_init_residual_makes_identity_blocks_relu_of_input():
    # γ = β = 0 on the last BN: the branch outputs 0, so y = ReLU(x + 0).
    model = build_model("resnet50", in_channels=3, num_classes=10, image_size=32,
                        zero_init_residual=True).eval()
    block = model.layer1[1]
    assert block.shortcut is None
    x = torch.randn(2, 256, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x))


def meta_model(name: str) -> nn.Module:
    with torch.device("meta"):
        return create(name, num_classes=10)


def test_resnet50_is_v1_5_stride_on_3x3():
    model = meta_model("resnet50")
    block = model.layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    assert block.shortcut[0].stride == (2, 2)


def test_resnext_uses_grouped_3x3_with_32_groups_of_4():
    model = meta_model("resnext50_32x4d")
    conv = model.layer1[0].conv2
    assert conv.groups == 32 and conv.in_channels == 128 and conv.out_channels == 128
    assert model.layer4[0].conv2.out_channels == 32 * 4 * 8


def test_se_resnet_squeezes_by_16_before_the_addition():
    model = meta_model("se_resnet50")
    se = model.layer3[0].se
    assert se.fc1.in_channels == 1024 and se.fc1.out_channels == 64


def test_option_a_shortcut_is_subsample_and_zero_pad():
    sc = PadShortcut(16, 32, 2)
    x = torch.randn(2, 16, 7, 7)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    assert count(sc) == 0


def test_cifar_resnet_feature_maps_are_32_16_8():
    model = create("resnet20", num_classes=10)
    x = model.layer1(model.stem(torch.randn(1, 3, 32, 32)))
    assert x.shape[-1] == 32
    x = model.layer2(x)
    assert x.shape[-1] == 16
    assert model.layer3(x).shape[1:] == (64, 8, 8)


@pytest.mark.parametrize("block_type", [PreActBasicBlock, PreActBottleneck])
def test_preact_block_adds_no_activation_after_the_sum(block_type):
    # Pre-activation keeps x_{l+1} = x_l + F(x_l): with F ≡ 0, negative inputs pass unchanged,
    # where the original block would clip them with its final ReLU.
    c = 8 * block_type.expansion
    block = block_type(c, 8).eval()
    last = block.conv3 if block_type is PreActBottleneck else block.conv2
    nn.init.zeros_(last.weight)
    x = -torch.rand(2, c, 5, 5)
    torch.testing.assert_close(block(x), x)


def test_preact_resnet_first_block_skips_the_input_bn():
    model = meta_model("preact_resnet50")
    assert model.layer1[0].bn0 is None  # the stem already ends in BN-ReLU
    assert model.layer1[1].bn0 is not None and model.layer2[0].bn0 is not None
    # Projection shortcuts are a bare 1×1 convolution.
    assert isinstance(model.layer2[0].shortcut, nn.Conv2d)


def test_wrong_channel_count_at_forward():
    model = create("resnet18", num_classes=10).eval()
    with pytest.raises(ConfigError, match=r"expects images of shape \(N, 3, H, W\), got \(2, 1"):
        model(torch.randn(2, 1, 32, 32))


def test_image_too_small_for_the_downsampling():
    with pytest.raises(ConfigError, match="resnet50 needs images of at least 32×32"):
        build_model("resnet50", in_channels=3, num_classes=10, image_size=16)
    model = create("resnet18", num_classes=10).eval()
    with pytest.raises(ConfigError, match="at least 32×32, got 16×16"):
        model(torch.randn(1, 3, 16, 16))


def test_unknown_shortcut_option():
    with pytest.raises(ConfigError, match="shortcut must be 'A' or 'B', got 'C'"):
        build_model("resnet20", in_channels=3, num_classes=10, image_size=32, shortcut="C")


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                  "resnext50_32x4d"])
def test_parameter_shapes_match_torchvision(name):
    models = pytest.importorskip("torchvision.models")
    ours = sorted(tuple(p.shape) for p in create(name).parameters())
    theirs = sorted(tuple(p.shape) for p in getattr(models, name)(weights=None).parameters())
    assert ours == theirs


def resnet18_cifar_closed_form(num_classes: int, in_channels: int = 3) -> int:
    """Parameters of ResNet-18 with the 3×3 CIFAR stem, summed layer by layer: a k×k conv
    C → C' has k²CC' weights, a BN 2C' (γ, β), the linear 512K + K."""
    total = 9 * in_channels * 64 + 2 * 64  # stem conv 3×3 + BN
    c_in = 64
    for i, width in enumerate((64, 128, 256, 512)):
        for j in range(2):
            total += 9 * c_in * width + 2 * width + 9 * width * width + 2 * width
            if i > 0 and j == 0:  # projection shortcut: conv 1×1/2 + BN
                total += c_in * width + 2 * width
            c_in = width
    return total + 512 * num_classes + num_classes


def test_resnet18_cifar_parameter_count_is_closed_form():
    # 11,173,962 for 10 classes: the count of kuangliu/pytorch-cifar's ResNet18, i.e. the
    # ImageNet resnet18 (11,689,512) − (7·7 − 3·3)·3·64 stem weights − 990·513 head parameters.
    expected = resnet18_cifar_closed_form(10)
    assert expected == 11_173_962 == IMAGENET_COUNTS["resnet18"] - 40 * 3 * 64 - 990 * 513
    assert meta_count("resnet18_cifar") == expected
    assert get_model_entry("resnet18_cifar").params == expected
    assert meta_count("resnet18_cifar", num_classes=100, in_channels=1) == (
        resnet18_cifar_closed_form(100, in_channels=1))


def test_resnet18_cifar_stem_keeps_32x32_and_stages_halve_to_4x4():
    model = create("resnet18_cifar").eval()
    stem = model.stem[0]
    assert (stem.kernel_size, stem.stride) == ((3, 3), (1, 1))
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    sizes = []
    x = model.stem(torch.randn(1, 3, 32, 32))
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]


def test_resnet18_cifar_forward_backward_and_single_channel():
    torch.manual_seed(0)
    model = build_model("resnet18_cifar", in_channels=1, num_classes=5, image_size=8)
    out = model(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 5)
    out.square().sum().backward()
    grad = model.stem[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_resnet18_cifar_too_small_and_wrong_channels():
    with pytest.raises(ConfigError, match="resnet18_cifar needs images of at least 8×8"):
        build_model("resnet18_cifar", in_channels=3, num_classes=10, image_size=4)
    model = create("resnet18_cifar").eval()
    with pytest.raises(ConfigError, match="at least 8×8, got 4×4"):
        model(torch.randn(1, 3, 4, 4))
    with pytest.raises(ConfigError, match=r"\(N, 3, H, W\), got \(1, 1, 32, 32\)"):
        model(torch.randn(1, 1, 32, 32))


def test_unknown_resnet_stem():
    with pytest.raises(ConfigError, match="stem must be 'imagenet' or 'cifar', got 'tiny'"):
        ResNet(BasicBlock, (2, 2, 2, 2), stem="tiny")
