"""A small ResNet backbone and a Feature Pyramid Network (FPN) on top of it.

Backbone: a two-convolution stem (stride 4) and four stages of BasicBlocks (He et al., "Deep
Residual Learning", CVPR 2016, Fig. 2 left: ``y = relu(x + F(x))`` with ``F`` two 3×3 convs).
Stage ``i`` (i = 2..5) outputs ``C_i`` at stride ``2^i``: 4, 8, 16, 32, with the widths given.

FPN (Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017, Sec. 3 and Fig. 3):

    M_5 = lateral_5(C_5),   M_i = lateral_i(C_i) + upsample_2×(M_{i+1})    (1×1 laterals, nearest)
    P_i = output_i(M_i)                                                    (3×3, anti-aliasing)
    P_6 = maxpool_{1×1, stride 2}(P_5)                                     (RPN only, Sec. 4.1)

All ``P_i`` have the same number of channels, so one RPN head and one RoI head serve every level.

Normalisation: BatchNorm by default. The detector is trained from scratch with about eight
128-px images per batch; even the coarsest level C_5 (4×4) then pools its statistics over
8·16 = 128 positions, which is enough for stable batch statistics, and BatchNorm converges
faster than GroupNorm at this scale and is cheaper on the CPU. GroupNorm (Wu & He, ECCV 2018;
``norm="group"``) is batch-size independent and is the choice for 1–2 large images per batch,
as in He et al., "Rethinking ImageNet Pre-training" (ICCV 2019), who train detectors from
scratch with GN.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from foveal.errors import DetectionError

__all__ = ["FPN", "NORMS", "BasicBlock", "FPNBackbone", "ResNetBackbone", "make_norm"]

NORMS = ("batch", "group")


def make_norm(norm: str, channels: int) -> nn.Module:
    """``BatchNorm2d(channels)`` or ``GroupNorm`` with up to 32 groups of ≥ 4 channels each."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        groups = max(1, min(32, channels // 4))
        while channels % groups:
            groups -= 1
        return nn.GroupNorm(groups, channels)
    raise DetectionError(f"expected norm to be one of {NORMS}, got {norm!r}")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """``relu(shortcut(x) + bn(conv(relu(bn(conv(x))))))``; a 1×1 strided projection shortcut
    when the shape changes (ResNet option B)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.norm1 = make_norm(norm, cout)
        self.conv2 = _conv3x3(cout, cout)
        self.norm2 = make_norm(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), make_norm(norm, cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        y = self.norm2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


class ResNetBackbone(nn.Module):
    """Stem (two strided 3×3 convs, stride 4) and four BasicBlock stages → ``[C2, C3, C4, C5]``.

    Args:
        widths: channels of the four stages (strides 4, 8, 16, 32).
        blocks: BasicBlocks per stage.
        norm: ``"batch"`` or ``"group"`` (see the module docstring).
        in_channels: image channels.

    ``forward(x (N, in_channels, H, W))`` returns ``C_i`` of shape
    ``(N, widths[i-2], ⌈H/2^i⌉, ⌈W/2^i⌉)`` for i = 2..5.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        norm: str = "batch",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise DetectionError(f"expected 4 stage widths and 4 block counts, got "
                                 f"{len(widths)} and {len(blocks)}")
        stem = widths[0] // 2
        self.stem = nn.Sequential(
            _conv3x3(in_channels, stem, 2), make_norm(norm, stem), nn.ReLU(inplace=True),
            _conv3x3(stem, widths[0], 2), make_norm(norm, widths[0]), nn.ReLU(inplace=True),
        )
        stages = []
        cin = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            layers = [BasicBlock(cin, width, 1 if i == 0 else 2, norm)]
            layers += [BasicBlock(width, width, 1, norm) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.out_channels = list(widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last norm of each residual branch: every block starts as the identity,
        # which speeds up from-scratch training (Goyal et al. 2017, Sec. 5.1).
        for m in self.modules():
            if isinstance(m, BasicBlock) and m.norm2.weight is not None:
                nn.init.zeros_(m.norm2.weight)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class FPN(nn.Module):
    """Top-down pathway with lateral connections → ``[P2, …, P5]`` (+ ``P6`` by max-pooling).

    Args:
        in_channels: channels of ``C2..C5``.
        out_channels: channels ``d`` of every ``P_i`` (256 in the paper).
        extra_pool: append ``P6 = max_pool2d(P5, kernel 1, stride 2)`` (as torchvision's
            ``LastLevelMaxPool``).

    The upsampled map is resized to the lateral's exact size, so odd sizes work too.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 64,
                 extra_pool: bool = True) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        self.extra_pool = extra_pool
        self.out_channels = out_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)  # torchvision's FPN init
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != len(self.lateral):
            raise DetectionError(f"expected {len(self.lateral)} feature maps, got {len(features)}")
        m = self.lateral[-1](features[-1])
        outputs = [self.output[-1](m)]
        for i in range(len(features) - 2, -1, -1):
            lateral = self.lateral[i](features[i])
            m = lateral + F.interpolate(m, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.output[i](m))
        if self.extra_pool:
            outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2))
        return outputs


class FPNBackbone(nn.Module):
    """ResNet + FPN: ``forward(images (N, 3, H, W))`` → ``[P2, P3, P4, P5, P6]``, each
    ``(N, out_channels, ⌈H/s⌉, ⌈W/s⌉)`` at strides s = 4, 8, 16, 32, 64."""

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1, 1),
        out_channels: int = 64,
        norm: str = "batch",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.body = ResNetBackbone(widths, blocks, norm, in_channels)
        self.fpn = FPN(self.body.out_channels, out_channels, extra_pool=True)
        self.out_channels = out_channels

    def forward(self, images: Tensor) -> list[Tensor]:
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise DetectionError(f"expected images of shape (N, C, H, W), got {shape}")
        return self.fpn(self.body(images))

