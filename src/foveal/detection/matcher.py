"""Assigning predictions to ground truth: IoU thresholds (R-CNN family) and Hungarian (DETR).

Two ways to decide which ground-truth box a prediction (anchor, proposal, query) should learn:

* :func:`match_by_iou` — each prediction takes the ground truth it overlaps most, kept only if
  that IoU clears a threshold (Faster R-CNN, Ren et al. 2015, Sec. 3.1.2; torchvision's
  ``Matcher``). Many predictions may share one ground truth.
* :func:`hungarian_match` — a one-to-one assignment of minimum total cost (Kuhn 1955, solved by
  :func:`scipy.optimize.linear_sum_assignment`); :class:`HungarianMatcher` builds DETR's cost
  (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020, Sec. 3.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from foveal.detection.boxes import box_convert, generalized_box_iou
from foveal.errors import DetectionError

__all__ = [
    "BELOW_LOW_THRESHOLD",
    "BETWEEN_THRESHOLDS",
    "HungarianMatcher",
    "Matcher",
    "detr_matching_cost",
    "hungarian_match",
    "match_by_iou",
]

BELOW_LOW_THRESHOLD = -1  # best IoU < low_threshold: a negative (background) example
BETWEEN_THRESHOLDS = -2  # low_threshold <= best IoU < high_threshold: ignored in the loss


def _check_thresholds(high_threshold: float, low_threshold: float) -> None:
    if not high_threshold >= low_threshold:  # also rejects NaN
        raise DetectionError(f"expected high_threshold >= low_threshold, got "
                             f"high_threshold={high_threshold!r}, low_threshold={low_threshold!r}")


def match_by_iou(
    iou: Tensor,
    high_threshold: float,
    low_threshold: float,
    allow_low_quality_matches: bool = False,
) -> Tensor:
    """Index of the ground truth each prediction is matched to, by IoU thresholds.

    With ``iou[g, p]`` the quality of prediction p for ground truth g, prediction p takes
    ``m = argmax_g iou[g, p]`` (the first g on ties) and is labelled

        m                     if iou[m, p] >= high_threshold,
        BETWEEN_THRESHOLDS    if low_threshold <= iou[m, p] < high_threshold,
        BELOW_LOW_THRESHOLD   if iou[m, p] < low_threshold.

    ``allow_low_quality_matches`` (Faster R-CNN, Sec. 3.1.2, condition (i)) then gives every
    ground truth at least one prediction: for each g, every prediction p whose IoU equals g's
    largest IoU ``max_p iou[g, p]`` (all of them when tied) gets its argmax ``m`` back, even when
    below the thresholds. As in torchvision, p gets its own best ground truth m, which can differ
    from g when p overlaps another ground truth more; and a ground truth that overlaps nothing
    (largest IoU 0) restores every prediction with IoU 0 to it.

    Args:
        iou: ``(G, P)`` match quality, ground truth by prediction (e.g. ``box_iou(gt, anchors)``),
            without NaN (``box_iou`` of two empty boxes is 0/0; torchvision would match it).
        high_threshold: IoU at or above which a prediction is matched.
        low_threshold: IoU below which a prediction is background; ``<= high_threshold``.
        allow_low_quality_matches: restore each ground truth's best predictions (see above).

    Returns:
        ``(P,)`` int64: a ground-truth index in ``[0, G)``, ``BELOW_LOW_THRESHOLD`` (−1) or
        ``BETWEEN_THRESHOLDS`` (−2). With no ground truth (G = 0) every prediction is −1.
    """
    _check_thresholds(high_threshold, low_threshold)
    if not isinstance(iou, Tensor) or iou.ndim != 2:
        got = f"shape {tuple(iou.shape)}" if isinstance(iou, Tensor) else type(iou).__name__
        raise DetectionError(f"expected iou of shape (G, P), got {got}")
    if torch.isnan(iou).any():
        raise DetectionError(f"expected iou without NaN (degenerate boxes?), got "
                             f"{int(torch.isnan(iou).sum())} NaN entries")
    num_gt, num_pred = iou.shape
    if num_gt == 0 or num_pred == 0:
        return torch.full((num_pred,), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)

    best, matches = iou.max(dim=0)
    best_gt = matches.clone()
    matches[best < low_threshold] = BELOW_LOW_THRESHOLD
    matches[(best >= low_threshold) & (best < high_threshold)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_per_gt = iou.max(dim=1).values
        restore = torch.nonzero(iou == best_per_gt[:, None])[:, 1]
        matches[restore] = best_gt[restore]
    return matches


class Matcher:
    """:func:`match_by_iou` with its thresholds fixed; ``matcher(iou)`` returns ``(P,)`` int64.

    Faster R-CNN uses (0.7, 0.3, allow_low_quality_matches=True) for the RPN and (0.5, 0.5)
    for the box head.
    """

    BELOW_LOW_THRESHOLD = BELOW_LOW_THRESHOLD
    BETWEEN_THRESHOLDS = BETWEEN_THRESHOLDS

    def __init__(self, high_threshold: float, low_threshold: float,
                 allow_low_quality_matches: bool = False) -> None:
        _check_thresholds(high_threshold, low_threshold)
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou: Tensor) -> Tensor:
        return match_by_iou(iou, self.high_threshold, self.low_threshold,
                            self.allow_low_quality_matches)

    def __repr__(self) -> str:
        return (f"Matcher(high_threshold={self.high_threshold}, low_threshold="
                f"{self.low_threshold}, allow_low_quality_matches="
                f"{self.allow_low_quality_matches})")


def hungarian_match(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment of predictions to ground truth.

    Finds the pairs (pᵢ, gᵢ), i < min(P, G), with distinct rows and distinct columns that
    minimise Σᵢ cost[pᵢ, gᵢ] (the linear sum assignment problem; rectangular costs leave
    |P − G| rows or columns unassigned). Solved exactly by scipy's shortest augmenting path
    (Crouse 2016) on a float64 copy on the CPU.

    Args:
        cost: ``(P, G)`` finite costs, prediction by ground truth.

    Returns:
        ``(pred_idx, gt_idx)``: two ``(min(P, G),)`` int64 tensors on ``cost``'s device,
        ``pred_idx`` ascending.
    """
    if not isinstance(cost, Tensor) or cost.ndim != 2:
        got = f"shape {tuple(cost.shape)}" if isinstance(cost, Tensor) else type(cost).__name__
        raise DetectionError(f"expected cost of shape (P, G), got {got}")
    c = cost.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(c).all():
        raise DetectionError(f"expected a finite cost matrix, got {int((~np.isfinite(c)).sum())} "
                             f"NaN or infinite entries")
    rows, cols = linear_sum_assignment(c)
    return (torch.as_tensor(rows, dtype=torch.int64, device=cost.device),
            torch.as_tensor(cols, dtype=torch.int64, device=cost.device))


