"""Residual networks: ResNet, pre-activation ResNet, ResNeXt, SE-ResNet and the CIFAR ResNets.

A residual block computes ``y = σ(x + F(x))`` (original, "post-activation") or ``y = x + F(x)``
(pre-activation), with ``F`` two 3×3 convolutions (basic block) or 1×1 → 3×3 → 1×1
convolutions (bottleneck). When the block changes width or resolution, the shortcut is a
projection: a strided 1×1 convolution (followed by BN in the original network).

ImageNet layout (He et al. 2016, Table 1); every stage halves the resolution except ``layer1``::

    stem    conv 7×7/2 → 64, BN, ReLU, max-pool 3×3/2                       224 → 56
    layer1  blocks of width 64,  stride 1                                    56
    layer2  blocks of width 128, first block stride 2                        28
    layer3  blocks of width 256, first block stride 2                        14
    layer4  blocks of width 512, first block stride 2                         7
    head    global average pool → linear 512·e → classes   (e = 1 basic, 4 bottleneck)

    resnet18 [2, 2, 2, 2] basic    resnet50  [3, 4, 6, 3]  bottleneck
    resnet34 [3, 4, 6, 3] basic    resnet101 [3, 4, 23, 3] bottleneck
                                   resnet152 [3, 8, 36, 3] bottleneck

Conventions, as torchvision (whose parameter counts the registry quotes):

- "ResNet v1.5": a downsampling bottleneck puts its stride on the 3×3 convolution, not on the
  first 1×1 as the original Caffe model did. The parameter count is the same; accuracy is
  ~0.5 % higher and the cost slightly higher.
- Convolutions have no bias (BN supplies it); the projection shortcut is conv 1×1/s → BN
  ("option B": projections only where the shape changes).
- ``zero_init_residual`` sets γ of the last BN of every residual branch to 0, so each block
  starts as the identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1).

Variants:

- ResNeXt (Xie et al. 2017): the bottleneck's 3×3 convolution is grouped with cardinality
  ``groups``; the bottleneck width is ``⌊w · width_per_group / 64⌋ · groups``
  (resnext50_32x4d: 32 groups of 4 channels at ``layer1``).
- SE-ResNet (Hu et al. 2018): squeeze-and-excitation with ``C_s = C / 16`` rescales the branch
  output (after its last BN) before the addition.
- Pre-activation ResNet (He et al. 2016b, "Identity Mappings in Deep Residual Networks"):
  ``x_{l+1} = x_l + F(x_l)`` with ``F = conv(ReLU(BN(conv(ReLU(BN(x))))))`` (bottleneck: three
  BN-ReLU-conv units); nothing follows the addition, and a final BN-ReLU precedes the pool. As
  the authors' ImageNet code (facebook/fb.resnet.torch, models/preresnet.lua): the stem keeps its
  BN-ReLU, so the first block of ``layer1`` has no input BN; a projection shortcut (1×1 conv,
  no BN) reads the pre-activated input; identity shortcuts read ``x`` itself.
- ResNet-18 for 32×32 inputs (``resnet18_cifar``): the ImageNet stages and widths behind a
  3×3/1 conv → 64, BN, ReLU stem without max-pool, so ``layer1`` sees the full 32×32 and
  ``layer4`` 4×4. The widely used CIFAR variant (kuangliu/pytorch-cifar, ``models/resnet.py``);
  11,173,962 parameters for 10 classes.
- CIFAR ResNets (He et al. 2016, §4.2): a 3×3 conv → 16, three stages of ``n`` basic blocks of
  widths 16, 32, 64 (feature maps 32, 16, 8), global average pool, linear; depth ``6n + 2``.
  The paper uses identity shortcuts everywhere ("option A"): where the width doubles, the
  shortcut subsamples by 2 and pads the new channels with zeros, which has no parameters.

References: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016; "Identity Mappings in Deep Residual Networks", ECCV 2016; S. Xie et al., "Aggregated
Residual Transformations for Deep Neural Networks", CVPR 2017; J. Hu, L. Shen, G. Sun,
"Squeeze-and-Excitation Networks", CVPR 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from foveal.errors import ConfigError
from foveal.models.registry import register_model
from foveal.models.squeeze_excitation import SqueezeExcitation

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "PadShortcut", "PreActBasicBlock",
           "PreActBottleneck", "PreActResNet", "ResNet"]

# The ImageNet networks downsample by 32 (stem 4, three strided stages 8).
IMAGENET_MIN_SIZE = 32
# The CIFAR networks downsample by 4 (two strided stages).
CIFAR_MIN_SIZE = 4
# ResNet-18 with the CIFAR stem downsamples by 8 (three strided stages).
CIFAR_STEM_MIN_SIZE = 8


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3×3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups,
                     bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution, no bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """The option-B shortcut of the post-activation networks: conv 1×1/stride → BN."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class PadShortcut(nn.Module):
    """Option-A shortcut: ``x[:, :, ::s, ::s]`` with ``out − in`` zero channels appended.

    ``(N, C_in, H, W) → (N, C_out, ⌈H/s⌉, ⌈W/s⌉)``; parameter-free (He et al. 2016, §3.3, §4.2).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"option-A shortcut needs out_channels >= in_channels, "
                              f"got {in_channels} -> {out_channels}")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """``y = ReLU(BN(conv3×3(ReLU(BN(conv3×3/s(x))))) + shortcut(x))``, ``C_in → channels``.

    Args:
        in_channels: ``C_in``.
        channels: output width (``expansion = 1``).
        stride: stride of the first convolution.
        shortcut: module for the shortcut branch (None: identity).
        se_reduction: if given, squeeze-and-excitation with ``channels // se_reduction``.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: nn.Module | None = None, se_reduction: int | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SqueezeExcitation(channels, channels // se_reduction) if se_reduction else None
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose γ ``zero_init_residual`` zeroes."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """``y = ReLU(BN(conv1×1(ReLU(BN(conv3×3/s(ReLU(BN(conv1×1(x))))))) + shortcut(x))``.

    ``C_in → width → width → 4·channels`` with ``width = ⌊channels · width_per_group / 64⌋ ·
    groups``; the stride sits on the (grouped) 3×3 convolution ("v1.5").

    Args:
        in_channels: ``C_in``.
        channels: the stage width; the block outputs ``4 · channels``.
        stride: stride of the 3×3 convolution.
        shortcut: module for the shortcut branch (None: identity).
        groups: cardinality of the 3×3 convolution (ResNeXt).
        width_per_group: channels per group at ``channels = 64``.
        se_reduction: if given, squeeze-and-excitation with ``4·channels // se_reduction``.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: nn.Module | None = None, groups: int = 1, width_per_group: int = 64,
                 se_reduction: int | None = None) -> None:
        super().__init__()
        width = int(channels * width_per_group / 64) * groups
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = (SqueezeExcitation(out_channels, out_channels // se_reduction)
                   if se_reduction else None)
        self.shortcut = shortcut
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose γ ``zero_init_residual`` zeroes."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


def check_images(x: torch.Tensor, name: str, in_channels: int, min_size: int) -> None:
    """Raise ConfigError unless ``x`` is ``(N, in_channels, H, W)`` with ``H, W ≥ min_size``."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ConfigError(f"{name} expects images of shape (N, {in_channels}, H, W), "
                          f"got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ConfigError(f"{name} needs images of at least {min_size}×{min_size}, "
                          f"got {x.shape[-2]}×{x.shape[-1]}")


def check_image_size(name: str, image_size: int, min_size: int) -> None:
    """Raise ConfigError if ``image_size`` is below what the network's downsampling needs."""
    if image_size < min_size:
        raise ConfigError(f"{name} needs images of at least {min_size}×{min_size}, "
                          f"got image_size={image_size}")


def init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    """He-normal (fan-out) convolutions, BN ``γ = 1, β = 0``; optionally ``γ = 0`` on the last
    BN of every residual branch so each block starts as the identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        from foveal.models.init import zero_init_last_bn

        zero_init_last_bn(model)


class ResNet(nn.Module):
    """The ImageNet ResNet (and ResNeXt, SE-ResNet): ``(N, C, H, W) → (N, num_classes)``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        in_channels: input channels.
        num_classes: output logits.
        groups, width_per_group: ResNeXt cardinality and group width (bottleneck only).
        se_reduction: squeeze-and-excitation reduction ratio (None: no SE).
        zero_init_residual: zero γ of the last BN in every residual branch.
        stem: ``"imagenet"`` (conv 7×7/2, BN, ReLU, max-pool 3×3/2: inputs ≥ 32) or ``"cifar"``
            (conv 3×3/1, BN, ReLU, no pooling: inputs ≥ 8).
        name: used in error messages.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: Sequence[int], *,
                 in_channels: int = 3, num_classes: int = 1000, groups: int = 1,
                 width_per_group: int = 64, se_reduction: int | None = None,
                 zero_init_residual: bool = False, stem: str = "imagenet",
                 name: str = "resnet") -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ConfigError(f"{name} expects 4 positive stage depths, got {list(layers)}")
        if stem not in ("imagenet", "cifar"):
            raise ConfigError(f"{name} stem must be 'imagenet' or 'cifar', got {stem!r}")
        if block is BasicBlock and (groups != 1 or width_per_group != 64):
            raise ConfigError(f"{name}: basic blocks support groups=1, width_per_group=64 only, "
                              f"got groups={groups}, width_per_group={width_per_group}")
        self.name = name
        self.in_channels = in_channels
        if stem == "imagenet":
            self.min_size = IMAGENET_MIN_SIZE
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        else:
            self.min_size = CIFAR_STEM_MIN_SIZE
            self.stem = nn.Sequential(conv3x3(in_channels, 64), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True))
        extra = ({} if block is BasicBlock
                 else {"groups": groups, "width_per_group": width_per_group})
        c_in = 64
        stages = []
        for i, (depth, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            stride = 1 if i == 0 else 2
            c_out = width * block.expansion
            blocks = []
            for j in range(depth):
                s = stride if j == 0 else 1
                shortcut = projection(c_in, c_out, s) if (s != 1 or c_in != c_out) else None
                blocks.append(block(c_in, width, s, shortcut, se_reduction=se_reduction,
                                    **extra))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_resnet(self, zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``H, W ≥ 32`` (``"cifar"`` stem: ≥ 8) → logits
        ``(N, num_classes)``."""
        check_images(x, self.name, self.in_channels, self.min_size)
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


class PreActBasicBlock(nn.Module):
    """``y = x + conv3×3(ReLU(BN(conv3×3/s(a))))`` with ``a = ReLU(BN(x))`` (or ``a = x`` when
    ``preact=False``: the input is already activated). A projection shortcut reads ``a``."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: nn.Module | None = None, preact: bool = True) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels) if preact else None
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.bn0 is None else self.relu(self.bn0(x))
        identity = x if self.shortcut is None else self.shortcut(a)
        out = self.conv2(self.relu(self.bn1(self.conv1(a))))
        return out + identity


class PreActBottleneck(nn.Module):
    """``y = x + conv1×1(ReLU(BN(conv3×3/s(ReLU(BN(conv1×1(a)))))))``, ``a = ReLU(BN(x))``
    (or ``x`` when ``preact=False``), ``C_in → channels → channels → 4·channels``."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: nn.Module | None = None, preact: bool = True) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels) if preact else None
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.shortcut = shortcut
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.bn0 is None else self.relu(self.bn0(x))
        identity = x if self.shortcut is None else self.shortcut(a)
        out = self.relu(self.bn1(self.conv1(a)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.conv3(out) + identity


class PreActResNet(nn.Module):
    """The ImageNet pre-activation ResNet of He et al. 2016b (fb.resnet.torch layout).

    ``stem (conv 7×7/2, BN, ReLU, max-pool) → 4 stages → BN → ReLU → pool → linear``; projection
    shortcuts are a bare 1×1 convolution. ``(N, C, H, W) → (N, num_classes)``.
    """

    def __init__(self, block: type[PreActBasicBlock | PreActBottleneck], layers: Sequence[int],
                 *, in_channels: int = 3, num_classes: int = 1000,
                 name: str = "preact_resnet") -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ConfigError(f"{name} expects 4 positive stage depths, got {list(layers)}")
        self.name = name
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        c_in = 64
        stages = []
        for i, (depth, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            stride = 1 if i == 0 else 2
            c_out = width * block.expansion
            blocks = []
            for j in range(depth):
                s = stride if j == 0 else 1
                shortcut = conv1x1(c_in, c_out, s) if (s != 1 or c_in != c_out) else None
                # The stem ends in BN-ReLU, so the very first block must not normalise again.
                blocks.append(block(c_in, width, s, shortcut, preact=(i, j) != (0, 0)))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.norm = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_resnet(self, zero_init_residual=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``H, W ≥ 32`` → logits ``(N, num_classes)``."""
        check_images(x, self.name, self.in_channels, IMAGENET_MIN_SIZE)
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        x = self.relu(self.norm(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. 2016, §4.2: depth ``6n + 2``, widths 16-32-64.

    Args:
        n: basic blocks per stage (3 → ResNet-20, 9 → ResNet-56).
        in_channels, num_classes: input channels and output logits.
        shortcut: ``"A"`` (the paper: parameter-free zero-padding identity) or ``"B"``
            (conv 1×1/2 → BN projections where the width doubles).
        zero_init_residual: zero γ of the last BN in every residual branch.
        name: used in error messages.
    """

    def __init__(self, n: int, *, in_channels: int = 3, num_classes: int = 10,
                 shortcut: str = "A", zero_init_residual: bool = False,
                 name: str = "cifar_resnet") -> None:
        super().__init__()
        if n < 1:
            raise ConfigError(f"{name} expects at least 1 block per stage, got {n}")
        if shortcut not in ("A", "B"):
            raise ConfigError(f"{name} shortcut must be 'A' or 'B', got {shortcut!r}")
        self.name = name
        self.in_channels = in_channels
        self.stem = nn.Sequential(conv3x3(in_channels, 16), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        c_in = 16
        stages = []
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                s = 2 if i > 0 and j == 0 else 1
                sc: nn.Module | None = None
                if s != 1 or c_in != width:
                    sc = (PadShortcut(c_in, width, s) if shortcut == "A"
                          else projection(c_in, width, s))
                blocks.append(BasicBlock(c_in, width, s, sc))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_resnet(self, zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, C, H, W)``, ``H, W ≥ 4`` → logits ``(N, num_classes)``."""
        check_images(x, self.name, self.in_channels, CIFAR_MIN_SIZE)
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


# --- registered configurations ---------------------------------------------------------------

def _resnet(name: str, block: type[BasicBlock | Bottleneck], layers: Sequence[int],
            in_channels: int, num_classes: int, image_size: int, *, zero_init_residual: bool,
            groups: int = 1, width_per_group: int = 64, se_reduction: int | None = None
            ) -> ResNet:
    check_image_size(name, image_size, IMAGENET_MIN_SIZE)
    return ResNet(block, layers, in_channels=in_channels, num_classes=num_classes, groups=groups,
                  width_per_group=width_per_group, se_reduction=se_reduction,
                  zero_init_residual=zero_init_residual, name=name)


@register_model("resnet18", family="resnet", image_size=224,
                description="ResNet-18 (basic blocks, [2, 2, 2, 2])", params=11_689_512,
                source="He et al. 2016, Table 1; torchvision resnet18")
def resnet18(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-18."""
    return _resnet("resnet18", BasicBlock, (2, 2, 2, 2), in_channels, num_classes, image_size,
                   zero_init_residual=zero_init_residual)


@register_model("resnet34", family="resnet", image_size=224,
                description="ResNet-34 (basic blocks, [3, 4, 6, 3])", params=21_797_672,
                source="He et al. 2016, Table 1; torchvision resnet34")
def resnet34(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-34."""
    return _resnet("resnet34", BasicBlock, (3, 4, 6, 3), in_channels, num_classes, image_size,
                   zero_init_residual=zero_init_residual)


@register_model("resnet50", family="resnet", image_size=224,
                description="ResNet-50 v1.5 (bottlenecks, [3, 4, 6, 3])", params=25_557_032,
                source="He et al. 2016, Table 1; torchvision resnet50")
def resnet50(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
             zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 (v1.5: stride on the 3×3 convolution)."""
    return _resnet("resnet50", Bottleneck, (3, 4, 6, 3), in_channels, num_classes, image_size,
                   zero_init_residual=zero_init_residual)


@register_model("resnet101", family="resnet", image_size=224,
                description="ResNet-101 v1.5 (bottlenecks, [3, 4, 23, 3])", params=44_549_160,
                source="He et al. 2016, Table 1; torchvision resnet101")
def resnet101(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              zero_init_residual: bool = False) -> ResNet:
    """ResNet-101 (v1.5)."""
    return _resnet("resnet101", Bottleneck, (3, 4, 23, 3), in_channels, num_classes, image_size,
                   zero_init_residual=zero_init_residual)


@register_model("resnet152", family="resnet", image_size=224,
                description="ResNet-152 v1.5 (bottlenecks, [3, 8, 36, 3])", params=60_192_808,
                source="He et al. 2016, Table 1; torchvision resnet152")
def resnet152(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
              zero_init_residual: bool = False) -> ResNet:
    """ResNet-152 (v1.5)."""
    return _resnet("resnet152", Bottleneck, (3, 8, 36, 3), in_channels, num_classes, image_size,
                   zero_init_residual=zero_init_residual)


@register_model("resnext50_32x4d", family="resnet", image_size=224,
                description="ResNeXt-50 32×4d (grouped bottlenecks, [3, 4, 6, 3])",
                params=25_028_904, source="Xie et al. 2017, Table 1; torchvision resnext50_32x4d")
def resnext50_32x4d(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                    zero_init_residual: bool = False) -> ResNet:
    """ResNeXt-50 with cardinality 32 and 4 channels per group."""
    return _resnet("resnext50_32x4d", Bottleneck, (3, 4, 6, 3), in_channels, num_classes,
                   image_size, groups=32, width_per_group=4,
                   zero_init_residual=zero_init_residual)


@register_model("se_resnet50", family="resnet", image_size=224,
                description="SE-ResNet-50 (bottlenecks with squeeze-excitation, r = 16)",
                params=28_088_024,
                source="Hu et al. 2018, Table 2 (28.1M); exact: Cadene pretrainedmodels "
                       "se_resnet50 / osmr imgclsmob seresnet50")
def se_resnet50(*, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224,
                zero_init_residual: bool = False, se_reduction: int = 16) -> ResNet:
    """SE-ResNet-50: ResNet-50 with squeeze-and-excitation (``C / se_reduction``) per block."""
    return _resnet("se_resnet50", Bottleneck, (3, 4, 6, 3), in_channels, num_classes,
                   image_size, se_reduction=se_reduction, zero_init_residual=zero_init_residual)


@register_model("preact_resnet18", family="resnet", image_size=224,
                description="pre-activation ResNet-18 (He et al. 2016b, ImageNet layout)",
                params=11_687_720,
                source="derived from fb.resnet.torch models/preresnet.lua (He et al. 2016b)")
def preact_resnet18(*, in_channels: int = 3, num_classes: int = 1000,
                    image_size: int = 224) -> PreActResNet:
    """Pre-activation ResNet-18."""
    check_image_size("preact_resnet18", image_size, IMAGENET_MIN_SIZE)
    return PreActResNet(PreActBasicBlock, (2, 2, 2, 2), in_channels=in_channels,
                        num_classes=num_classes, name="preact_resnet18")


@register_model("preact_resnet50", family="resnet", image_size=224,
                description="pre-activation ResNet-50 (He et al. 2016b, ImageNet layout)",
                params=25_549_352,
                source="derived from fb.resnet.torch models/preresnet.lua (He et al. 2016b)")
def preact_resnet50(*, in_channels: int = 3, num_classes: int = 1000,
                    image_size: int = 224) -> PreActResNet:
    """Pre-activation ResNet-50."""
    check_image_size("preact_resnet50", image_size, IMAGENET_MIN_SIZE)
    return PreActResNet(PreActBottleneck, (3, 4, 6, 3), in_channels=in_channels,
                        num_classes=num_classes, name="preact_resnet50")


@register_model("resnet18_cifar", family="resnet", image_size=32,
                description="ResNet-18 for 32×32 images (3×3/1 stem, no max-pool)",
                params=11_173_962,
                source="kuangliu/pytorch-cifar models/resnet.py ResNet18; exact for 10 classes")
def resnet18_cifar(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                   zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 with a 3×3 stride-1 stem and no max-pool (feature maps 32, 16, 8, 4)."""
    check_image_size("resnet18_cifar", image_size, CIFAR_STEM_MIN_SIZE)
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes,
                  zero_init_residual=zero_init_residual, stem="cifar", name="resnet18_cifar")


@register_model("resnet20", family="resnet", image_size=32,
                description="CIFAR ResNet-20 (He et al. 2016 §4.2, n = 3, option-A shortcuts)",
                params=269_722, source="He et al. 2016, Table 6 (0.27M); exact for 10 classes, "
                       "option A")
def resnet20(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
             shortcut: str = "A", zero_init_residual: bool = False) -> CifarResNet:
    """CIFAR ResNet-20 (``6·3 + 2`` layers)."""
    check_image_size("resnet20", image_size, CIFAR_MIN_SIZE)
    return CifarResNet(3, in_channels=in_channels, num_classes=num_classes, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, name="resnet20")


@register_model("resnet56", family="resnet", image_size=32,
                description="CIFAR ResNet-56 (He et al. 2016 §4.2, n = 9, option-A shortcuts)",
                params=853_018, source="He et al. 2016, Table 6 (0.85M); exact for 10 classes, "
                       "option A")
def resnet56(*, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
             shortcut: str = "A", zero_init_residual: bool = False) -> CifarResNet:
    """CIFAR ResNet-56 (``6·9 + 2`` layers)."""
    check_image_size("resnet56", image_size, CIFAR_MIN_SIZE)
    return CifarResNet(9, in_channels=in_channels, num_classes=num_classes, shortcut=shortcut,
                       zero_init_residual=zero_init_residual, name="resnet56")
