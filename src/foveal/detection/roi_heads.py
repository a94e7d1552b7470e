"""The Fast R-CNN box head on FPN features (Girshick, "Fast R-CNN", ICCV 2015; Ren et al. 2015;
Lin et al., FPN 2017, Sec. 4.2).

Each proposal is pooled to a 7×7 map by RoIAlign (He et al., "Mask R-CNN", 2017) on the pyramid
level ``k = ⌊4 + log2(√(wh)/224)⌋`` clamped to P2..P5 (FPN eq. 1), flattened and passed through
two fully connected layers (the "2fc" head, FPN Sec. 4.2). A predictor then gives ``K + 1`` class
logits (0 = background) and class-specific box deltas ``t^k``, ``4(K + 1)`` numbers per RoI,
encoded with weights (10, 10, 5, 5) (:func:`foveal.detection.boxes.encode_boxes`).

Training (Fast R-CNN Sec. 2.3): the ground-truth boxes are added to the proposals, each proposal
is matched to the ground truth with IoU ≥ 0.5 as foreground (its class) and < 0.5 background,
512 RoIs per image are sampled with up to 25 % foreground, and

    L = (1/|R|) Σ_r CE(p_r, u_r)  +  (1/|R|) Σ_{r: u_r ≥ 1} smoothL1_β(t^{u_r}_r − v_r)

with ``R`` all sampled RoIs of the batch, β = 1/9 (torchvision's normalisation).

Inference: softmax over classes, every proposal decoded once per foreground class, boxes clipped,
scores below ``score_thresh`` and boxes smaller than ``min_size`` dropped, NMS (IoU 0.5) per
class, and the best ``detections_per_img`` kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from foveal.detection.boxes import (
    box_iou,
    clip_boxes_to_image,
    decode_boxes,
    encode_boxes,
    remove_small_boxes,
)
from foveal.detection.losses import smooth_l1_loss
from foveal.detection.matcher import BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, match_by_iou
from foveal.detection.nms import batched_nms
from foveal.detection.roi import MultiScaleRoIAlign
from foveal.detection.sampler import sample_positive_negative

__all__ = [
    "BOX_WEIGHTS",
    "FastRCNNPredictor",
    "RoIHeads",
    "RoIHeadsConfig",
    "TwoMLPHead",
    "fastrcnn_loss",
    "postprocess_detections",
    "roi_targets",
]

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class RoIHeadsConfig:
    """Box-head settings; the defaults are torchvision's."""

    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.5
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_img: int = 100
    min_size: float = 1e-2


