"""RoI feature extraction: RoIAlign, RoIPool, FPN level assignment and multi-scale RoIAlign.

Boxes are xyxy in image pixels; ``spatial_scale`` maps them onto the feature map
(``1 / stride``). A feature pixel ``(i, j)`` holds the value at the continuous point
``(x, y) = (j, i)`` when ``aligned=False`` (the legacy convention of Fast/Mask R-CNN code) and at
the pixel centre ``(j + 0.5, i + 0.5)`` when ``aligned=True``, i.e. aligned RoIs are shifted by
−0.5 feature pixel before sampling (Detectron2's fix of the half-pixel misalignment).

**RoIAlign** (He et al., Mask R-CNN, ICCV 2017, §3 "RoIAlign"). The RoI
``(x₁, y₁, x₂, y₂) · spatial_scale − offset`` is split into ``oh × ow`` bins of size
``b_h = h_roi / oh``, ``b_w = w_roi / ow`` (``h_roi``, ``w_roi`` at least 1 when
``aligned=False``). Bin ``(p, q)`` averages ``g_h · g_w`` bilinear samples at

    y = y₁ + p·b_h + (i + ½)·b_h / g_h,   x = x₁ + q·b_w + (j + ½)·b_w / g_w,

with ``g = sampling_ratio`` if it is positive, else ``g_h = ⌈b_h⌉``, ``g_w = ⌈b_w⌉`` (an empty grid
gives 0). Boundary handling is the torchvision/Detectron2 kernel's: a sample with ``y < −1``,
``y > H``, ``x < −1`` or ``x > W`` contributes 0 (it still counts in the average); otherwise
``y ≤ 0`` is moved to 0 and ``y ≥ H − 1`` reads row ``H − 1`` only (the same for x). The
result is linear in the features; it is computed as one weighted gather-sum
(``F.embedding_bag`` over channels-last features), so autograd gives the kernel's gradient. The
interpolation is separable: the bag of a bin is the product of a row list and a column list.

**RoIPool** (Girshick, Fast R-CNN, ICCV 2015, §2.1). Box corners are rounded half away from zero
after scaling, the RoI spans ``max(x₂ − x₁ + 1, 1)`` pixels, and bin ``p`` covers rows
``⌊p·b_h⌋ … ⌈(p+1)·b_h⌉ − 1`` offset by y₁ and clipped to the map; the output is the bin's max
(0 for an empty bin) and the gradient goes to the first maximum in row-major order.

Both match ``torchvision.ops.roi_align`` / ``roi_pool`` (float rounding aside); no gradient flows
to the boxes. NaN features are not supported by :func:`roi_pool`.

References:
    Girshick, "Fast R-CNN", ICCV 2015, §2.1 (RoI pooling).
    He, Gkioxari, Dollár, Girshick, "Mask R-CNN", ICCV 2017, §3.
    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017, eq. (1).
    Wu et al., Detectron2 (2019), ``ROIAlign(aligned=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from foveal.detection.boxes import box_area
from foveal.errors import DetectionError

__all__ = ["MultiScaleRoIAlign", "assign_fpn_levels", "roi_align", "roi_pool"]

_CHUNK_ENTRIES = 1 << 22  # (bin, sample) pairs built at once by roi_align
_CHUNK_VALUES = 1 << 20  # gathered feature values per roi_pool chunk (cache-sized)
_FLT_MAX = 3.4028234663852886e38  # roi_pool's initial maximum, as the C++ kernel's -FLT_MAX


def _pair(output_size: object) -> tuple[int, int]:
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        output_size = (output_size, output_size)
    if (not isinstance(output_size, Sequence) or len(output_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                       for v in output_size)):
        raise DetectionError(f"expected output_size to be a positive int or two positive ints, "
                             f"got {output_size!r}")
    return int(output_size[0]), int(output_size[1])


def _check_features(input: object) -> Tensor:
    if not isinstance(input, Tensor) or input.ndim != 4 or not input.is_floating_point():
        what = (f"{input.dtype} tensor of shape {tuple(input.shape)}" if isinstance(input, Tensor)
                else type(input).__name__)
        raise DetectionError(f"expected input to be a floating (N, C, H, W) tensor, got {what}")
    return input


def _boxes_to_rois(boxes: object, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(K, 5)`` rois ``[batch_index, x1, y1, x2, y2]`` from either accepted form, detached."""
    if isinstance(boxes, Tensor):
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise DetectionError(f"expected boxes as a (K, 5) tensor [batch_index, x1, y1, x2, "
                                 f"y2] or a list of (K_i, 4) tensors, got shape "
                                 f"{tuple(boxes.shape)}")
        rois = boxes
    elif isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.ndim != 2 or b.shape[1] != 4:
                what = f"shape {tuple(b.shape)}" if isinstance(b, Tensor) else type(b).__name__
                raise DetectionError(f"expected boxes[{i}] to be a (K_i, 4) tensor, got {what}")
        parts = [torch.cat([torch.full_like(b[:, :1], i, dtype=dtype, device=device),
                            b.to(device=device, dtype=dtype)], dim=1)
                 for i, b in enumerate(boxes)]
        rois = torch.cat(parts) if parts else torch.zeros(0, 5, dtype=dtype, device=device)
    else:
        raise DetectionError(f"expected boxes as a (K, 5) tensor or a list of (K_i, 4) tensors, "
                             f"got {type(boxes).__name__}")
    rois = rois.detach().to(device=device, dtype=dtype)
    if not torch.isfinite(rois).all():
        bad = int((~torch.isfinite(rois)).any(1).sum())
        raise DetectionError(f"expected finite box coordinates, got {bad} rois with NaN or inf")
    return rois