def detr_matching_cost(
    pred_logits: Tensor,
    pred_boxes: Tensor,
    gt_labels: Tensor,
    gt_boxes: Tensor,
    cost_class: float = 1.0,
    cost_bbox: float = 5.0,
    cost_giou: float = 2.0,
) -> Tensor:
    """DETR's matching cost ``(Q, G)`` between Q predictions and G ground-truth objects.

        C[q, g] = − λ_cls · softmax(logits_q)[c_g] + λ_L1 · ‖b_q − b_g‖₁ − λ_giou · GIoU(b_q, b_g)

    (Carion et al. 2020, Sec. 3.1 and App. A.1), with boxes in normalised ``cxcywh``: the L1
    term is taken on (cx, cy, w, h) and the GIoU on the boxes converted to xyxy. The class
    term uses −p rather than −log p, as DETR does, so it is on the scale of the box terms.

    Args:
        pred_logits: ``(Q, K)`` class logits (K includes DETR's "no object" class, if any).
        pred_boxes: ``(Q, 4)`` cxcywh.
        gt_labels: ``(G,)`` integer classes in ``[0, K)``.
        gt_boxes: ``(G, 4)`` cxcywh.
    """
    if pred_logits.ndim != 2 or pred_boxes.shape != (pred_logits.shape[0], 4):
        raise DetectionError(f"expected pred_logits (Q, K) and pred_boxes (Q, 4), got shapes "
                             f"{tuple(pred_logits.shape)} and {tuple(pred_boxes.shape)}")
    if gt_labels.ndim != 1 or gt_boxes.shape != (gt_labels.shape[0], 4):
        raise DetectionError(f"expected gt_labels (G,) and gt_boxes (G, 4), got shapes "
                             f"{tuple(gt_labels.shape)} and {tuple(gt_boxes.shape)}")
    num_classes = pred_logits.shape[1]
    if gt_labels.numel() and (int(gt_labels.min()) < 0 or int(gt_labels.max()) >= num_classes):
        raise DetectionError(f"expected gt_labels in [0, {num_classes}), got values in "
                             f"[{int(gt_labels.min())}, {int(gt_labels.max())}]")
    gt_boxes = gt_boxes.to(pred_boxes.dtype)
    prob = pred_logits.softmax(-1)
    c_class = -prob[:, gt_labels.long()]
    c_bbox = torch.cdist(pred_boxes, gt_boxes, p=1)
    c_giou = -generalized_box_iou(box_convert(pred_boxes, "cxcywh", "xyxy"),
                                  box_convert(gt_boxes, "cxcywh", "xyxy"))
    return cost_class * c_class + cost_bbox * c_bbox + cost_giou * c_giou


