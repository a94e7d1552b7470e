"""Tests for foveal.detection.anchors.

Oracles: the closed form h = s·√r, w = s/√r rounded half to even (Python's ``round``), a
brute-force loop over cells and anchors for the tiling order, the anchors torchvision's own
test expects for a 3 × 3 map of stride 5 (test_models_detection_anchor_utils.py), and
torchvision's AnchorGenerator where it can be imported.
"""

import math

import pytest
import torch

from foveal.detection.anchors import AnchorGenerator, cell_anchors, grid_anchors
from foveal.errors import DetectionError


def test_cell_anchors_match_closed_form_aspect_ratio_major():
    sizes, ratios = (32.0, 45.0, 57.0), (0.5, 1.0, 2.0, 3.0)
    cell = cell_anchors(sizes, ratios)
    assert cell.shape == (12, 4) and cell.dtype == torch.float32
    rows = []
    for r in ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([round(-w / 2), round(-h / 2), round(w / 2), round(h / 2)])
    assert cell.tolist() == rows
    assert cell_anchors((32,), (0.5, 1.0, 2.0)).tolist() == [
        [-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]


def test_cell_anchors_round_half_to_even_like_torchvision():
    # ±2.5 rounds to ±2 (torch.round), not ±3 as C's round would
    assert cell_anchors((5,), (1.0,)).tolist() == [[-2, -2, 2, 2]]
    assert cell_anchors((7,), (1.0,), dtype=torch.float64).tolist() == [[-4, -4, 4, 4]]


def test_grid_anchors_match_brute_force_loop_position_major():
    cell = cell_anchors((16, 40), (0.5, 2.0))
    out = grid_anchors((3, 5), (8, 6), cell)
    ref = []
    for i in range(3):
        for j in range(5):
            for a in cell.tolist():
                ref.append([a[0] + 6 * j, a[1] + 8 * i, a[2] + 6 * j, a[3] + 8 * i])
    assert out.shape == (3 * 5 * 4, 4) and out.tolist() == ref


def test_anchor_generator_matches_torchvision_test_values():
    # torchvision's test: sizes ((10,),), aspect ratios ((1,),), 15 × 15 image, 3 × 3 map
    gen = AnchorGenerator(sizes=((10,),), aspect_ratios=((1.0,),))
    (anchors,) = gen((15, 15), [torch.rand(2, 8, 3, 3)])
    expect = [[-5.0 + 5 * j, -5.0 + 5 * i, 5.0 + 5 * j, 5.0 + 5 * i]
              for i in range(3) for j in range(3)]
    assert anchors.tolist() == expect


def test_anchor_generator_fpn_levels_strides_dtype_and_counts():
    gen = AnchorGenerator()
    assert gen.num_anchors_per_location() == [3] * 5
    image = (800, 1216)
    maps = [torch.zeros(1, 4, math.ceil(800 / s), math.ceil(1216 / s), dtype=torch.float64)
            for s in (4, 8, 16, 32, 64)]
    out = gen(image, maps)
    assert len(out) == 5
    for level, (anchors, fmap) in enumerate(zip(out, maps, strict=True)):
        h, w = fmap.shape[-2:]
        assert anchors.shape == (h * w * 3, 4) and anchors.dtype == torch.float64
        stride_y, stride_x = 800 // h, 1216 // w  # floor division, as torchvision
        cell = cell_anchors((32 * 2 ** level,), (0.5, 1.0, 2.0)).double()
        last = anchors.view(h, w, 3, 4)[-1, -1]
        shift = torch.tensor([(w - 1) * stride_x, (h - 1) * stride_y] * 2, dtype=torch.float64)
        torch.testing.assert_close(last, cell + shift, rtol=0, atol=0)


def test_anchor_generator_flat_sizes_and_retinanet_scales():
    gen = AnchorGenerator((32, 64), (0.5, 1.0, 2.0))
    assert gen.num_anchors_per_location() == [3, 3]
    retina = AnchorGenerator(tuple((x, x * 2 ** (1 / 3), x * 2 ** (2 / 3)) for x in (32, 64)),
                             ((0.5, 1.0, 2.0),) * 2)
    assert retina.num_anchors_per_location() == [9, 9]
    a, b = retina((64, 64), [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)])
    assert a.shape == (8 * 8 * 9, 4) and b.shape == (4 * 4 * 9, 4)


@pytest.mark.parametrize("make, match", [
    (lambda: AnchorGenerator(((32,), (64,)), ((1.0,),) * 3), "one aspect_ratios entry"),
    (lambda: cell_anchors((-4,), (1.0,)), "finite positive"),
    (lambda: cell_anchors((), (1.0,)), "non-empty"),
    (lambda: AnchorGenerator()((64, 64), [torch.zeros(1, 1, 8, 8)]), "expected 5 feature maps"),
    (lambda: grid_anchors((2, 2), (0, 4), torch.zeros(1, 4)), "stride"),
    (lambda: grid_anchors((2, 2), (4, 4), torch.zeros(4)), r"\(A, 4\)"),
])
def test_bad_anchor_arguments_raise_one_line_detection_error(make, match):
    with pytest.raises(DetectionError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_anchor_generator_equals_torchvision():
    anchor_utils = pytest.importorskip("torchvision.models.detection.anchor_utils")
    image_list = pytest.importorskip("torchvision.models.detection.image_list")
    sizes = tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in (32, 64, 128))
    ratios = ((0.5, 1.0, 2.0),) * 3
    images = torch.zeros(2, 3, 100, 152)
    maps = [torch.zeros(2, 4, math.ceil(100 / s), math.ceil(152 / s)) for s in (8, 16, 32)]
    ref = anchor_utils.AnchorGenerator(sizes, ratios)(
        image_list.ImageList(images, [(100, 152), (90, 140)]), maps)
    ours = AnchorGenerator(sizes, ratios)((100, 152), maps)
    for per_image in ref:
        torch.testing.assert_close(torch.cat(ours), per_image, rtol=0, atol=0)