def _batch_index(rois: Tensor, n: int) -> Tensor:
    batch = rois[:, 0].long()  # truncation, as the kernels' int cast
    if rois.shape[0] and (int(batch.min()) < 0 or int(batch.max()) >= n):
        raise DetectionError(f"expected roi batch indices in [0, {n - 1}], got values in "
                             f"[{int(batch.min())}, {int(batch.max())}]")
    return batch


def _chunks(cost: Tensor, key: Tensor, budget: int) -> list[Tensor | None]:
    """Group items (RoIs, or bins) of equal ``key`` and cut each group so that
    ``rows · max cost ≤ budget``.

    Returns index tensors into the items, or ``[None]`` when one chunk holds every item in order.
    """
    keys = torch.unique(key)
    out: list[Tensor | None] = []
    for value in keys.tolist():
        idx = torch.nonzero(key == value).squeeze(1)
        step = max(budget // max(int(cost[idx].max()), 1), 1)
        if len(keys) == 1 and step >= key.shape[0]:
            return [None]
        out.extend(idx[s:s + step] for s in range(0, idx.shape[0], step))
    return out


def _empty_like_pool(flat: Tensor, *shape: int) -> Tensor:
    """Zeros of ``shape`` that stay on ``flat``'s autograd graph (an empty sum is exactly 0)."""
    return flat.new_zeros(shape) + flat[:0].sum()


def _axis_taps(start: Tensor, bin_size: Tensor, grid: Tensor, bins: int, size: int,
               dense: bool) -> tuple[Tensor, Tensor]:
    """Pixel indices and bilinear weights along one axis for every bin of every RoI.

    Sample ``i`` of bin ``p`` sits at ``start + p·bin + (i + ½)·bin / grid`` (the kernel's order
    of operations) and reads pixels ``low`` and ``high`` with weights ``(1 − l) / g`` and
    ``l / g``.
    Returns ``(index, weight)`` of shape ``(k, bins, taps)``: ``taps = 2·max(grid)`` (one pair
    per sample) or, when ``dense``, ``taps = size`` (the weights summed per pixel).
    """
    k, dtype, device = start.shape[0], start.dtype, start.device
    g_max = max(int(grid.max()), 1) if k else 1
    p = torch.arange(bins, dtype=dtype, device=device)[None, :, None]
    i = torch.arange(g_max, device=device)[None, None, :]
    g = grid.clamp(min=1).to(dtype)[:, None, None]
    s, b = start[:, None, None], bin_size[:, None, None]
    pos = (s + p * b) + (i.to(dtype) + 0.5) * b / g
    valid = (i < grid[:, None, None]) & (pos >= -1) & (pos <= size)
    y = pos.clamp(0, size)  # the kernel's "if (y <= 0) y = 0"
    low = y.floor().long()
    edge = low >= size - 1
    low = torch.where(edge, size - 1, low)
    high = torch.where(edge, size - 1, low + 1)
    frac = torch.where(edge, 0.0, y - low.to(dtype))
    zero = torch.zeros((), dtype=dtype, device=device)
    index = torch.stack((low, high), dim=-1).flatten(2)
    # 1/g here makes the product of the two axes' weights carry the bin's 1/(g_h·g_w)
    weight = torch.stack((torch.where(valid, (1 - frac) / g, zero),
                          torch.where(valid, frac / g, zero)), dim=-1).flatten(2)
    if not dense:
        return index, weight
    summed = torch.zeros(k, bins, size, dtype=dtype, device=device).scatter_add_(2, index, weight)
    return torch.arange(size, device=device).expand(k, bins, size), summed


def roi_align(input: Tensor, boxes: Tensor | Sequence[Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> Tensor:
    """RoIAlign: average of bilinear samples on a regular grid in each output bin.

    Args:
        input: ``(N, C, H, W)`` floating features.
        boxes: ``(K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``, or a list of ``N`` tensors
            ``(K_i, 4)`` xyxy (image ``i``'s boxes), in image pixels.
        output_size: ``oh`` or ``(oh, ow)``.
        spatial_scale: feature pixels per image pixel (``1 / stride``).
        sampling_ratio: samples per bin along each axis; ``<= 0`` means ``⌈roi_size / out⌉``
            per RoI and axis.
        aligned: shift the scaled boxes by −0.5 (pixel-centre convention) and keep RoIs
            smaller than one pixel as they are; ``False`` stretches them to 1 × 1.

    Returns:
        ``(K, C, oh, ow)`` in ``input``'s dtype and device, rows in box order; differentiable
        with respect to ``input``.
    """
    input = _check_features(input)
    oh, ow = _pair(output_size)
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise DetectionError(f"expected sampling_ratio to be an int, got {sampling_ratio!r}")
    n, c, height, width = input.shape
    dtype, device = input.dtype, input.device
    rois = _boxes_to_rois(boxes, dtype, device)
    batch = _batch_index(rois, n)
    k = rois.shape[0]
    if k == 0 or height == 0 or width == 0:
        return _empty_like_pool(input.reshape(-1, c), k, c, oh, ow)

    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    roi_w = (rois[:, 3] * spatial_scale - offset) - x1
    roi_h = (rois[:, 4] * spatial_scale - offset) - y1
    if not aligned:  # malformed RoIs become 1 × 1
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    bin_h, bin_w = roi_h / oh, roi_w / ow
    if sampling_ratio > 0:
        grid_h = torch.full((k,), sampling_ratio, dtype=torch.int64, device=device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(bin_h).clamp(min=0).long()
        grid_w = torch.ceil(bin_w).clamp(min=0).long()
    # Along an axis a bin needs 2·g taps, or the whole axis once g gets larger than that.
    taps_h = torch.minimum(2 * grid_h, torch.full_like(grid_h, height))
    taps_w = torch.minimum(2 * grid_w, torch.full_like(grid_w, width))
    cost = torch.maximum(oh * ow * taps_h * taps_w, 2 * (oh * grid_h + ow * grid_w))
    # Group RoIs by the power of two above their tap counts so padding stays below 4×.
    key = (torch.log2(taps_h.clamp(min=1).double()).ceil().long() * 64
           + torch.log2(taps_w.clamp(min=1).double()).ceil().long())
    flat = input.permute(0, 2, 3, 1).reshape(n * height * width, c)

    outs, order = [], []
    for idx in _chunks(cost, key, _CHUNK_ENTRIES):
        sel = slice(None) if idx is None else idx
        gh, gw = grid_h[sel], grid_w[sel]
        dense_h = 2 * int(gh.max()) > height
        dense_w = 2 * int(gw.max()) > width
        rows, wy = _axis_taps(y1[sel], bin_h[sel], gh, oh, height, dense_h)
        cols, wx = _axis_taps(x1[sel], bin_w[sel], gw, ow, width, dense_w)
        m = rows.shape[0]
        # bag of bin (p, q) = rows of bin p × columns of bin q, weights multiplied
        index = (batch[sel].view(m, 1, 1, 1, 1) * (height * width)
                 + rows.view(m, oh, 1, -1, 1) * width + cols.view(m, 1, ow, 1, -1))
        weight = wy.view(m, oh, 1, -1, 1) * wx.view(m, 1, ow, 1, -1)
        bags = F.embedding_bag(index.reshape(m * oh * ow, -1), flat,
                               per_sample_weights=weight.reshape(m * oh * ow, -1), mode="sum")
        outs.append(bags.view(m, oh, ow, c))
        if idx is not None:
            order.append(idx)
    out = outs[0] if len(outs) == 1 else torch.cat(outs)
    if order:
        out = out[torch.argsort(torch.cat(order))]
    return out.permute(0, 3, 1, 2).contiguous()


def _round_half_away(x: Tensor) -> Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` goes to even)."""
    whole = torch.trunc(x)
    frac = x - whole
    return whole + torch.where(frac.abs() >= 0.5, torch.sign(x), torch.zeros_like(x))


def _window_length(length: Tensor) -> Tensor:
    """Padded window length for a bin length: exact up to 4, then rounded up to a multiple of
    ``2^(⌊log₂(length − 1)⌋ − 2)`` (5, 6, 7, 8, 10, 12, 14, 16, 20, …), so windows are at most
    1.25× longer than their bins while few distinct window shapes occur."""
    step = 2 ** (torch.log2((length - 1).clamp(min=1).double()).floor().long() - 2).clamp(min=0)
    return torch.div(length + step - 1, step, rounding_mode="floor") * step


def _bin_max(flat: Tensor, first: Tensor, size_h: Tensor, size_w: Tensor, width: int,
             with_argmax: bool) -> tuple[Tensor, Tensor | None]:
    """The RoIPool kernel's max over rectangular bins of a channels-last pixel table.

    Args:
        flat: ``(P + 1, C)`` pixels of the ``(N, H, W)`` maps in row-major order, then a row
            of −inf (the padding pixel).
        first: ``(B,)`` flat index of each bin's top-left pixel.
        size_h, size_w: ``(B,)`` bin height and width in pixels (0 for an empty bin).
        width: ``W``, the flat-index step of one row.
        with_argmax: also return the position of each maximum.

    Returns:
        ``(B, C)`` maxima — 0 for an empty bin, −FLT_MAX where no value exceeds −FLT_MAX (the
        kernel's start value and strict ``>``) — and, when asked, ``(B, C)`` int64 flat index
        of the first maximum in row-major order (``P`` where there is none: the padding row).

    Bins sharing a padded window shape (see :func:`_window_length`) are gathered together as
    ``(bins, window, C)`` with the padding pointing at the −inf row, in chunks of about
    ``_CHUNK_VALUES`` values (small enough to stay in cache between the gather and the max).
    """
    bins, c, device = first.shape[0], flat.shape[1], flat.device
    none = flat.shape[0] - 1
    best = flat.new_empty(bins, c)
    argmax = torch.empty(bins, c, dtype=torch.int64, device=device) if with_argmax else None
    nonempty = (size_h > 0) & (size_w > 0)
    empty = torch.nonzero(~nonempty).squeeze(1)
    best.index_fill_(0, empty, 0)
    if argmax is not None:
        argmax.index_fill_(0, empty, none)
    live = torch.nonzero(nonempty).squeeze(1)
    if live.numel() == 0:
        return best, argmax
    win_h, win_w = _window_length(size_h[live]), _window_length(size_w[live])
    key = win_h * (int(win_w.max()) + 1) + win_w
    for part in _chunks(win_h * win_w * c, key, _CHUNK_VALUES):
        idx = live if part is None else live[part]
        at = 0 if part is None else int(part[0])
        wh, ww = int(win_h[at]), int(win_w[at])
        m, s = idx.shape[0], wh * ww
        i = torch.arange(wh, device=device).view(1, wh, 1)
        j = torch.arange(ww, device=device).view(1, 1, ww)
        inside = (i < size_h[idx].view(m, 1, 1)) & (j < size_w[idx].view(m, 1, 1))
        pixel = torch.where(inside, first[idx].view(m, 1, 1) + i * width + j, none).view(m, s)
        vals = flat.index_select(0, pixel.view(-1)).view(m, s, c)
        top = vals.amax(dim=1)
        if argmax is not None:
            # The first maximum in row-major order is the slot equal to top with the largest
            # s − slot; column 0 of the table (no slot equal: NaN) is "no position".
            slot_dtype = torch.uint8 if s < 2 ** 8 else torch.int16 if s < 2 ** 15 else torch.int32
            rev = torch.arange(s, 0, -1, dtype=slot_dtype, device=device).view(1, s, 1)
            rank = ((vals == top[:, None]).view(torch.uint8) * rev).amax(dim=1)
            table = torch.cat([pixel.new_full((m, 1), none), pixel.flip(1)], dim=1)
            hit = table.gather(1, rank.long())
        # rare: values the kernel's "> −FLT_MAX" test skips (−inf, ≤ −FLT_MAX in float64)
        if top.numel() and not float(top.amin()) > -_FLT_MAX:
            if argmax is not None:
                hit.masked_fill_(~(top > -_FLT_MAX), none)
            top.clamp_(min=-_FLT_MAX)
        if argmax is not None:
            argmax[idx] = hit
        best[idx] = top
    return best, argmax


class _RoIPoolMax(torch.autograd.Function):
    """:func:`_bin_max` with the gradient of each output routed to its bin's first maximum."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, flat: Tensor, first: Tensor,
                size_h: Tensor, size_w: Tensor, width: int) -> Tensor:
        best, argmax = _bin_max(flat, first, size_h, size_w, width, with_argmax=True)
        ctx.save_for_backward(argmax)
        ctx.rows = flat.shape[0]
        return best

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        (argmax,) = ctx.saved_tensors
        grad_flat = grad.new_zeros(ctx.rows, grad.shape[1])
        # outputs without a maximum point at the padding row, whose gradient is dropped
        grad_flat.scatter_add_(0, argmax, grad)
        return grad_flat, None, None, None, None


def roi_pool(input: Tensor, boxes: Tensor | Sequence[Tensor], output_size: int | tuple[int, int],
             spatial_scale: float = 1.0) -> Tensor:
    """RoIPool: max over quantised bins (Fast R-CNN).

    With ``(x₁, y₁, x₂, y₂) = round(box · spatial_scale)`` (half away from zero),
    ``h_roi = max(y₂ − y₁ + 1, 1)`` and ``b_h = h_roi / oh``, bin ``p`` covers rows
    ``[y₁ + ⌊p·b_h⌋, y₁ + ⌈(p+1)·b_h⌉)`` clipped to ``[0, H]`` (columns likewise).

    Args:
        input: ``(N, C, H, W)`` floating features.
        boxes: ``(K, 5)`` ``[batch_index, x1, y1, x2, y2]`` or a list of ``(K_i, 4)`` xyxy.
        output_size: ``oh`` or ``(oh, ow)``.
        spatial_scale: feature pixels per image pixel.

    Returns:
        ``(K, C, oh, ow)``: each bin's maximum (0 for an empty bin); the gradient goes to the
        first maximal pixel of the bin in row-major order.

    All bins of all RoIs are pooled together (no loop over RoIs or bins): each bin gathers a
    padded window of pixels from channels-last features and takes the max over it; the gradient
    is scattered back to the recorded argmax.
    """
    input = _check_features(input)
    oh, ow = _pair(output_size)
    n, c, height, width = input.shape
    dtype, device = input.dtype, input.device
    rois = _boxes_to_rois(boxes, dtype, device)
    batch = _batch_index(rois, n)
    k = rois.shape[0]
    if k == 0 or height == 0 or width == 0:
        return _empty_like_pool(input.reshape(-1, c), k, c, oh, ow)

    corners = _round_half_away(rois[:, 1:] * spatial_scale).long()
    start_w, start_h = corners[:, 0], corners[:, 1]
    roi_w = (corners[:, 2] - start_w + 1).clamp(min=1)
    roi_h = (corners[:, 3] - start_h + 1).clamp(min=1)

    def bin_edges(start: Tensor, length: Tensor, bins: int, size: int) -> tuple[Tensor, Tensor]:
        b = (length.to(dtype) / bins)[:, None]
        p = torch.arange(bins, dtype=dtype, device=device)[None, :]
        lo = torch.floor(p * b).long() + start[:, None]
        hi = torch.ceil((p + 1) * b).long() + start[:, None]
        return lo.clamp(0, size), hi.clamp(0, size)

    h0, h1 = bin_edges(start_h, roi_h, oh, height)
    w0, w1 = bin_edges(start_w, roi_w, ow, width)
    first = (batch[:, None, None] * height + h0[:, :, None]) * width + w0[:, None, :]
    size_h = (h1 - h0).clamp(min=0)[:, :, None].expand(k, oh, ow)
    size_w = (w1 - w0).clamp(min=0)[:, None, :].expand(k, oh, ow)
    flat = torch.cat([input.permute(0, 2, 3, 1).reshape(n * height * width, c),
                      input.new_full((1, c), -math.inf)])
    args = (flat, first.reshape(-1), size_h.reshape(-1), size_w.reshape(-1), width)
    if torch.is_grad_enabled() and input.requires_grad:
        out = _RoIPoolMax.apply(*args)
    else:
        out, _ = _bin_max(*args, with_argmax=False)
    return out.view(k, oh, ow, c).permute(0, 3, 1, 2).contiguous()


def assign_fpn_levels(boxes: Tensor, k_min: int, k_max: int, canonical_scale: int = 224,
                      canonical_level: int = 4, eps: float = 1e-6) -> Tensor:
    """Pyramid level of each RoI, FPN paper eq. (1).

        k = ⌊k₀ + log₂(√(w·h) / 224) + ε⌋,   clamped to [k_min, k_max]

    with ``k₀ = canonical_level`` and ``224 = canonical_scale`` (the ImageNet pre-training size);
    ``ε`` keeps exact powers of two (``√(wh) = 112``) on their level despite float error in log₂.
    Boxes of zero or negative area go to ``k_min`` (torchvision leaves negative ones undefined).

    Args:
        boxes: ``(K, 4)`` xyxy in image pixels.
        k_min, k_max: the finest and coarsest available level (e.g. 2 and 5 for P2–P5).

    Returns:
        ``(K,)`` int64 in ``[0, k_max − k_min]``: the index of the level in the list of maps.
    """
    if not isinstance(boxes, Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
        what = f"shape {tuple(boxes.shape)}" if isinstance(boxes, Tensor) else type(boxes).__name__
        raise DetectionError(f"expected boxes of shape (K, 4), got {what}")
    if not (isinstance(k_min, int) and isinstance(k_max, int) and k_min <= k_max):
        raise DetectionError(f"expected integer levels k_min <= k_max, got {k_min!r}, {k_max!r}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    s = torch.sqrt(box_area(boxes).clamp(min=0))
    levels = torch.floor(canonical_level + torch.log2(s / canonical_scale)
                         + torch.tensor(eps, dtype=s.dtype, device=s.device))
    levels = torch.clamp(levels, min=k_min, max=k_max)
    return levels.to(torch.int64) - k_min


def _infer_scale(feature: Tensor, image_size: tuple[int, int]) -> float:
    """``2^round(log₂(H_l / image_h))``, the level's scale as torchvision infers it (float32)."""
    approx = float(feature.shape[-2]) / float(image_size[0])
    return 2 ** float(torch.tensor(approx).log2().round())


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over a feature pyramid: each RoI is pooled from the level eq. (1) assigns it.

    Level ``l``'s scale is ``2^round(log₂(H_l / image_h))``; the finest and coarsest maps give
    ``k_min = −log₂ scale₀`` and ``k_max = −log₂ scale_last`` (torchvision's
    ``MultiScaleRoIAlign``, recomputed on every call rather than cached from the first one).
    With a single map every RoI is pooled from it.

    Args:
        output_size: ``oh`` or ``(oh, ow)``.
        sampling_ratio: as in :func:`roi_align` (2 in torchvision's detectors).
        canonical_scale, canonical_level: ``224`` and ``k₀ = 4`` of eq. (1).
        aligned: as in :func:`roi_align`; torchvision's poolers use ``False``.
    """

    def __init__(self, output_size: int | tuple[int, int] = 7, sampling_ratio: int = 2,
                 canonical_scale: int = 224, canonical_level: int = 4,
                 aligned: bool = False) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        self.aligned = aligned

    def _pool(self, feature: Tensor, rois: Tensor, scale: float) -> Tensor:
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio, self.aligned)

    def forward(self, features: Sequence[Tensor], boxes: Sequence[Tensor],
                image_size: tuple[int, int]) -> Tensor:
        """Pool every box from its level.

        Args:
            features: ``(N, C, H_l, W_l)`` maps, finest first, strides powers of two.
            boxes: ``N`` tensors ``(K_i, 4)`` xyxy in image pixels.
            image_size: ``(image_h, image_w)`` the boxes refer to (torchvision: the largest
                image size of the batch).

        Returns:
            ``(ΣK_i, C, oh, ow)``, rows in the order of the concatenated boxes.
        """
        if (not isinstance(features, Sequence) or len(features) == 0
                or not all(isinstance(f, Tensor) and f.ndim == 4 for f in features)):
            raise DetectionError("expected features to be a non-empty sequence of (N, C, H, W) "
                                 f"tensors, got {type(features).__name__}")
        if (not isinstance(image_size, Sequence) or len(image_size) != 2
                or not all(isinstance(v, int) and v >= 1 for v in image_size)):
            raise DetectionError(f"expected image_size to be two positive ints, got "
                                 f"{image_size!r}")
        n = features[0].shape[0]
        if not isinstance(boxes, (list, tuple)) or len(boxes) != n:
            got = len(boxes) if isinstance(boxes, (list, tuple)) else type(boxes).__name__
            raise DetectionError(f"expected a list of {n} box tensors (one per image), got {got}")
        first = features[0]
        rois = _boxes_to_rois(boxes, first.dtype, first.device)
        scales = [_infer_scale(f, image_size) for f in features]
        if len(features) == 1:
            return self._pool(first, rois, scales[0])
        k_min = int(-torch.log2(torch.tensor(scales[0], dtype=torch.float32)).item())
        k_max = int(-torch.log2(torch.tensor(scales[-1], dtype=torch.float32)).item())
        levels = assign_fpn_levels(rois[:, 1:], k_min, k_max, self.canonical_scale,
                                   self.canonical_level)
        result = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, scales, strict=True)):
            idx = torch.nonzero(levels == level).squeeze(1)
            result = result.index_copy(0, idx, self._pool(feature, rois[idx], scale))
        return result