class HungarianMatcher(nn.Module):
    """DETR's bipartite matcher: :func:`detr_matching_cost` then :func:`hungarian_match`, per image.

    ``forward(pred_logits (B, Q, K), pred_boxes (B, Q, 4), targets)`` with ``targets`` a list of
    B mappings holding ``"labels"`` ``(G_b,)`` and ``"boxes"`` ``(G_b, 4)`` cxcywh returns one
    ``(pred_idx, gt_idx)`` pair of int64 tensors per image, each of length min(Q, G_b) (empty
    for an image without objects). No gradient flows through the matching.
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0,
                 cost_giou: float = 2.0) -> None:
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise DetectionError("expected at least one non-zero cost weight, got all three 0")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, pred_logits: Tensor, pred_boxes: Tensor,
                targets: Sequence[Mapping[str, Tensor]]) -> list[tuple[Tensor, Tensor]]:
        if pred_logits.ndim != 3 or pred_boxes.shape != (*pred_logits.shape[:2], 4):
            raise DetectionError(f"expected pred_logits (B, Q, K) and pred_boxes (B, Q, 4), got "
                                 f"shapes {tuple(pred_logits.shape)} and "
                                 f"{tuple(pred_boxes.shape)}")
        if len(targets) != pred_logits.shape[0]:
            raise DetectionError(f"expected {pred_logits.shape[0]} targets (one per image), got "
                                 f"{len(targets)}")
        out = []
        for i, target in enumerate(targets):
            if "labels" not in target or "boxes" not in target:
                raise DetectionError(f"expected targets[{i}] to hold 'labels' and 'boxes', got "
                                     f"keys {sorted(target)}")
            cost = detr_matching_cost(pred_logits[i], pred_boxes[i], target["labels"],
                                      target["boxes"], self.cost_class, self.cost_bbox,
                                      self.cost_giou)
            out.append(hungarian_match(cost))
        return out

    def extra_repr(self) -> str:
        return (f"cost_class={self.cost_class}, cost_bbox={self.cost_bbox}, "
                f"cost_giou={self.cost_giou}")
