"""Anchor boxes for region proposal networks, FPN and RetinaNet: cell templates tiled over a grid.

A *cell* holds ``A = len(sizes) · len(aspect_ratios)`` zero-centred boxes. For size ``s`` and
aspect ratio ``r = h / w`` the box keeps the area ``s²``:

    h = s · √r,   w = s / √r,   anchor = round((−w/2, −h/2, w/2, h/2))

ordered aspect-ratio-major, size-minor, and rounded half to even (``torch.round``), exactly as
torchvision's ``AnchorGenerator.generate_anchors``. A feature map of ``H × W`` cells with stride
``(s_y, s_x)`` shifts the cell by ``(j·s_x, i·s_y)`` for cell ``(i, j)`` (the top-left corner of the
cell's receptive stride, no half-stride offset); anchors are listed position-major (row ``i``,
then column ``j``), anchor-minor, the order a ``(N, A·k, H, W)`` head output takes after
``permute(0, 2, 3, 1).reshape(N, -1, k)``.

References:
    Ren et al., "Faster R-CNN", NeurIPS 2015, §3.1.1 (anchors: 3 scales × 3 aspect ratios).
    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017, §4.1 (one size per
    level, 32² … 512² on P2 … P6).
    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, §4 (RetinaNet: sizes
    2^0, 2^(1/3), 2^(2/3) times the level's base size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from foveal.errors import DetectionError

__all__ = ["AnchorGenerator", "cell_anchors", "grid_anchors"]


def _positive_numbers(values: object, name: str) -> tuple[float, ...]:
    """Return ``values`` as a non-empty tuple of finite positive floats, or raise DetectionError."""
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) == 0:
        raise DetectionError(f"expected {name} to be a non-empty sequence of numbers, "
                             f"got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise DetectionError(f"expected {name} to hold finite positive numbers, got {v!r}")
        out.append(float(v))
    return tuple(out)


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float],
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """The zero-centred anchors of one cell.

    Args:
        sizes: anchor sides ``s`` (square root of the area), in pixels.
        aspect_ratios: ``r = h / w``.
        dtype: the floating dtype the anchors are computed and rounded in.

    Returns:
        ``(A, 4)`` xyxy with ``A = len(aspect_ratios) · len(sizes)``; row ``a · len(sizes) + k``
        is aspect ratio ``a``, size ``k``: ``round((−w/2, −h/2, w/2, h/2))`` with
        ``h = s_k √r_a``, ``w = s_k / √r_a``.
    """
    scales = torch.as_tensor(_positive_numbers(sizes, "sizes"), dtype=dtype)
    ratios = torch.as_tensor(_positive_numbers(aspect_ratios, "aspect_ratios"), dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def _int_pair(value: object, name: str, minimum: int) -> tuple[int, int]:
    if (not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                       for v in value)):
        raise DetectionError(f"expected {name} to be two integers >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def grid_anchors(feature_size: tuple[int, int], stride: tuple[int, int], cell: Tensor) -> Tensor:
    """Tile one cell's anchors over a feature map.

    Anchor ``(i, j, a)`` is ``cell[a] + (j·s_x, i·s_y, j·s_x, i·s_y)``.

    Args:
        feature_size: ``(H, W)`` cells.
        stride: ``(s_y, s_x)`` pixels between neighbouring cells.
        cell: ``(A, 4)`` zero-centred anchors (see :func:`cell_anchors`).

    Returns:
        ``(H·W·A, 4)`` xyxy on ``cell``'s device and dtype, position-major (row-major over
        ``(i, j)``), anchor-minor: row ``(i·W + j)·A + a``.
    """
    height, width = _int_pair(feature_size, "feature_size", 0)
    stride_h, stride_w = _int_pair(stride, "stride", 1)
    if not isinstance(cell, Tensor) or cell.ndim != 2 or cell.shape[1] != 4:
        shape = tuple(cell.shape) if isinstance(cell, Tensor) else type(cell).__name__
        raise DetectionError(f"expected cell anchors of shape (A, 4), got {shape}")
    device = cell.device
    shifts_x = torch.arange(width, dtype=torch.int64, device=device) * stride_w
    shifts_y = torch.arange(height, dtype=torch.int64, device=device) * stride_h
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1).to(cell.dtype)
    return (shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4)


class AnchorGenerator(nn.Module):
    """Anchors for every level of a feature pyramid (torchvision's ``AnchorGenerator``).

    Level ``l`` uses ``sizes[l] × aspect_ratios[l]``; its stride is
    ``(image_h // H_l, image_w // W_l)``. The default is the FPN setting: one size per level
    (32 … 512 on P2 … P6) and three aspect ratios. A flat ``sizes`` such as ``(32, 64)`` means one
    size per level, and a flat ``aspect_ratios`` is shared by every level, as in torchvision.

    The cell anchors are computed once in float32 (as torchvision) and cast to the feature maps'
    dtype and device on each call; they are not part of the ``state_dict``.
    """

    def __init__(self,
                 sizes: Sequence[Sequence[float]] | Sequence[float] = (
                     (32,), (64,), (128,), (256,), (512,)),
                 aspect_ratios: Sequence[Sequence[float]] | Sequence[float] = (
                     (0.5, 1.0, 2.0),) * 5) -> None:
        super().__init__()
        if not isinstance(sizes, Sequence) or len(sizes) == 0:
            raise DetectionError(f"expected sizes to be a non-empty sequence, got {sizes!r}")
        if not isinstance(aspect_ratios, Sequence) or len(aspect_ratios) == 0:
            raise DetectionError(f"expected aspect_ratios to be a non-empty sequence, "
                                 f"got {aspect_ratios!r}")
        if not isinstance(sizes[0], Sequence):
            sizes = tuple((s,) for s in sizes)  # type: ignore[union-attr]
        if not isinstance(aspect_ratios[0], Sequence):
            aspect_ratios = (aspect_ratios,) * len(sizes)  # type: ignore[assignment]
        if len(sizes) != len(aspect_ratios):
            raise DetectionError(f"expected one aspect_ratios entry per level ({len(sizes)} "
                                 f"levels of sizes), got {len(aspect_ratios)}")
        self.sizes = tuple(tuple(s) for s in sizes)  # type: ignore[arg-type]
        self.aspect_ratios = tuple(tuple(a) for a in aspect_ratios)  # type: ignore[arg-type]
        self.cell_anchors = [cell_anchors(s, a)
                             for s, a in zip(self.sizes, self.aspect_ratios, strict=True)]

    def num_anchors_per_location(self) -> list[int]:
        """``A_l = len(sizes[l]) · len(aspect_ratios[l])`` for each level."""
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios, strict=True)]

    def forward(self, image_size: tuple[int, int], feature_maps: Sequence[Tensor]) -> list[Tensor]:
        """Anchors of each level for an (padded) image of ``image_size``.

        Args:
            image_size: ``(image_h, image_w)`` of the (batched, padded) input.
            feature_maps: one ``(N, C_l, H_l, W_l)`` tensor per level, finest first.

        Returns:
            One ``(H_l·W_l·A_l, 4)`` xyxy tensor per level, in image pixels, on the feature
            maps' device and dtype; the same for every image of the batch.
        """
        image_h, image_w = _int_pair(image_size, "image_size", 1)
        if (not isinstance(feature_maps, Sequence)
                or not all(isinstance(f, Tensor) and f.ndim >= 2 for f in feature_maps)):
            raise DetectionError("expected feature_maps to be a sequence of (N, C, H, W) tensors, "
                                 f"got {type(feature_maps).__name__}")
        if len(feature_maps) != len(self.cell_anchors):
            raise DetectionError(f"expected {len(self.cell_anchors)} feature maps (one per level "
                                 f"of sizes), got {len(feature_maps)}")
        if not feature_maps:
            return []
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        out = []
        for fmap, cell in zip(feature_maps, self.cell_anchors, strict=True):
            h, w = int(fmap.shape[-2]), int(fmap.shape[-1])
            if h < 1 or w < 1 or h > image_h or w > image_w:
                raise DetectionError(f"expected a feature map of 1..{image_h} × 1..{image_w} "
                                     f"cells for image_size {(image_h, image_w)}, got {h} × {w}")
            stride = (image_h // h, image_w // w)
            out.append(grid_anchors((h, w), stride, cell.to(device=device, dtype=dtype)))
        return out
