"""Descriptor matching: nearest neighbours, the mutual check and Lowe's ratio test, on torch.

For query descriptors ``a₁ … a_N`` (``d1``) and candidates ``b₁ … b_M`` (``d2``), the nearest
neighbour of ``aᵢ`` is ``j*(i) = argminⱼ δ(aᵢ, bⱼ)`` and ``δ₁(i) ≤ δ₂(i)`` are its two smallest
distances. Three filters, each optional, all applied in the ``d1 → d2`` direction:

- **mutual** (cross-check): keep ``(i, j*)`` only if ``i`` is also the nearest neighbour of
  ``b_{j*}`` among all of ``d1``: ``argminₖ δ(aₖ, b_{j*}) = i``.
- **ratio test** (Lowe 2004, §7.1): keep ``(i, j*)`` only if ``δ₁(i) < r · δ₂(i)``: the best
  match must be clearly better than the runner-up, which is what an ambiguous (repeated
  texture) or unmatched (occluded) keypoint fails. Lowe uses ``r = 0.8`` on Euclidean
  distances, rejecting 90 % of false matches while losing < 5 % of correct ones (his Fig. 11).
- **max_distance**: keep ``δ₁(i) ≤ max_distance``.

The ratio test pitfall: ``δ`` is the Euclidean distance ``‖a − b‖₂``, not its square.
``δ₁² < r · δ₂²`` is the test ``δ₁ < √r · δ₂``: with ``r = 0.8`` it is a ratio of 0.894 on
distances, looser than Lowe's, and lets ambiguous matches through. Libraries that return
squared distances (FLANN, faiss) invite it; here the test is applied to ``δ``.

Distances. For ``metric="l2"`` the matrix of squared distances comes from one matrix product,
``δ²(a, b) = ‖a‖² + ‖b‖² − 2 aᵀb``, in the descriptors' precision (float32, or float64 for
float64 input); on OpenCV's SIFT, whose entries are integers ≤ 255, every term is an integer
below 2²⁴ and float32 is exact. The distances returned (and ratio-tested) are recomputed as
``‖a − b‖₂`` in float64 for the pairs kept, so they carry no cancellation error. For
``metric="hamming"`` (binary descriptors packed in uint8 bytes, such as ORB's 32 bytes) the bits
are unpacked to signs ``s, t ∈ {−1, +1}ᴷ`` and ``δ_H = (K − sᵀt) / 2``, again one exact
matrix product.

Memory: ``d1`` is processed in blocks of ``block_size`` rows, so at most ``block_size × M``
distances exist at once (about 64 MiB of float32 by default); 10 000 × 10 000 SIFT matches on a
CPU in a second or so and in a few hundred MiB.

Ties: the nearest neighbour is the lowest index among equal distances, in both directions (as
``cv2.BFMatcher``). A tie between best and second best fails the ratio test (``δ₁ < r δ₁`` is
false for ``r ≤ 1``); with the ratio test off the lower index wins.

Device: NumPy inputs are matched on the CPU and NumPy arrays come back; torch tensors are
matched on their device (the GPU if they are there) and tensors on that device come back. With
TF32 matrix products enabled (``torch.backends.cuda.matmul.allow_tf32``) SIFT and Hamming
products stay exact (their entries have at most 8 significant bits); RootSIFT's ranking then
carries ~10⁻³ relative error.

Reference: D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
2004, §7.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
import torch

from foveal.errors import GeometryError

# Distance-matrix entries alive at once when block_size is not given (64 MiB of float32).
_BLOCK_ELEMENTS = 1 << 24


class Matches(NamedTuple):
    """Matched index pairs and their distances, ordered by the ``d1`` index.

    Attributes:
        pairs: ``(M, 2)`` int64, row ``(i, j)`` matches ``d1[i]`` with ``d2[j]``.
        distances: ``(M,)`` float64 ``δ(d1[i], d2[j])``: Euclidean for ``"l2"`` (not squared),
            the number of differing bits for ``"hamming"``.
    """

    pairs: np.ndarray | torch.Tensor
    distances: np.ndarray | torch.Tensor


def _tensor(d: np.ndarray | torch.Tensor, op: str, name: str,
            device: torch.device) -> torch.Tensor:
    if isinstance(d, torch.Tensor):
        t = d.detach().to(device)
    else:
        try:
            t = torch.from_numpy(np.ascontiguousarray(d)).to(device)
        except TypeError:
            raise GeometryError(f"{op}: expected {name} as a NumPy array or torch tensor of "
                                f"descriptors, got {type(d).__name__}") from None
    if t.ndim != 2:
        raise GeometryError(f"{op}: expected {name} of shape (N, D), got {tuple(t.shape)}")
    return t


def _hamming_signs(d: torch.Tensor) -> torch.Tensor:
    """uint8 bytes ``(N, B)`` → their ``8B`` bits as ±1 float32 (bit order is irrelevant)."""
    shifts = torch.arange(8, device=d.device, dtype=torch.uint8)
    bits = (d.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(d.shape[0], -1).to(torch.float32) * 2 - 1


def _direct_distances(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    """``δ(aₖ, bₖ)`` row by row, in float64 without cancellation."""
    if metric == "hamming":
        return (a != b).sum(dim=1).to(torch.float64)  # a, b are ±1 signs: one per differing bit
    return torch.linalg.vector_norm(a.to(torch.float64) - b.to(torch.float64), dim=1)


def _number(value: float | None, op: str, name: str, expected: str,
            ok: Callable[[float], bool]) -> float | None:
    """An optional real option checked by ``ok`` (``None`` passes)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not ok(v):  # NaN fails every comparison
        raise GeometryError(f"{op}: expected {name} {expected} or None, got {value!r}")
    return v


