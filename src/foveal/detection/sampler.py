"""Balanced sampling of positive and negative training examples (anchors, proposals).

An image yields thousands of anchors, nearly all background. Faster R-CNN (Ren et al. 2015,
Sec. 3.1.3) trains each image on a mini-batch of 256 anchors with up to half positives, padding
with negatives when there are fewer; the box head samples 512 proposals with up to 25 %
positives. Semantics are torchvision's ``BalancedPositiveNegativeSampler``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from foveal.errors import DetectionError

__all__ = ["sample_positive_negative"]


def _draw(candidates: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """``k`` of ``candidates`` uniformly without replacement (a random permutation's head)."""
    device = generator.device if generator is not None else candidates.device
    perm = torch.randperm(candidates.numel(), generator=generator, device=device)[:k]
    return candidates[perm.to(candidates.device)]


def sample_positive_negative(
    labels: Tensor,
    batch_size_per_image: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw a balanced mini-batch of positive and negative examples from one image.

        num_pos = min(⌊batch_size_per_image · positive_fraction⌋, #positives)
        num_neg = min(batch_size_per_image − num_pos, #negatives)

    then ``num_pos`` positives and ``num_neg`` negatives uniformly at random without
    replacement. Too few positives are made up with negatives, never the other way round.

    Args:
        labels: ``(P,)`` integer labels: ``>= 1`` foreground (1, or a class index), ``0``
            background, ``< 0`` ignored (e.g. :data:`~foveal.detection.matcher.BETWEEN_THRESHOLDS`).
        batch_size_per_image: examples to draw, ``>= 0``.
        positive_fraction: the largest share of positives, in ``[0, 1]``.
        generator: the random source (``None``: torch's global generator, as torchvision);
            on the CPU or on ``labels``' device.

    Returns:
        ``(pos_idx, neg_idx)``: int64 indices into ``labels`` on its device, in random order.
    """
    if not isinstance(labels, Tensor) or labels.ndim != 1:
        got = (f"shape {tuple(labels.shape)}" if isinstance(labels, Tensor)
               else type(labels).__name__)
        raise DetectionError(f"expected labels of shape (P,), got {got}")
    if labels.is_floating_point() or labels.is_complex():
        raise DetectionError(f"expected integer labels, got dtype {labels.dtype}")
    if isinstance(batch_size_per_image, bool) or not isinstance(batch_size_per_image, int) \
            or batch_size_per_image < 0:
        raise DetectionError(f"expected batch_size_per_image to be an int >= 0, got "
                             f"{batch_size_per_image!r}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise DetectionError(f"expected positive_fraction in [0, 1], got {positive_fraction!r}")
    positive = torch.nonzero(labels >= 1).flatten()
    negative = torch.nonzero(labels == 0).flatten()
    num_pos = min(int(batch_size_per_image * positive_fraction), positive.numel())
    num_neg = min(batch_size_per_image - num_pos, negative.numel())
    return _draw(positive, num_pos, generator), _draw(negative, num_neg, generator)
