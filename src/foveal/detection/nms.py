"""Non-maximum suppression: greedy (single- and multi-class) and Soft-NMS.

Boxes are float tensors ``(N, 4)`` in ``xyxy``; IoU is ``|A ∩ B| / |A ∪ B|`` with area
``(x2 − x1)(y2 − y1)`` (no "+1"). Semantics follow torchvision: a box is suppressed by a kept,
higher-scoring box when their IoU is *strictly* greater than ``iou_threshold``; equal scores are
ordered by index (a stable descending sort), so the lower index wins a tie. A pair with zero
union (two empty boxes) has IoU 0/0 = NaN and never suppresses.

References:
    Greedy NMS: Felzenszwalb et al., "Object Detection with Discriminatively Trained Part Based
    Models", TPAMI 2010; Girshick et al., R-CNN, CVPR 2014.
    Soft-NMS: Bodla et al., "Soft-NMS — Improving Object Detection With One Line of Code",
    ICCV 2017, Algorithm 1 and eqs. (2)–(3).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from foveal.detection.boxes import box_iou
from foveal.errors import DetectionError

__all__ = ["batched_nms", "nms", "soft_nms"]

_BLOCK = 1024  # sorted boxes resolved together; a block's IoU matrix is _BLOCK² floats
_KEPT_CHUNK = 8192  # kept boxes compared against one block at a time


def _check_inputs(boxes: object, scores: object, iou_threshold: object) -> tuple[Tensor, Tensor]:
    """Return ``(boxes, scores)`` checked, or raise DetectionError naming expected and actual."""
    if not isinstance(boxes, Tensor) or not isinstance(scores, Tensor):
        raise DetectionError(f"expected boxes and scores to be torch.Tensor, got "
                             f"{type(boxes).__name__} and {type(scores).__name__}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DetectionError(f"expected boxes of shape (N, 4), got shape {tuple(boxes.shape)}")
    if scores.ndim != 1 or scores.shape[0] != boxes.shape[0]:
        raise DetectionError(f"expected scores of shape ({boxes.shape[0]},) to match boxes, "
                             f"got shape {tuple(scores.shape)}")
    if not isinstance(iou_threshold, (int, float)) or math.isnan(iou_threshold):
        raise DetectionError(f"expected iou_threshold to be a number, got {iou_threshold!r}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if torch.isnan(scores).any():
        raise DetectionError(f"expected finite scores, got {int(torch.isnan(scores).sum())} NaN")
    if torch.isnan(boxes).any():
        bad = int(torch.isnan(boxes).any(1).sum())
        raise DetectionError(f"expected boxes without NaN, got {bad} boxes with NaN coordinates")
    return boxes, scores


def _greedy_upper(suppress: np.ndarray) -> np.ndarray:
    """Greedy pass over a boolean matrix: row i (if kept) removes the j > i it marks."""
    m = suppress.shape[0]
    keep = np.ones(m, dtype=bool)
    rows = np.triu(suppress, k=1)
    # Only rows that mark something can change the outcome; skip the rest without Python work.
    for i in np.flatnonzero(rows.any(axis=1)):
        if keep[i]:
            keep &= ~rows[i]
    return keep


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Visit boxes by decreasing score; keep a box unless a kept box has IoU > ``iou_threshold``
    with it. Sorted boxes are resolved in blocks of 1024: first against every box kept from the
    earlier blocks (one vectorised IoU), then among themselves with a greedy pass over the
    block's boolean "IoU > t" matrix. Exact: identical to the one-pair-at-a-time loop.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``, no NaN.
        iou_threshold: suppress when IoU is strictly greater than this.

    Returns:
        ``(K,)`` int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    boxes, scores = _check_inputs(boxes, scores, iou_threshold)
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_boxes = boxes[order]
    kept_pos: list[Tensor] = []
    kept_boxes = sorted_boxes[:0]
    for start in range(0, n, _BLOCK):
        block = sorted_boxes[start:start + _BLOCK]
        alive = torch.ones(block.shape[0], dtype=torch.bool, device=boxes.device)
        for c in range(0, kept_boxes.shape[0], _KEPT_CHUNK):
            iou = box_iou(block, kept_boxes[c:c + _KEPT_CHUNK])
            alive &= ~(iou > iou_threshold).any(dim=1)
        cand = torch.nonzero(alive).squeeze(1)
        if cand.numel() == 0:
            continue
        cb = block[cand]
        within = (box_iou(cb, cb) > iou_threshold).cpu().numpy()
        survivors = cand[torch.from_numpy(_greedy_upper(within)).to(cand.device)]
        kept_pos.append(survivors + start)
        kept_boxes = torch.cat([kept_boxes, block[survivors]])
    return order[torch.cat(kept_pos)] if kept_pos else order[:0]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes with different ``idxs`` never suppress each other.

    Each class is moved to its own region by the coordinate-offset trick,
    ``box + idx · (max − min + 1)`` on all four coordinates (torchvision offsets by
    ``max + 1``, which separates classes only when coordinates are non-negative), then one
    :func:`nms` runs. Large offsets cost float precision: with float32 boxes, many classes and
    large coordinates, an IoU within about 1e-6 of the threshold may round the other way.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        idxs: ``(N,)`` integer class (or image) index of each box.
        iou_threshold: suppress when IoU is strictly greater than this.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, by decreasing score.
    """
    boxes, scores = _check_inputs(boxes, scores, iou_threshold)
    if not isinstance(idxs, Tensor) or idxs.shape != scores.shape:
        shape = tuple(idxs.shape) if isinstance(idxs, Tensor) else type(idxs).__name__
        raise DetectionError(f"expected idxs of shape ({scores.shape[0]},), got {shape}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    offsets = idxs.to(boxes.dtype) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             score_threshold: float = 0.001, method: str = "linear") -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al., ICCV 2017, Algorithm 1): decay overlapping scores, don't drop.

    Repeatedly select the remaining box M with the highest (current) score, then rescale every
    remaining box i with o = IoU(M, b_i):

    - ``linear`` (eq. 2): ``s_i ← s_i (1 − o)`` if ``o ≥ iou_threshold`` (N_t), else unchanged;
    - ``gaussian`` (eq. 3): ``s_i ← s_i exp(−o² / σ)`` for all i (``iou_threshold`` unused).

    Boxes whose score falls below ``score_threshold`` are discarded. Equal scores: the lower
    index is selected first. O(N²) time; meant for the few hundred boxes left after a detector's
    score filter.

    Returns:
        ``(keep, new_scores)``: ``(K,)`` int64 indices in selection order and ``(K,)`` their
        scores at selection (non-increasing).
    """
    boxes, scores = _check_inputs(boxes, scores, iou_threshold)
    if method not in ("linear", "gaussian"):
        raise DetectionError(f"expected method 'linear' or 'gaussian', got {method!r}")
    if method == "gaussian" and not sigma > 0:
        raise DetectionError(f"expected sigma > 0, got {sigma!r}")
    s = scores.to(boxes.dtype).clone()
    alive = s >= score_threshold
    keep, kept_scores = [], []
    while bool(alive.any()):
        masked = torch.where(alive, s, torch.full_like(s, -math.inf))
        m = int(torch.argmax(masked))  # first maximum: lower index wins ties
        keep.append(m)
        kept_scores.append(s[m])
        alive[m] = False
        o = box_iou(boxes[m:m + 1], boxes)[0].nan_to_num(0.0)
        if method == "linear":
            decay = torch.where(o >= iou_threshold, 1 - o, torch.ones_like(o))
        else:
            decay = torch.exp(-(o * o) / sigma)
        s = torch.where(alive, s * decay, s)
        alive &= s >= score_threshold
    idx = torch.tensor(keep, dtype=torch.int64, device=boxes.device)
    new_scores = torch.stack(kept_scores) if kept_scores else s[:0]
    return idx, new_scores
