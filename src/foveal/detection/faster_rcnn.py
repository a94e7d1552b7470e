"""Faster R-CNN with a Feature Pyramid Network (Ren et al., NeurIPS 2015; Lin et al., CVPR 2017).

    images (N, 3, H, W) ─► ResNet ─► FPN ─► [P2 … P6] ─► RPN ─► proposals
                                              [P2 … P5] + proposals ─► RoI heads ─► detections

The backbone and FPN are in :mod:`foveal.detection.fpn`, the region proposal network in
:mod:`foveal.detection.rpn`, the box head in :mod:`foveal.detection.roi_heads`. The four losses
are summed with unit weights (approximate joint training, Ren et al. Sec. 3.2):

    L = L_objectness + L_rpn_box_reg + L_classifier + L_box_reg.

Inputs are already normalised, ``(x/255 − mean)/std`` with the config's ``image_mean`` and
``image_std`` (see :meth:`FasterRCNN.normalize`), and all images of a batch share one size (the
data path resizes them). Boxes are xyxy pixels of that size; labels are 1..K (0 = background).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from foveal.detection.fpn import FPNBackbone
from foveal.detection.roi_heads import RoIHeads, RoIHeadsConfig
from foveal.detection.rpn import RegionProposalNetwork, RPNConfig
from foveal.errors import DetectionError

__all__ = ["LOSS_NAMES", "FasterRCNN", "FasterRCNNConfig"]

LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")


@dataclass(frozen=True)
class FasterRCNNConfig:
    """Everything that defines the detector's architecture and its train/test behaviour.

    The defaults suit 128-px images with objects of roughly 10–60 px: one anchor size per level
    from 16 px on P2 (stride 4) to 256 px on P6 (stride 64), three aspect ratios each. The
    pyramid has 32 channels (256 in the paper): the RPN head and the box head's first layer
    cost in proportion, and a handful of object classes does not need more.
    """

    num_classes: int
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    fpn_channels: int = 32
    norm: str = "batch"
    anchor_sizes: tuple[tuple[float, ...], ...] = ((16,), (32,), (64,), (128,), (256,))
    aspect_ratios: tuple[tuple[float, ...], ...] = ((0.5, 1.0, 2.0),) * 5
    representation_size: int = 256
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi_heads: RoIHeadsConfig = field(default_factory=RoIHeadsConfig)
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FasterRCNNConfig:
        """Inverse of :meth:`to_json` (lists become tuples again)."""
        try:
            doc = dict(doc)
            rpn = RPNConfig(**doc.pop("rpn", {}))
            roi = RoIHeadsConfig(**doc.pop("roi_heads", {}))
            for key in ("widths", "blocks", "image_mean", "image_std"):
                if key in doc:
                    doc[key] = tuple(doc[key])
            for key in ("anchor_sizes", "aspect_ratios"):
                if key in doc:
                    doc[key] = tuple(tuple(v) for v in doc[key])
            return cls(rpn=rpn, roi_heads=roi, **doc)
        except TypeError as exc:
            raise DetectionError(f"malformed detector config: {exc}") from exc

    def replace(self, **changes: Any) -> FasterRCNNConfig:
        return dataclasses.replace(self, **changes)


class FasterRCNN(nn.Module):
    """Faster R-CNN + FPN (see the module docstring).

    ``forward(images, targets=None)``:

    - training mode with ``targets`` (one ``{"boxes": (K, 4) xyxy, "labels": (K,) int64 in
      1..K}`` per image, K may be 0): the loss dict with :data:`LOSS_NAMES`;
    - otherwise: one ``{"boxes" (D, 4), "labels" (D,), "scores" (D,)}`` per image.
    """

    def __init__(self, config: FasterRCNNConfig) -> None:
        super().__init__()
        if config.num_classes < 1:
            raise DetectionError(f"expected num_classes >= 1, got {config.num_classes}")
        self.config = config
        self.backbone = FPNBackbone(config.widths, config.blocks, config.fpn_channels,
                                    config.norm)
        self.rpn = RegionProposalNetwork(config.fpn_channels, config.anchor_sizes,
                                         config.aspect_ratios, config.rpn)
        self.roi_heads = RoIHeads(config.fpn_channels, config.num_classes,
                                  config.representation_size, config.roi_heads)

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 ``(N, 3, H, W)`` (or floats in [0, 255]) → ``(x/255 − mean)/std``, float32."""
        mean = torch.tensor(self.config.image_mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.image_std, device=images.device).view(1, 3, 1, 1)
        return (images.float() / 255 - mean) / std

    def forward(self, images: Tensor, targets: Sequence[dict[str, Tensor]] | None = None
                ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise DetectionError(f"expected images of shape (N, 3, H, W), got {shape}")
        if not images.is_floating_point():
            raise DetectionError(f"expected normalised float images, got dtype {images.dtype}")
        if self.training and targets is None:
            raise DetectionError("expected targets in training mode, got None")
        if targets is not None:
            _check_targets(targets, images.shape[0])
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        features = self.backbone(images)
        gt_boxes = [t["boxes"] for t in targets] if targets is not None else None
        proposals, rpn_losses = self.rpn(features, image_size, gt_boxes)
        detections, roi_losses = self.roi_heads(features[:4], proposals, image_size,
                                                targets if self.training else None)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return detections


def _check_targets(targets: Sequence[dict[str, Tensor]], n: int) -> None:
    if len(targets) != n:
        raise DetectionError(f"expected one target per image ({n}), got {len(targets)}")
    for i, t in enumerate(targets):
        boxes, labels = t.get("boxes"), t.get("labels")
        if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
            shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
            raise DetectionError(f"targets[{i}]: expected boxes of shape (K, 4), got {shape}")
        if not isinstance(labels, Tensor) or labels.shape != boxes.shape[:1]:
            shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise DetectionError(f"targets[{i}]: expected labels of shape ({boxes.shape[0]},), "
                                 f"got {shape}")
        empty = ((boxes[:, 2:] - boxes[:, :2]) <= 0).any(1)
        if bool(empty.any()):
            raise DetectionError(f"targets[{i}]: expected boxes with x2 > x1 and y2 > y1, got "
                                 f"{boxes[empty][0].tolist()}")
