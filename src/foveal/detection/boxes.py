"""Axis-aligned box operations: format conversion, area, clipping, pairwise IoU family, box coding.

Boxes are float tensors ``(N, 4)`` in ``xyxy`` (x1, y1, x2, y2) unless a function says otherwise;
area is ``(x2 − x1)(y2 − y1)`` with no "+1" (continuous coordinates, as torchvision). Every
function is vectorised, differentiable where it makes sense, and runs on the inputs' device.

References:
    GIoU: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019, Alg. 1.
    DIoU / CIoU: Zheng et al., "Distance-IoU Loss", AAAI 2020, eqs. (6), (9)–(11).
    Box coding: Girshick et al., R-CNN (2014), Appendix C; Ren et al., Faster R-CNN (2015), eq. (2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from foveal.errors import DetectionError

__all__ = [
    "BOX_FORMATS",
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "complete_box_iou",
    "decode_boxes",
    "distance_box_iou",
    "encode_boxes",
    "generalized_box_iou",
    "remove_small_boxes",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")

# Faster R-CNN caps exp(dw) so that a decoded box is at most 1000/16 times its proposal.
DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def _require_shape(boxes: object, name: str = "boxes", pairwise: bool = False) -> Tensor:
    """Return ``boxes`` unchanged, or raise DetectionError naming the expected and actual shape."""
    if not isinstance(boxes, Tensor):
        raise DetectionError(f"expected {name} to be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.ndim == 0 or boxes.shape[-1] != 4 or (pairwise and boxes.ndim != 2):
        want = "(N, 4)" if pairwise else "(..., 4)"
        raise DetectionError(f"expected {name} of shape {want}, got shape {tuple(boxes.shape)}")
    return boxes


def _check_boxes(boxes: object, name: str = "boxes", pairwise: bool = False) -> Tensor:
    """Return ``boxes`` as a floating tensor of the right shape (integers become float32)."""
    boxes = _require_shape(boxes, name, pairwise)
    if not boxes.is_floating_point():
        boxes = boxes.float()
    return boxes


def _check_format(fmt: object, name: str) -> str:
    if fmt not in BOX_FORMATS:
        raise DetectionError(f"expected {name} to be one of {BOX_FORMATS}, got {fmt!r}")
    return fmt  # type: ignore[return-value]


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes ``(..., 4)`` between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    ``xyxy`` = (x1, y1, x2, y2); ``xywh`` = (x1, y1, w, h), the COCO format;
    ``cxcywh`` = (cx, cy, w, h) with cx = (x1 + x2)/2, w = x2 − x1 (DETR's format).
    Integer boxes stay integer only for formats that do not halve (``cxcywh`` becomes float).
    Returns a new tensor of the same shape.
    """
    _require_shape(boxes)
    in_fmt = _check_format(in_fmt, "in_fmt")
    out_fmt = _check_format(out_fmt, "out_fmt")
    if in_fmt == out_fmt:
        return boxes.clone()

    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    else:
        x1, y1, x2, y2 = a, b, c, d

    if out_fmt == "xyxy":
        out = (x1, y1, x2, y2)
    elif out_fmt == "xywh":
        out = (x1, y1, x2 - x1, y2 - y1)
    else:
        out = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    return torch.stack(out, dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Area ``(x2 − x1)(y2 − y1)`` of xyxy boxes ``(..., 4)``, shape ``(...)``.

    No "+1" and no clamping: a box with x2 < x1 has negative area, as in torchvision.
    """
    _require_shape(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp xyxy boxes ``(..., 4)`` to an image of ``size = (height, width)``.

    x1, x2 ∈ [0, width] and y1, y2 ∈ [0, height] (continuous coordinates, so the right edge is
    ``width``, not ``width − 1``). Returns a new tensor of the same shape.
    """
    _require_shape(boxes)
    if len(size) != 2:
        raise DetectionError(f"expected size = (height, width), got {tuple(size)!r}")
    h, w = size
    x = boxes[..., 0::2].clamp(min=0, max=w)
    y = boxes[..., 1::2].clamp(min=0, max=h)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices ``(K,)`` (int64, ascending) of xyxy boxes ``(N, 4)`` with w, h ≥ ``min_size``.

    Indices rather than a mask, so the result can index scores and labels alike (as torchvision).
    """
    boxes = _check_boxes(boxes, pairwise=True)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((w >= min_size) & (h >= min_size)).flatten()


def _inter_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas, each ``(N, M)``."""
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter, union


def _enclosing_wh(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Width and height ``(N, M, 2)`` of the smallest box C enclosing each pair."""
    lt = torch.minimum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    return (rb - lt).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union of xyxy boxes ``(N, 4)`` and ``(M, 4)`` → ``(N, M)``.

    IoU(A, B) = |A ∩ B| / |A ∪ B|, with |A ∪ B| = |A| + |B| − |A ∩ B|. No epsilon: two
    zero-area boxes give 0/0 = NaN, as in torchvision.
    """
    boxes1 = _check_boxes(boxes1, "boxes1", pairwise=True)
    boxes2 = _check_boxes(boxes2, "boxes2", pairwise=True)
    inter, union = _inter_union(boxes1, boxes2)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU ``(N, M)`` of xyxy boxes ``(N, 4)`` and ``(M, 4)``.

    GIoU = IoU − |C \\ (A ∪ B)| / |C|, where C is the smallest box enclosing A and B
    (Rezatofighi et al. 2019, Alg. 1). Range (−1, 1]; it stays informative when A ∩ B = ∅.
    """
    boxes1 = _check_boxes(boxes1, "boxes1", pairwise=True)
    boxes2 = _check_boxes(boxes2, "boxes2", pairwise=True)
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    wh = _enclosing_wh(boxes1, boxes2)
    area_c = wh[..., 0] * wh[..., 1]
    return iou - (area_c - union) / area_c


def _diou_terms(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """IoU and the DIoU penalty ρ²(b, b_gt) / (c² + eps), each ``(N, M)``."""
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    wh = _enclosing_wh(boxes1, boxes2)
    c2 = wh[..., 0] ** 2 + wh[..., 1] ** 2 + eps
    ctr1 = (boxes1[:, :2] + boxes1[:, 2:]) / 2
    ctr2 = (boxes2[:, :2] + boxes2[:, 2:]) / 2
    rho2 = ((ctr1[:, None, :] - ctr2[None, :, :]) ** 2).sum(-1)
    return iou, rho2 / c2


def distance_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Pairwise distance IoU ``(N, M)`` of xyxy boxes ``(N, 4)`` and ``(M, 4)``.

    DIoU = IoU − ρ²(b₁, b₂) / c², with ρ the distance between box centres and c the diagonal
    of the smallest enclosing box (Zheng et al. 2020, eq. 6). ``eps`` is added to c², as in
    torchvision, so coincident degenerate boxes do not divide by zero.
    """
    boxes1 = _check_boxes(boxes1, "boxes1", pairwise=True)
    boxes2 = _check_boxes(boxes2, "boxes2", pairwise=True)
    iou, penalty = _diou_terms(boxes1, boxes2, eps)
    return iou - penalty


def complete_box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """Pairwise complete IoU ``(N, M)`` of xyxy boxes ``(N, 4)`` and ``(M, 4)``.

    CIoU = DIoU − α·v (Zheng et al. 2020, eqs. 9–11), with the aspect-ratio term
    v = (4/π²)(arctan(w₂/h₂) − arctan(w₁/h₁))² and the trade-off α = v / (1 − IoU + v + eps).
    As in the paper (Sec. 3.3) and torchvision, α is a weight, not differentiated: gradients flow
    through IoU, ρ²/c² and v only. Boxes must have positive height (w/h is not guarded).
    """
    boxes1 = _check_boxes(boxes1, "boxes1", pairwise=True)
    boxes2 = _check_boxes(boxes2, "boxes2", pairwise=True)
    iou, penalty = _diou_terms(boxes1, boxes2, eps)
    atan1 = torch.atan((boxes1[:, 2] - boxes1[:, 0]) / (boxes1[:, 3] - boxes1[:, 1]))
    atan2 = torch.atan((boxes2[:, 2] - boxes2[:, 0]) / (boxes2[:, 3] - boxes2[:, 1]))
    v = (4 / math.pi**2) * (atan1[:, None] - atan2[None, :]) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - penalty - alpha * v


def _split_weights(weights: tuple[float, float, float, float]) -> tuple[float, ...]:
    if len(weights) != 4:
        raise DetectionError(f"expected 4 weights (wx, wy, ww, wh), got {len(weights)}")
    return tuple(float(w) for w in weights)


def encode_boxes(
    reference_boxes: Tensor,
    proposals: Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> Tensor:
    """Regression targets ``(..., 4)`` that move ``proposals`` onto ``reference_boxes`` (both xyxy).

    With proposal centre/size (pₓ, p_y, p_w, p_h) and ground truth (gₓ, g_y, g_w, g_h)
    (R-CNN App. C; Faster R-CNN eq. 2):
        dx = wx·(gₓ − pₓ)/p_w,   dy = wy·(g_y − p_y)/p_h,
        dw = ww·log(g_w/p_w),    dh = wh·log(g_h/p_h).
    Shapes broadcast; Faster R-CNN uses weights (10, 10, 5, 5) for its box head.
    """
    reference_boxes = _check_boxes(reference_boxes, "reference_boxes")
    proposals = _check_boxes(proposals, "proposals")
    wx, wy, ww, wh = _split_weights(weights)
    pw = proposals[..., 2] - proposals[..., 0]
    ph = proposals[..., 3] - proposals[..., 1]
    px = proposals[..., 0] + 0.5 * pw
    py = proposals[..., 1] + 0.5 * ph
    gw = reference_boxes[..., 2] - reference_boxes[..., 0]
    gh = reference_boxes[..., 3] - reference_boxes[..., 1]
    gx = reference_boxes[..., 0] + 0.5 * gw
    gy = reference_boxes[..., 1] + 0.5 * gh
    dx = wx * (gx - px) / pw
    dy = wy * (gy - py) / ph
    dw = ww * torch.log(gw / pw)
    dh = wh * torch.log(gh / ph)
    return torch.stack((dx, dy, dw, dh), dim=-1)


def decode_boxes(
    deltas: Tensor,
    proposals: Tensor,
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
    clamp: float = DEFAULT_SCALE_CLAMP,
) -> Tensor:
    """Apply regression ``deltas`` ``(..., 4)`` to xyxy ``proposals``; the inverse of encode_boxes.

        x̂ = pₓ + (dx/wx)·p_w,   ŵ = p_w·exp(min(dw/ww, clamp))   (and likewise for y, h),
    returned as xyxy (x̂ − ŵ/2, ŷ − ĥ/2, x̂ + ŵ/2, ŷ + ĥ/2). ``clamp`` = log(1000/16) keeps exp
    from overflowing on wild early-training predictions (Faster R-CNN's BoxCoder).
    """
    deltas = _check_boxes(deltas, "deltas")
    proposals = _check_boxes(proposals, "proposals").to(deltas.dtype)
    wx, wy, ww, wh = _split_weights(weights)
    pw = proposals[..., 2] - proposals[..., 0]
    ph = proposals[..., 3] - proposals[..., 1]
    px = proposals[..., 0] + 0.5 * pw
    py = proposals[..., 1] + 0.5 * ph
    dx = deltas[..., 0] / wx
    dy = deltas[..., 1] / wy
    dw = (deltas[..., 2] / ww).clamp(max=clamp)
    dh = (deltas[..., 3] / wh).clamp(max=clamp)
    cx = px + dx * pw
    cy = py + dy * ph
    w = pw * torch.exp(dw)
    h = ph * torch.exp(dh)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)
