"""Detection losses: smooth L1 box regression, the IoU-family box losses and the focal loss.

The box losses compare *paired* boxes: row i of ``boxes1`` with row i of ``boxes2``, both
``(N, 4)`` xyxy, giving ``(N,)`` before reduction (the pairwise ``(N, M)`` IoU family lives in
:mod:`foveal.detection.boxes`). ``reduction`` is ``"none"``, ``"mean"`` or ``"sum"``; the mean
of an empty loss is 0 (still connected to the graph), so a batch without positives trains on.

References:
    Smooth L1: Girshick, "Fast R-CNN", ICCV 2015, eq. (3).
    GIoU: Rezatofighi et al., CVPR 2019, Alg. 2. DIoU / CIoU: Zheng et al., AAAI 2020,
    eqs. (7), (8)–(11). Focal loss: Lin et al., "Focal Loss for Dense Object Detection",
    ICCV 2017, eq. (5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from foveal.detection.boxes import box_area
from foveal.errors import DetectionError

__all__ = ["ciou_loss", "diou_loss", "giou_loss", "sigmoid_focal_loss", "smooth_l1_loss"]

REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: object) -> str:
    if reduction not in REDUCTIONS:
        raise DetectionError(f"expected reduction to be one of {REDUCTIONS}, got {reduction!r}")
    return reduction  # type: ignore[return-value]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum() * 0.0
    return loss


def _check_pair(a: object, b: object, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Two tensors of one shape (floating point), or DetectionError naming both shapes."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise DetectionError(f"expected {names[0]} and {names[1]} to be torch.Tensor, got "
                             f"{type(a).__name__} and {type(b).__name__}")
    if a.shape != b.shape:
        raise DetectionError(f"expected {names[0]} and {names[1]} of the same shape, got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
    return a if a.is_floating_point() else a.float(), b if b.is_floating_point() else b.float()


def _check_paired_boxes(boxes1: object, boxes2: object) -> tuple[Tensor, Tensor]:
    boxes1, boxes2 = _check_pair(boxes1, boxes2, ("boxes1", "boxes2"))
    if boxes1.ndim != 2 or boxes1.shape[1] != 4:
        raise DetectionError(f"expected paired boxes of shape (N, 4), got shape "
                             f"{tuple(boxes1.shape)}")
    return boxes1, boxes2


def smooth_l1_loss(input: Tensor, target: Tensor, beta: float = 1.0 / 9,
                   reduction: str = "sum") -> Tensor:
    """Smooth L1 (Huber / β) loss between box regression ``input`` and ``target`` (same shape).

        ℓ(x) = 0.5 x² / β   if |x| < β,
               |x| − 0.5 β  otherwise,        x = input − target,

    continuous with a continuous slope at |x| = β (both pieces give 0.5 β and slope ±1).
    ``beta = 0`` is the L1 loss. Faster R-CNN uses β = 1/9 and ``"sum"`` divided by the number
    of sampled examples. Computed by :func:`torch.nn.functional.smooth_l1_loss`.
    """
    input, target = _check_pair(input, target, ("input", "target"))
    reduction = _check_reduction(reduction)
    if not beta >= 0:
        raise DetectionError(f"expected beta >= 0, got {beta!r}")
    return F.smooth_l1_loss(input, target, reduction=reduction, beta=beta)


def _paired_terms(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Row-wise IoU, union and enclosing box C of paired xyxy boxes, as torchvision's losses.

    Returns ``(iou, union, wh_c)``: ``(N,)``, ``(N,)``, ``(N, 2)``; IoU = |A∩B| / (|A∪B| + eps).
    """
    lt = torch.maximum(boxes1[:, :2], boxes2[:, :2])
    rb = torch.minimum(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(boxes1) + box_area(boxes2) - inter
    wh_c = torch.maximum(boxes1[:, 2:], boxes2[:, 2:]) - torch.minimum(boxes1[:, :2], boxes2[:, :2])
    return inter / (union + eps), union, wh_c


def giou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none",
              eps: float = 1e-7) -> Tensor:
    """Generalized IoU loss 1 − GIoU of paired xyxy boxes ``(N, 4)``, ``(N, 4)`` → ``(N,)``.

        GIoU = IoU − |C \\ (A ∪ B)| / |C|,   C the smallest box enclosing A and B

    (Rezatofighi et al. 2019, Alg. 2). Range [0, 2): 0 for identical boxes, tending to 2 for
    small boxes far apart. ``eps`` is added to |A ∪ B| and |C|, as in torchvision.
    """
    boxes1, boxes2 = _check_paired_boxes(boxes1, boxes2)
    reduction = _check_reduction(reduction)
    iou, union, wh_c = _paired_terms(boxes1, boxes2, eps)
    area_c = wh_c[:, 0] * wh_c[:, 1]
    return _reduce(1 - (iou - (area_c - union) / (area_c + eps)), reduction)


