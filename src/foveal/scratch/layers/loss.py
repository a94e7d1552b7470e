"""Loss layers: thin Modules over :mod:`foveal.scratch.ops.loss`, with torch's argument names.

Configuration is keyword-only (torch's leading positional arguments are the deprecated
``size_average``/``reduce`` or per-class ``weight``, which we do not support), except for
:class:`TripletMarginLoss`, whose leading arguments are torch's. Only
:class:`BCEWithLogitsLoss` has state: ``pos_weight`` is a buffer, as in torch, so its
``state_dict`` round-trips with ``nn.BCEWithLogitsLoss``.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.layers.module import Module
from foveal.scratch.ops import loss as L
from foveal.scratch.tensor import ArrayLike, Tensor


class _Loss(Module):
    def __init__(self, reduction: str) -> None:
        super().__init__()
        if reduction not in L.REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {L.REDUCTIONS}, got "
                f"{reduction!r}"
            )
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) against labels (N,), with label smoothing."""

    def __init__(self, *, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: ArrayLike) -> Tensor:
        return L.cross_entropy(logits, target, self.label_smoothing, self.reduction)


class MulticlassHingeLoss(_Loss):
    """``Σ_{j≠y} max(0, s_j − s_y + margin)`` per sample: torch's ``MultiMarginLoss`` times C."""

    def __init__(self, margin: float = 1.0, *, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def forward(self, scores: Tensor, target: ArrayLike) -> Tensor:
        return L.multiclass_hinge(scores, target, self.margin, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy; ``pos_weight`` (broadcast along the last axis) is a
    buffer."""

    def __init__(self, *, reduction: str = "mean", pos_weight: ArrayLike | None = None) -> None:
        super().__init__(reduction)
        self.pos_weight: np.ndarray | None = None
        if pos_weight is not None:
            value = pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight
            self.register_buffer("pos_weight", np.asarray(value))

    def forward(self, logits: Tensor, target: ArrayLike) -> Tensor:
        return L.binary_cross_entropy_with_logits(logits, target, self.pos_weight,
                                                  self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``(x − t)²``."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return L.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Absolute error ``|x − t|``."""

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return L.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, linear above."""

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return L.smooth_l1_loss(input, target, self.beta, self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, d(a, p) − d(a, n) + margin)`` with ``d(u, v) = ‖u − v + eps‖_p``."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, *, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return L.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                     self.swap, self.reduction)
