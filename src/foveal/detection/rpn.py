"""Region Proposal Network (Ren et al., "Faster R-CNN", NeurIPS 2015, Sec. 3.1) over FPN levels.

At every position of every pyramid level a shared head predicts, for each of the ``A`` anchors
there, an objectness logit ``o`` and box deltas ``t = (tx, ty, tw, th)`` relative to the anchor
(eq. 2, :func:`foveal.detection.boxes.encode_boxes` with weights (1, 1, 1, 1)). FPN (Lin et al.
2017, Sec. 4.1) uses one anchor size per level (P2..P6) and shares the head across levels.

Training (Sec. 3.1.2–3.1.3): each anchor is matched to the ground truth by IoU — positive at
IoU ≥ 0.7, negative below 0.3, ignored between, and every ground truth keeps its best anchors
("low-quality" matches); 256 anchors per image are sampled with up to half positives. The loss is

    L_rpn = (1/|S|) Σ_{i∈S} BCE(o_i, p*_i)  +  (1/|S|) Σ_{i∈S, p*_i=1} smoothL1_β(t_i − t*_i)

with ``S`` the sampled anchors of the whole batch and β = 1/9 (torchvision's normalisation:
both terms divide by the number of sampled anchors).

Proposals: per image and level keep the ``pre_nms_top_n`` highest objectness logits, decode,
clip to the image, drop boxes smaller than ``min_size`` and those with σ(o) < ``score_thresh``,
run NMS (IoU 0.7) separately per level (as torchvision's batched_nms over levels), and keep
the ``post_nms_top_n`` best over all levels. Proposals are detached: no gradient flows from the
RoI heads into the proposal coordinates (the approximate joint training of Sec. 3.2).

Anchor order, everywhere: level-major, then position (row-major), then anchor — the order of
:class:`foveal.detection.anchors.AnchorGenerator` and of torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from foveal.detection.anchors import AnchorGenerator
from foveal.detection.boxes import (
    box_iou,
    clip_boxes_to_image,
    decode_boxes,
    encode_boxes,
    remove_small_boxes,
)
from foveal.detection.losses import smooth_l1_loss
from foveal.detection.matcher import BETWEEN_THRESHOLDS, match_by_iou
from foveal.detection.nms import nms
from foveal.detection.sampler import sample_positive_negative
from foveal.errors import DetectionError

__all__ = [
    "RPNConfig",
    "RPNHead",
    "RegionProposalNetwork",
    "flatten_head_outputs",
    "rpn_loss",
    "rpn_targets",
    "select_proposals",
]


@dataclass(frozen=True)
class RPNConfig:
    """RPN settings: torchvision's, except the top-k, sized for small images with a few objects
    (torchvision keeps 2000/2000 in training and 1000/1000 at test for COCO's 800-px images)."""

    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_top_n_train: int = 300
    post_nms_top_n_train: int = 300
    pre_nms_top_n_test: int = 300
    post_nms_top_n_test: int = 100
    nms_thresh: float = 0.7
    min_size: float = 1e-3
    score_thresh: float = 0.0


class RPNHead(nn.Module):
    """Shared 3×3 conv + ReLU, then 1×1 convs to ``A`` objectness logits and ``4A`` deltas.

    ``forward(features: list of (N, C, H_l, W_l))`` → ``(logits, deltas)``, lists of
    ``(N, A, H_l, W_l)`` and ``(N, 4A, H_l, W_l)``. Weights ~ N(0, 0.01²), biases 0 (Sec. 3.1.3).
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for f in features:
            t = F.relu(self.conv(f))
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


def flatten_head_outputs(logits: Sequence[Tensor],
                         deltas: Sequence[Tensor]) -> tuple[Tensor, Tensor, list[int]]:
    """Per-level head maps → ``(N, P)`` logits and ``(N, P, 4)`` deltas in anchor order.

    ``(N, A, H, W)`` becomes ``(N, H·W·A)`` (position-major, anchor-minor) and
    ``(N, 4A, H, W)`` — read as ``(N, A, 4, H, W)`` — becomes ``(N, H·W·A, 4)``. Also returns the
    number of anchors per level.
    """
    flat_logits, flat_deltas, counts = [], [], []
    for o, d in zip(logits, deltas, strict=True):
        n, a, h, w = o.shape
        flat_logits.append(o.permute(0, 2, 3, 1).reshape(n, -1))
        flat_deltas.append(d.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        counts.append(h * w * a)
    return torch.cat(flat_logits, 1), torch.cat(flat_deltas, 1), counts


def rpn_targets(anchors: Tensor, gt_boxes: Tensor, fg_iou_thresh: float = 0.7,
                bg_iou_thresh: float = 0.3) -> tuple[Tensor, Tensor]:
    """Objectness labels and matched boxes for one image.

    Args:
        anchors: ``(P, 4)`` xyxy.
        gt_boxes: ``(G, 4)`` xyxy, G may be 0.

    Returns:
        ``labels (P,)`` int64 — 1 object (IoU ≥ ``fg_iou_thresh`` or a ground truth's best
        anchor), 0 background (IoU < ``bg_iou_thresh``), −1 ignored — and ``matched (P, 4)``,
        the ground-truth box of each anchor (any box for non-objects; zeros when G = 0).
    """
    if gt_boxes.numel() == 0:
        labels = torch.zeros(anchors.shape[0], dtype=torch.int64, device=anchors.device)
        return labels, torch.zeros_like(anchors)
    matches = match_by_iou(box_iou(gt_boxes, anchors), fg_iou_thresh, bg_iou_thresh,
                           allow_low_quality_matches=True)
    labels = (matches >= 0).to(torch.int64)
    labels[matches == BETWEEN_THRESHOLDS] = -1
    matched = gt_boxes[matches.clamp(min=0)]
    return labels, matched


def rpn_loss(logits: Tensor, deltas: Tensor, anchors: Tensor, labels: Sequence[Tensor],
             matched: Sequence[Tensor], batch_size_per_image: int = 256,
             positive_fraction: float = 0.5) -> tuple[Tensor, Tensor]:
    """``(loss_objectness, loss_rpn_box_reg)`` over a batch (see the module docstring).

    Args:
        logits: ``(N, P)``; deltas: ``(N, P, 4)``; anchors: ``(P, 4)`` (shared by the batch).
        labels, matched: per image, from :func:`rpn_targets`.
    """
    pos_all, neg_all = [], []
    offset = 0
    for lab in labels:
        pos, neg = sample_positive_negative(lab, batch_size_per_image, positive_fraction)
        pos_all.append(pos + offset)
        neg_all.append(neg + offset)
        offset += lab.shape[0]
    pos = torch.cat(pos_all)
    sampled = torch.cat([pos, torch.cat(neg_all)])
    flat_anchors = anchors.repeat(len(labels), 1)
    targets = encode_boxes(torch.cat(list(matched))[pos], flat_anchors[pos])
    box_loss = smooth_l1_loss(deltas.reshape(-1, 4)[pos], targets, beta=1.0 / 9,
                              reduction="sum") / max(sampled.numel(), 1)
    obj = logits.reshape(-1)[sampled]
    target = (torch.cat(list(labels))[sampled] == 1).to(obj.dtype)
    obj_loss = F.binary_cross_entropy_with_logits(obj, target) if sampled.numel() else \
        obj.sum() * 0
    return obj_loss, box_loss


def select_proposals(logits: Tensor, deltas: Tensor, anchors: Tensor, counts: Sequence[int],
                     image_size: tuple[int, int], pre_nms_top_n: int, post_nms_top_n: int,
                     nms_thresh: float = 0.7, min_size: float = 1e-3,
                     score_thresh: float = 0.0) -> tuple[list[Tensor], list[Tensor]]:
    """Proposals per image: top-k per level, decode, clip, filter, per-level NMS, top-k.

    Args:
        logits: ``(N, P)`` objectness logits; deltas: ``(N, P, 4)``; anchors: ``(P, 4)``.
        counts: anchors per level (they sum to P).
        image_size: ``(height, width)`` for clipping.

    Returns:
        ``(boxes, scores)``: per image ``(K, 4)`` xyxy proposals and their ``(K,)``
        probabilities σ(o), sorted by decreasing score, K ≤ ``post_nms_top_n``; detached.
    """
    logits, deltas = logits.detach(), deltas.detach()
    n = logits.shape[0]
    levels = torch.cat([torch.full((c,), i, dtype=torch.int64, device=logits.device)
                        for i, c in enumerate(counts)])
    # pre-NMS top-k per level (on logits, monotone in σ)
    top_idx = []
    offset = 0
    for c in counts:
        k = min(pre_nms_top_n, c)
        top_idx.append(logits[:, offset:offset + c].topk(k, dim=1).indices + offset)
        offset += c
    idx = torch.cat(top_idx, 1)  # (N, K)
    boxes_out, scores_out = [], []
    for i in range(n):
        sel = idx[i]
        boxes = clip_boxes_to_image(decode_boxes(deltas[i, sel], anchors[sel]), image_size)
        scores = torch.sigmoid(logits[i, sel])
        lvl = levels[sel]
        keep = remove_small_boxes(boxes, min_size)
        keep = keep[scores[keep] >= score_thresh]
        boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
        # NMS level by level: the same result as batched_nms(boxes, scores, lvl), but the IoU
        # matrices are per level (Σ n_l² instead of (Σ n_l)² pairs)
        keep = torch.cat([where[nms(boxes[where], scores[where], nms_thresh)]
                          for where in (torch.nonzero(lvl == i).flatten()
                                        for i in range(len(counts)))])
        keep = keep[scores[keep].sort(descending=True, stable=True).indices][:post_nms_top_n]
        boxes_out.append(boxes[keep])
        scores_out.append(scores[keep])
    return boxes_out, scores_out


class RegionProposalNetwork(nn.Module):
    """Anchors + :class:`RPNHead` + proposal selection + (in training) the RPN loss.

    ``forward(features, image_size, gt_boxes=None)`` → ``(proposals, losses)``: per image
    ``(K, 4)`` proposals, and ``{"loss_objectness", "loss_rpn_box_reg"}`` when ``gt_boxes``
    (a list of ``(G_i, 4)`` xyxy) is given and the module is training (else ``{}``).
    """

    def __init__(self, in_channels: int, anchor_sizes: Sequence[Sequence[float]],
                 aspect_ratios: Sequence[Sequence[float]], config: RPNConfig | None = None
                 ) -> None:
        super().__init__()
        self.anchor_generator = AnchorGenerator(tuple(tuple(s) for s in anchor_sizes),
                                                tuple(tuple(a) for a in aspect_ratios))
        per_location = self.anchor_generator.num_anchors_per_location()
        if len(set(per_location)) != 1:
            raise DetectionError(f"expected the same number of anchors at every level (one "
                                 f"shared head), got {per_location}")
        self.head = RPNHead(in_channels, per_location[0])
        self.config = config or RPNConfig()

    def forward(self, features: Sequence[Tensor], image_size: tuple[int, int],
                gt_boxes: Sequence[Tensor] | None = None
                ) -> tuple[list[Tensor], dict[str, Tensor]]:
        cfg = self.config
        anchors = torch.cat(self.anchor_generator(image_size, features))
        logits, deltas, counts = flatten_head_outputs(*self.head(features))
        training = self.training and gt_boxes is not None
        proposals, _ = select_proposals(
            logits, deltas, anchors, counts, image_size,
            cfg.pre_nms_top_n_train if training else cfg.pre_nms_top_n_test,
            cfg.post_nms_top_n_train if training else cfg.post_nms_top_n_test,
            cfg.nms_thresh, cfg.min_size, cfg.score_thresh,
        )
        losses: dict[str, Tensor] = {}
        if training:
            assert gt_boxes is not None
            targets = [rpn_targets(anchors, g, cfg.fg_iou_thresh, cfg.bg_iou_thresh)
                       for g in gt_boxes]
            obj, box = rpn_loss(logits, deltas, anchors, [t[0] for t in targets],
                                [t[1] for t in targets], cfg.batch_size_per_image,
                                cfg.positive_fraction)
            losses = {"loss_objectness": obj, "loss_rpn_box_reg": box}
        return proposals, losses