def match_descriptors(d1: np.ndarray | torch.Tensor, d2: np.ndarray | torch.Tensor, *,
                      ratio: float | None = 0.8, mutual: bool = True,
                      metric: Literal["l2", "hamming"] = "l2", max_distance: float | None = None,
                      block_size: int | None = None) -> Matches:
    """Match each row of ``d1`` to its nearest neighbour in ``d2``, then filter.

    Args:
        d1: ``(N, D)`` query descriptors (float for ``"l2"``, uint8 packed bits for
            ``"hamming"``), a NumPy array or a torch tensor.
        d2: ``(M, D)`` candidate descriptors, same kind and width as ``d1``.
        ratio: Lowe's ratio ``r`` in (0, 1]: keep ``δ₁ < r · δ₂`` on distances (not squared
            distances). ``None`` turns the test off. With ``M = 1`` there is no runner-up and
            the test passes.
        mutual: keep only mutual nearest neighbours (``cv2.BFMatcher(crossCheck=True)``).
        metric: ``"l2"`` (Euclidean; SIFT, RootSIFT) or ``"hamming"`` (ORB, BRIEF).
        max_distance: keep ``δ₁ ≤ max_distance`` (``None``: no limit).
        block_size: rows of ``d1`` per block (``None``: as many as fit 2²⁴ distances).

    Returns:
        :class:`Matches` ``(pairs, distances)`` sorted by ``i``: int64 ``(K, 2)`` pairs and
        float64 ``(K,)`` distances, NumPy arrays for NumPy input, tensors on the input's device
        for tensor input. Each ``i`` appears at most once; with ``mutual`` each ``j`` too.

    Raises:
        GeometryError: shapes or dtypes that do not fit the metric, NaN, bad options.
    """
    op = "match_descriptors"
    as_numpy = not (isinstance(d1, torch.Tensor) or isinstance(d2, torch.Tensor))
    device = next((d.device for d in (d1, d2) if isinstance(d, torch.Tensor)),
                  torch.device("cpu"))
    a, b = _tensor(d1, op, "d1", device), _tensor(d2, op, "d2", device)
    if a.shape[1] != b.shape[1]:
        raise GeometryError(f"{op}: expected d1 and d2 of the same width D, got "
                            f"{tuple(a.shape)} and {tuple(b.shape)}")
    if metric not in ("l2", "hamming"):
        raise GeometryError(f"{op}: expected metric 'l2' or 'hamming', got {metric!r}")
    ratio = _number(ratio, op, "ratio", "in (0, 1]", lambda v: 0 < v <= 1)
    max_distance = _number(max_distance, op, "max_distance", "≥ 0", lambda v: v >= 0)
    if block_size is not None and (isinstance(block_size, bool)
                                   or not isinstance(block_size, (int, np.integer))
                                   or block_size < 1):
        raise GeometryError(f"{op}: expected block_size as an integer ≥ 1 or None, "
                            f"got {block_size!r}")
    if metric == "hamming":
        if a.dtype != torch.uint8 or b.dtype != torch.uint8:
            raise GeometryError(f"{op}: expected uint8 packed-bit descriptors for metric "
                                f"'hamming', got {a.dtype} and {b.dtype}")
        a, b = _hamming_signs(a), _hamming_signs(b)
    else:
        if a.dtype == torch.bool or b.dtype == torch.bool or a.is_complex() or b.is_complex():
            raise GeometryError(f"{op}: expected real descriptors for metric 'l2', got "
                                f"{a.dtype} and {b.dtype}")
        dtype = torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32
        a, b = a.to(dtype), b.to(dtype)
        for t, name in ((a, "d1"), (b, "d2")):
            if not bool(torch.isfinite(t).all()):
                bad = int((~torch.isfinite(t)).sum())
                raise GeometryError(f"{op}: expected finite {name}, got {bad} NaN or inf "
                                    f"value(s)")

    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        pairs = torch.zeros((0, 2), dtype=torch.int64, device=device)
        distances = torch.zeros(0, dtype=torch.float64, device=device)
        return Matches(pairs.cpu().numpy(), distances.cpu().numpy()) if as_numpy \
            else Matches(pairs, distances)

    best = torch.empty(n, dtype=torch.int64, device=device)
    second = torch.empty(n, dtype=torch.int64, device=device)
    col_cost = torch.full((m,), float("inf"), dtype=a.dtype, device=device)
    col_best = torch.zeros(m, dtype=torch.int64, device=device)
    two = ratio is not None and m > 1
    rows = block_size or max(1, _BLOCK_ELEMENTS // m)
    b_sq = (b * b).sum(dim=1)  # for ±1 signs this is K, the number of bits
    for start in range(0, n, rows):
        block = a[start:start + rows]
        # one matrix product and in-place updates: a single (rows, M) buffer per block
        if metric == "hamming":  # δ_H = (K − sᵀt) / 2
            cost = torch.addmm(b_sq.expand(len(block), m), block, b.T, beta=0.5, alpha=-0.5)
        else:  # δ² = ‖a‖² + ‖b‖² − 2aᵀb; ranking by δ² is ranking by δ
            cost = torch.addmm(b_sq.expand(len(block), m), block, b.T, alpha=-2)
            cost.add_((block * block).sum(dim=1, keepdim=True)).clamp_min_(0)
        if mutual:
            # argmin takes the first row of the block on ties, strict < the earlier block
            idx = torch.argmin(cost, dim=0)
            val = cost.gather(0, idx[None]).squeeze(0)
            better = val < col_cost
            col_cost = torch.where(better, val, col_cost)
            col_best = torch.where(better, idx + start, col_best)
        j = torch.argmin(cost, dim=1)
        best[start:start + rows] = j
        if two:
            second[start:start + rows] = torch.argmin(cost.scatter_(1, j[:, None], float("inf")),
                                                      dim=1)

    i = torch.arange(n, device=device)
    distance = _direct_distances(a, b[best], metric)
    keep = torch.ones(n, dtype=torch.bool, device=device)
    if mutual:
        keep &= col_best[best] == i
    if two:
        keep &= distance < ratio * _direct_distances(a, b[second], metric)
    if max_distance is not None:
        keep &= distance <= max_distance
    pairs = torch.stack([i[keep], best[keep]], dim=1)
    if as_numpy:
        return Matches(pairs.cpu().numpy(), distance[keep].cpu().numpy())
    return Matches(pairs, distance[keep])
