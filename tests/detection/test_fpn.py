"""Tests for foveal.detection.fpn.

Oracles: closed forms (output sizes ⌈H/2^i⌉ and channel counts), the FPN equations recomputed by
hand from the module's own layers (M_5 = lateral(C_5), M_i = lateral(C_i) + nearest-upsample),
and torch autograd (gradients reach the stem).
"""

import pytest
import torch
from torch.nn import functional as F

from foveal.detection.fpn import FPN, FPNBackbone, ResNetBackbone, make_norm
from foveal.errors import DetectionError


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_backbone_levels_have_strides_4_to_64_and_fpn_channels(norm):
    model = FPNBackbone(widths=(8, 16, 16, 32), out_channels=16, norm=norm)
    feats = model(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [
        (2, 16, 16, 24), (2, 16, 8, 12), (2, 16, 4, 6), (2, 16, 2, 3), (2, 16, 1, 2)]


def test_odd_image_sizes_round_up_like_strided_convs():
    body = ResNetBackbone(widths=(8, 8, 8, 8))
    feats = body(torch.randn(1, 3, 50, 37))
    sizes = [tuple(f.shape[-2:]) for f in feats]
    assert sizes == [(13, 10), (7, 5), (4, 3), (2, 2)]
    fpn = FPN([8] * 4, 8)
    assert [tuple(p.shape[-2:]) for p in fpn(feats)] == [*sizes, (1, 1)]


def test_fpn_matches_the_top_down_equations():
    torch.manual_seed(0)
    fpn = FPN([4, 6, 8, 10], 5)
    cs = [torch.randn(1, c, s, s) for c, s in zip([4, 6, 8, 10], [16, 8, 4, 2], strict=True)]
    m = fpn.lateral[3](cs[3])
    expected = [fpn.output[3](m)]
    for i in (2, 1, 0):
        m = fpn.lateral[i](cs[i]) + F.interpolate(m, scale_factor=2, mode="nearest")
        expected.insert(0, fpn.output[i](m))
    expected.append(expected[-1][:, :, ::2, ::2])  # P6: 1×1 max-pool with stride 2
    for got, want in zip(fpn(cs), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_gradients_reach_the_stem():
    model = FPNBackbone(widths=(8, 8, 16, 16), out_channels=8)
    sum(f.sum() for f in model(torch.randn(2, 3, 32, 32))).backward()
    assert model.body.stem[0].weight.grad.abs().sum() > 0


def test_group_norm_groups_divide_the_channels():
    assert make_norm("group", 24).num_groups == 6
    assert make_norm("group", 256).num_groups == 32


def test_bad_input_raises_one_line_errors():
    with pytest.raises(DetectionError, match="norm"):
        make_norm("layer", 8)
    with pytest.raises(DetectionError, match=r"expected images of shape \(N, C, H, W\)"):
        FPNBackbone()(torch.randn(3, 32, 32))
    with pytest.raises(DetectionError, match="4 stage widths"):
        ResNetBackbone(widths=(8, 8))