def _diou_loss_and_iou(boxes1: Tensor, boxes2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    iou, _, wh_c = _paired_terms(boxes1, boxes2, eps)
    c2 = (wh_c**2).sum(1) + eps  # squared diagonal of C
    rho2 = (((boxes1[:, :2] + boxes1[:, 2:]) - (boxes2[:, :2] + boxes2[:, 2:])) ** 2).sum(1) / 4
    return 1 - iou + rho2 / c2, iou


def diou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none",
              eps: float = 1e-7) -> Tensor:
    """Distance-IoU loss of paired xyxy boxes ``(N, 4)``, ``(N, 4)`` → ``(N,)``.

        L_DIoU = 1 − IoU + ρ²(b, b_gt) / c²

    with ρ the distance between the centres and c the diagonal of the enclosing box C
    (Zheng et al. 2020, eq. 7); ``eps`` is added to |A ∪ B| and c², as in torchvision.
    """
    boxes1, boxes2 = _check_paired_boxes(boxes1, boxes2)
    reduction = _check_reduction(reduction)
    return _reduce(_diou_loss_and_iou(boxes1, boxes2, eps)[0], reduction)


def ciou_loss(boxes1: Tensor, boxes2: Tensor, reduction: str = "none",
              eps: float = 1e-7) -> Tensor:
    """Complete-IoU loss of paired xyxy boxes ``(N, 4)``, ``(N, 4)`` → ``(N,)``.

        L_CIoU = L_DIoU + α v,   v = (4/π²)(arctan(w_gt/h_gt) − arctan(w/h))²,
        α = v / ((1 − IoU) + v)

    (Zheng et al. 2020, eqs. 8–11). α is a weight and is not differentiated (Sec. 3.3, as
    torchvision). Boxes need positive heights.
    """
    boxes1, boxes2 = _check_paired_boxes(boxes1, boxes2)
    reduction = _check_reduction(reduction)
    loss, iou = _diou_loss_and_iou(boxes1, boxes2, eps)
    wh1 = boxes1[:, 2:] - boxes1[:, :2]
    wh2 = boxes2[:, 2:] - boxes2[:, :2]
    atan1 = torch.atan(wh1[:, 0] / wh1[:, 1])
    atan2 = torch.atan(wh2[:, 0] / wh2[:, 1])
    v = (4 / math.pi**2) * (atan2 - atan1) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(loss + alpha * v, reduction)


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none") -> Tensor:
    """Focal loss for binary (one-vs-all) classification from logits (Lin et al. 2017, eq. 5).

        FL(p_t) = −α_t (1 − p_t)^γ log(p_t),   p = σ(x),
        p_t = p t + (1 − p)(1 − t),   α_t = α t + (1 − α)(1 − t),

    for each element, with targets t ∈ [0, 1] (soft targets allowed; −log p_t is then the
    binary cross-entropy). −log p_t is computed as BCE-with-logits (exact for any logit) and
    1 − p_t = σ(x)(1 − t) + σ(−x) t without the cancellation of 1 − σ(x). σ(−x) still
    underflows to 0 in float32 beyond x ≈ 88, where m^γ with γ < 1 has an infinite slope and
    the gradient would be 0·∞ = NaN, so 1 − p_t is clamped to the smallest normal float first
    (a change far below the loss's rounding). Logits of ±100 give finite values and gradients.
    ``alpha < 0`` switches the α_t weighting off; γ = 0 with α < 0 is BCE-with-logits.

    Args:
        inputs: logits, any shape.
        targets: the same shape, 0/1 (or in [0, 1]); cast to ``inputs``' dtype.
        alpha: weight of the positive class in [0, 1], or negative for no weighting.
        gamma: focusing parameter γ >= 0.
        reduction: ``"none"`` (the shape of ``inputs``), ``"mean"`` or ``"sum"``.
    """
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise DetectionError(f"expected inputs to be a floating-point tensor of logits, got "
                             f"{getattr(inputs, 'dtype', type(inputs).__name__)}")
    inputs, targets = _check_pair(inputs, targets, ("inputs", "targets"))
    reduction = _check_reduction(reduction)
    if not gamma >= 0:
        raise DetectionError(f"expected gamma >= 0, got {gamma!r}")
    if alpha > 1:
        raise DetectionError(f"expected alpha in [0, 1] (or < 0 for none), got {alpha!r}")
    targets = targets.to(inputs.dtype)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")  # −log p_t
    # 1 − p_t from σ(x) and σ(−x), never 1 − σ(x); the clamp keeps d(m^γ)/dm finite for γ < 1
    one_minus_p_t = torch.sigmoid(inputs) * (1 - targets) + torch.sigmoid(-inputs) * targets
    loss = ce * one_minus_p_t.clamp(min=torch.finfo(inputs.dtype).tiny) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)