class TwoMLPHead(nn.Module):
    """``relu(fc7(relu(fc6(flatten(x)))))``: ``(R, C, 7, 7)`` → ``(R, representation_size)``."""

    def __init__(self, in_features: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(nn.Module):
    """``(R, D)`` → class logits ``(R, K + 1)`` and class-specific deltas ``(R, 4(K + 1))``.

    Initialised as in Fast R-CNN: logits ~ N(0, 0.01²), deltas ~ N(0, 0.001²), biases 0.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes + 1)
        self.bbox_pred = nn.Linear(in_features, 4 * (num_classes + 1))
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


def roi_targets(proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor,
                fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5
                ) -> tuple[Tensor, Tensor]:
    """Class labels and matched ground-truth boxes for one image's proposals.

    Args:
        proposals: ``(R, 4)`` xyxy (including the ground truth, in training).
        gt_boxes: ``(G, 4)``; gt_labels: ``(G,)`` in 1..K; G may be 0.

    Returns:
        ``labels (R,)`` int64 — the matched class, 0 for background (IoU < ``bg_iou_thresh``),
        −1 ignored (between the thresholds) — and ``matched (R, 4)`` boxes (zeros when G = 0).
    """
    if gt_boxes.numel() == 0:
        return (torch.zeros(proposals.shape[0], dtype=torch.int64, device=proposals.device),
                torch.zeros_like(proposals))
    matches = match_by_iou(box_iou(gt_boxes, proposals), fg_iou_thresh, bg_iou_thresh)
    labels = gt_labels[matches.clamp(min=0)].to(torch.int64)
    labels[matches == BELOW_LOW_THRESHOLD] = 0
    labels[matches == BETWEEN_THRESHOLDS] = -1
    return labels, gt_boxes[matches.clamp(min=0)]


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: Tensor,
                  regression_targets: Tensor) -> tuple[Tensor, Tensor]:
    """``(loss_classifier, loss_box_reg)`` over all sampled RoIs (see the module docstring).

    Args:
        class_logits: ``(R, K + 1)``; box_regression: ``(R, 4(K + 1))``;
        labels: ``(R,)`` in 0..K; regression_targets: ``(R, 4)`` (used where labels > 0).
    """
    loss_cls = F.cross_entropy(class_logits, labels)
    pos = torch.nonzero(labels > 0).flatten()
    per_class = box_regression.reshape(box_regression.shape[0], -1, 4)
    loss_box = smooth_l1_loss(per_class[pos, labels[pos]], regression_targets[pos],
                              beta=1.0 / 9, reduction="sum") / max(labels.numel(), 1)
    return loss_cls, loss_box


def postprocess_detections(class_logits: Tensor, box_regression: Tensor,
                           proposals: Sequence[Tensor], image_size: tuple[int, int],
                           score_thresh: float = 0.05, nms_thresh: float = 0.5,
                           detections_per_img: int = 100, min_size: float = 1e-2
                           ) -> list[dict[str, Tensor]]:
    """Per-image ``{"boxes" (D, 4), "labels" (D,) in 1..K, "scores" (D,)}``, by decreasing score.

    ``class_logits`` ``(R, K + 1)`` and ``box_regression`` ``(R, 4(K + 1))`` hold the rows of all
    images' proposals in order.
    """
    num_classes = class_logits.shape[1]
    probs = F.softmax(class_logits, -1)
    boxes_all = decode_boxes(box_regression.reshape(-1, num_classes, 4),
                             torch.cat(list(proposals))[:, None, :], BOX_WEIGHTS)
    results = []
    start = 0
    for props in proposals:
        r = props.shape[0]
        boxes = clip_boxes_to_image(boxes_all[start:start + r], image_size)[:, 1:].reshape(-1, 4)
        scores = probs[start:start + r, 1:].reshape(-1)
        labels = torch.arange(1, num_classes, device=boxes.device).repeat(r)
        start += r
        keep = torch.nonzero(scores > score_thresh).flatten()
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, min_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
        results.append({"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep]})
    return results


class RoIHeads(nn.Module):
    """RoIAlign on P2..P5 + :class:`TwoMLPHead` + :class:`FastRCNNPredictor`.

    ``forward(features, proposals, image_size, targets=None)`` → ``(detections, losses)``: in
    training (with ``targets``, a list of ``{"boxes", "labels"}``) the losses
    ``{"loss_classifier", "loss_box_reg"}`` and no detections; otherwise per-image detections.
    """

    def __init__(self, in_channels: int, num_classes: int, representation_size: int = 256,
                 config: RoIHeadsConfig | None = None, roi_size: int = 7,
                 sampling_ratio: int = 2) -> None:
        super().__init__()
        self.pooler = MultiScaleRoIAlign(output_size=roi_size, sampling_ratio=sampling_ratio)
        self.box_head = TwoMLPHead(in_channels * roi_size * roi_size, representation_size)
        self.predictor = FastRCNNPredictor(representation_size, num_classes)
        self.config = config or RoIHeadsConfig()

    def sample(self, proposals: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
               ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Add the ground truth, match and sample: ``(rois per image, labels, regression
        targets)``, the last two concatenated over the images."""
        cfg = self.config
        rois, labels, regression = [], [], []
        for props, target in zip(proposals, targets, strict=True):
            props = torch.cat([props, target["boxes"].to(props.dtype)])
            lab, matched = roi_targets(props, target["boxes"], target["labels"],
                                       cfg.fg_iou_thresh, cfg.bg_iou_thresh)
            pos, neg = sample_positive_negative(lab, cfg.batch_size_per_image,
                                                cfg.positive_fraction)
            keep = torch.cat([pos, neg])
            rois.append(props[keep])
            labels.append(lab[keep])
            targets_i = torch.zeros_like(props[keep])  # background rows are never used
            targets_i[: pos.numel()] = encode_boxes(matched[pos], props[pos], BOX_WEIGHTS)
            regression.append(targets_i)
        return rois, torch.cat(labels), torch.cat(regression)

    def forward(self, features: Sequence[Tensor], proposals: Sequence[Tensor],
                image_size: tuple[int, int], targets: Sequence[dict[str, Tensor]] | None = None
                ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        training = self.training and targets is not None
        if training:
            assert targets is not None
            rois, labels, regression = self.sample(proposals, targets)
        else:
            rois = list(proposals)
        pooled = self.pooler(features, rois, image_size)
        class_logits, box_regression = self.predictor(self.box_head(pooled))
        if training:
            loss_cls, loss_box = fastrcnn_loss(class_logits, box_regression, labels, regression)
            return [], {"loss_classifier": loss_cls, "loss_box_reg": loss_box}
        cfg = self.config
        return postprocess_detections(class_logits, box_regression, rois, image_size,
                                      cfg.score_thresh, cfg.nms_thresh, cfg.detections_per_img,
                                      cfg.min_size), {}
