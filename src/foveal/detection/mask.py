"""Run-length encoded binary masks in the MS-COCO format, bit-exact with ``pycocotools.mask``.

An ``(H, W)`` mask is read in column-major (Fortran) order, so pixel ``(y, x)`` sits at flat
position ``p = x·H + y``, and stored as the lengths of its alternating runs, starting with a run
of zeros (which is 0 when the first pixel is set); the counts sum to ``H·W``. An RLE is a dict

* uncompressed: ``{"size": [H, W], "counts": [c0, c1, ...]}`` (ints), or
* compressed: ``{"size": [H, W], "counts": "<str>"}``, COCO's LEB128-like text: every count
  ``c_i`` (minus ``c_{i−2}`` from ``i = 3`` on, so runs of similar length give small numbers) is
  written as signed 5-bit groups, least significant first, one character ``48 + g`` per group
  with bit ``0x20`` set on every group but the last (characters ``'0'`` to ``'o'``).

Every function here returns compressed counts as ``str`` (JSON-ready); ``bytes`` are accepted
on input. Results equal those of pycocotools 2.0.11 (``maskApi.c``), computed with NumPy on run
boundaries instead of per-pixel loops:

* polygons follow ``rleFrPoly``: vertices are scaled by 5 and rounded (``(int)(5v + 0.5)``,
  truncation toward zero), each edge is walked one step per unit of its major axis with the
  minor coordinate rounded the same way, and every step between columns ``u`` and ``u ± 1``
  (upsampled) that lands on the pixel-centre column ``x = ((u' + 0.5)/5 − 0.5) ∈ ℕ`` toggles
  the mask at row ``ceil(((min(v, v') + 0.5)/5 − 0.5))`` clipped to ``[0, H]``. Toggles that
  fall on one position an even number of times cancel;
* boxes follow ``rleFrBbox``: the box ``[x, y, w, h]`` is the polygon of its four corners;
* IoU follows ``rleIou``: ``|A ∩ B| / |A ∪ B|``, or ``|A ∩ B| / |A|`` when the ground truth
  ``B`` is a crowd region, and 0 when the intersection is empty;
* bounding boxes follow ``rleToBbox`` (the 2.0.11 version): ``[x, y, w, h]`` of the set pixels,
  in whole pixels, all zeros for an empty mask.

Deliberate differences, all on input pycocotools mishandles: malformed RLEs (counts not summing
to ``H·W``, negative counts, characters outside ``'0'..'o'``, a truncated last group), sizes
that differ between masks being merged or compared, odd-length or too-short polygons and
non-finite coordinates raise :class:`~foveal.errors.DetectionError` instead of giving garbage;
an encoded mask treats every non-zero value as foreground (pycocotools starts a new run at each
change of value); merging non-canonical RLEs (zero-length runs after the first) gives canonical
runs; polygons on an image with no pixels give the empty mask; ``rle_iou`` of an empty side
is an empty ``(D, G)`` array (pycocotools returns ``[]``).

Reference: T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the
``cocoapi`` ``common/maskApi.c`` (P. Dollár, T.-Y. Lin, 2015).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np

from foveal.errors import DetectionError

__all__ = [
    "boxes_to_rle",
    "polygons_to_rle",
    "rle_area",
    "rle_compress",
    "rle_decode",
    "rle_decompress",
    "rle_encode",
    "rle_iou",
    "rle_merge",
    "rle_to_bbox",
    "segmentation_to_rle",
]

_SCALE = 5.0  # polygon upsampling factor of rleFrPoly
_MAX_GROUPS = 7  # 7 five-bit groups hold any signed 35-bit delta between uint32 counts


class _Runs(NamedTuple):
    """Many RLEs in flat arrays: RLE ``r`` is ``sizes[r]`` = [h, w] with runs
    ``counts[offsets[r]:offsets[r + 1]]``; every batch operation is a handful of NumPy calls."""

    sizes: np.ndarray  # (n, 2) int64
    counts: np.ndarray  # (sum of run counts,) int64
    offsets: np.ndarray  # (n + 1,) int64


def _runs_of(all_counts: Sequence[np.ndarray], h: int, w: int) -> _Runs:
    lengths = [c.size for c in all_counts]
    return _Runs(np.tile(np.array([h, w], dtype=np.int64), (len(lengths), 1)),
                 np.concatenate(all_counts).astype(np.int64) if lengths else np.zeros(0, np.int64),
                 np.concatenate(([0], np.cumsum(lengths))).astype(np.int64))


def _index(offsets: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner, index within its owner) of every element of a flat ragged array."""
    rid = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    return rid, np.arange(total) - offsets[rid]


# ---------------------------------------------------------------------------------------------
# Compressed counts: the LEB128-like string
# ---------------------------------------------------------------------------------------------


def _strings(runs: _Runs) -> list[str]:
    """Compress every RLE's runs to COCO's string (``rleToString``), all at once."""
    counts = runs.counts
    _, i = _index(runs.offsets, counts.size)
    x = counts.copy()
    late = np.flatnonzero(i >= 3)
    x[late] -= counts[late - 2]  # delta against the run two back, from index 3 on
    chars = np.zeros((x.size, _MAX_GROUPS), dtype=np.uint8)
    emitted = np.zeros((x.size, _MAX_GROUPS), dtype=bool)
    active = np.ones(x.size, dtype=bool)
    for k in range(_MAX_GROUPS):
        group = x & 0x1F
        x = x >> 5  # arithmetic shift: a negative delta ends at -1
        more = np.where(group & 0x10, x != -1, x != 0)
        chars[:, k] = (group | (more << 5)) + 48
        emitted[:, k] = active
        active &= more
        if not active.any():
            break
    text = chars[emitted].tobytes().decode("ascii")
    bounds = np.concatenate(([0], np.cumsum(emitted.sum(axis=1))))[runs.offsets].tolist()
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def _decode_strings(raws: Sequence[bytes], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Runs of many counts strings at once (``rleFrString``): (counts, offsets (n + 1,))."""
    lengths = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
    char_off = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(lengths, out=char_off[1:])
    b = np.frombuffer(b"".join(raws), dtype=np.uint8) - np.uint8(48)  # wraps below '0'
    if b.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(len(raws) + 1, dtype=np.int64)
    if b.max() > 63:
        bad = int(np.argmax(b > 63))
        s = int(np.searchsorted(char_off, bad, side="right")) - 1
        p = bad - int(char_off[s])
        raise DetectionError(f"{names[s]}: expected counts characters '0'..'o', got "
                             f"{chr(raws[s][p])!r} at position {p}")
    more = b >= 32  # bit 0x20: another 5-bit group follows
    tails = char_off[1:][lengths > 0] - 1
    if more[tails].any():
        s = int(np.flatnonzero(lengths > 0)[np.argmax(more[tails])])
        raise DetectionError(f"{names[s]}: expected the counts string to end a value, got "
                             f"a truncated last value ({lengths[s]} characters)")
    ends = np.flatnonzero(~more)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    ngroups = ends - starts + 1
    if ngroups.max() > _MAX_GROUPS:
        s = int(np.searchsorted(char_off, ends[ngroups.argmax()], side="right")) - 1
        raise DetectionError(f"{names[s]}: expected counts values of at most {_MAX_GROUPS} "
                             f"characters, got one of {int(ngroups.max())}")
    b = b.astype(np.int64)
    if ngroups.max() == 1:  # every value in one group: no shifting needed
        x = b & 0x1F
    else:
        k = np.arange(b.size) - np.repeat(starts, ngroups)
        x = np.add.reduceat((b & 0x1F) << (5 * k), starts)
    negative = (b[ends] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * ngroups[negative])  # sign-extend the last group
    offsets = np.searchsorted(ends, char_off).astype(np.int64)
    # undo the delta coding, c_i = x_i + c_{i-2} for i >= 3: running sums along each string's
    # odd and even (from 2) indices, restarted at every string
    counts = x
    if len(raws) == 1:
        counts[1::2] = np.cumsum(x[1::2])
        counts[2::2] = np.cumsum(x[2::2])
        return counts, offsets
    rid, i = _index(offsets, x.size)
    odd = (i & 1) == 1
    even = ~odd & (i >= 2)
    first = offsets[rid]
    sum_odd = np.concatenate(([0], np.cumsum(np.where(odd, x, 0))))
    sum_even = np.concatenate(([0], np.cumsum(np.where(even, x, 0))))
    counts = np.where(odd, sum_odd[1:] - sum_odd[first],
                      np.where(even, sum_even[1:] - sum_even[first], x))
    return counts, offsets


# ---------------------------------------------------------------------------------------------
# Validation and parsing
# ---------------------------------------------------------------------------------------------


def _is_int(v: object) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _check_size(height: object, width: object, where: str = "size") -> tuple[int, int]:
    if not (_is_int(height) and _is_int(width)) or height < 0 or width < 0:  # type: ignore[operator]
        raise DetectionError(f"{where}: expected non-negative integer height and width, "
                             f"got {height!r} and {width!r}")
    return int(height), int(width)  # type: ignore[call-overload]


def _parse_batch(rles: Sequence[object], names: Sequence[str]) -> _Runs:
    """Check and parse compressed or uncompressed RLEs, or raise DetectionError naming one."""
    sizes = np.zeros((len(rles), 2), dtype=np.int64)
    raws: list[bytes] = []
    lists: dict[int, np.ndarray] = {}
    for r, (rle, where) in enumerate(zip(rles, names, strict=True)):
        if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
            got = (f"keys {sorted(map(str, rle))}" if isinstance(rle, Mapping)
                   else type(rle).__name__)
            raise DetectionError(f"{where}: expected an RLE dict with 'size' and 'counts', got "
                                 f"{got}")
        size = rle["size"]
        if (not isinstance(size, (Sequence, np.ndarray)) or isinstance(size, (str, bytes))
                or len(size) != 2 or not all(_is_int(v) and v >= 0 for v in size)):
            raise DetectionError(f"{where}: expected 'size' [height, width] of two non-negative "
                                 f"integers, got {size!r}")
        sizes[r] = size
        raw = rle["counts"]
        if isinstance(raw, str):
            try:
                raws.append(raw.encode("ascii"))
            except UnicodeEncodeError as exc:
                raise DetectionError(f"{where}: expected counts characters '0'..'o', got "
                                     f"{raw[exc.start]!r} at position {exc.start}") from None
        elif isinstance(raw, bytes):
            raws.append(raw)
        elif isinstance(raw, (Sequence, np.ndarray)):
            counts = np.asarray(raw)
            if counts.ndim != 1 or (counts.size and counts.dtype.kind not in "iu"
                                    and not all(_is_int(v) for v in raw)):
                raise DetectionError(f"{where}: expected 'counts' a list of integers, got "
                                     f"{str(raw)[:60]}")
            lists[r] = counts.astype(np.int64)
        else:
            raise DetectionError(f"{where}: expected 'counts' a string or a list of integers, "
                                 f"got {type(raw).__name__}")
    compressed = [i for i in range(len(rles)) if i not in lists]
    counts, offsets = _decode_strings(raws, [names[i] for i in compressed])
    if lists:  # put the uncompressed ones in their places
        parts = [np.zeros(0, np.int64)] * len(rles)
        for j, i in enumerate(compressed):
            parts[i] = counts[offsets[j] : offsets[j + 1]]
        for i, c in lists.items():
            parts[i] = c
        runs = _runs_of(parts, 0, 0)
        counts, offsets = runs.counts, runs.offsets
    if counts.size and counts.min() < 0:
        r = int(np.searchsorted(offsets, np.argmax(counts < 0), side="right")) - 1
        raise DetectionError(f"{names[r]}: expected non-negative counts, got "
                             f"{int(counts[offsets[r] : offsets[r + 1]].min())}")
    cum = np.concatenate(([0], np.cumsum(counts)))
    totals = cum[offsets[1:]] - cum[offsets[:-1]]
    wrong = np.flatnonzero(totals != sizes[:, 0] * sizes[:, 1])
    if wrong.size:
        r = int(wrong[0])
        h, w = (int(v) for v in sizes[r])
        raise DetectionError(f"{names[r]}: expected counts summing to height*width = {h}*{w} = "
                             f"{h * w}, got {int(totals[r])}")
    return _Runs(sizes, counts, offsets)


def _parse_many(rles: object, name: str) -> tuple[_Runs, bool]:
    """Parse one RLE or a sequence of them; also say whether a single dict was given."""
    if isinstance(rles, Mapping):
        return _parse_batch([rles], [name]), True
    if not isinstance(rles, Sequence) or isinstance(rles, (str, bytes)):
        raise DetectionError(f"expected {name} to be an RLE dict or a list of them, got "
                             f"{type(rles).__name__}")
    return _parse_batch(rles, [f"{name}[{i}]" for i in range(len(rles))]), False


def _parse(rle: object, where: str = "rle") -> tuple[int, int, np.ndarray]:
    runs = _parse_batch([rle], [where])
    return int(runs.sizes[0, 0]), int(runs.sizes[0, 1]), runs.counts


def _same_size(sizes: np.ndarray, name: str) -> tuple[int, int]:
    sizes = np.unique(sizes, axis=0)
    if len(sizes) > 1:
        raise DetectionError(f"expected {name} of one size, got sizes "
                             f"{[tuple(s) for s in sizes.tolist()]}")
    return (int(sizes[0, 0]), int(sizes[0, 1])) if len(sizes) else (0, 0)


def _runs_from_toggles(toggles: np.ndarray, n: int) -> np.ndarray:
    """Canonical runs of a length-``n`` line that flips at the sorted unique ``toggles`` < n."""
    return np.diff(np.concatenate(([0], toggles, [n]))).astype(np.int64)


def _foreground(runs: _Runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-empty foreground runs ``[start, end)`` of every RLE: (owner, start, end), sorted."""
    rid, i = _index(runs.offsets, runs.counts.size)
    cum = np.cumsum(runs.counts)
    end = cum - np.concatenate(([0], cum))[runs.offsets[:-1]][rid]
    start = end - runs.counts
    keep = ((i & 1) == 1) & (runs.counts > 0)
    return rid[keep], start[keep], end[keep]


def _areas(runs: _Runs) -> np.ndarray:
    _, i = _index(runs.offsets, runs.counts.size)
    cum = np.concatenate(([0], np.cumsum(np.where((i & 1) == 1, runs.counts, 0))))
    return cum[runs.offsets[1:]] - cum[runs.offsets[:-1]]


def _bboxes(runs: _Runs) -> np.ndarray:
    """``rleToBbox``: (n, 4) xywh; a run that wraps to the next column spans every row."""
    out = np.zeros((runs.sizes.shape[0], 4), dtype=np.float64)
    rid, start, end = _foreground(runs)
    if rid.size == 0:
        return out
    h = runs.sizes[rid, 0]
    x0, x1 = start // h, (end - 1) // h
    first = np.flatnonzero(np.concatenate(([True], rid[1:] != rid[:-1])))
    xs, xe = np.minimum.reduceat(x0, first), np.maximum.reduceat(x1, first)
    wraps = np.logical_or.reduceat(x0 < x1, first)
    ys = np.where(wraps, 0, np.minimum.reduceat(start % h, first))
    ye = np.where(wraps, h[first] - 1, np.maximum.reduceat((end - 1) % h, first))
    out[rid[first]] = np.stack([xs, ys, xe - xs + 1, ye - ys + 1], axis=1)
    return out


def _to_dicts(runs: _Runs) -> list[dict[str, Any]]:
    return [{"size": [int(h), int(w)], "counts": s}
            for (h, w), s in zip(runs.sizes.tolist(), _strings(runs), strict=True)]


def _to_dict(h: int, w: int, counts: np.ndarray) -> dict[str, Any]:
    return _to_dicts(_runs_of([counts], h, w))[0]


def _compressed(rle: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validated copy of an RLE with str counts; a compressed string is kept as written."""
    h, w, counts = _parse(rle, where)
    raw = rle["counts"]
    if isinstance(raw, bytes):
        return {"size": [h, w], "counts": raw.decode("ascii")}
    if isinstance(raw, str):
        return {"size": [h, w], "counts": raw}
    return _to_dict(h, w, counts)


# ---------------------------------------------------------------------------------------------
# Encode / decode / compress
# ---------------------------------------------------------------------------------------------


def rle_encode(masks: np.ndarray) -> dict[str, Any] | list[dict[str, Any]]:
    """Encode binary masks as compressed RLEs (``pycocotools.mask.encode``).

    Args:
        masks: ``(H, W)`` or ``(N, H, W)`` array of any dtype; non-zero is foreground.

    Returns:
        One RLE dict for an ``(H, W)`` mask, a list of ``N`` for ``(N, H, W)``.
    """
    m = np.asarray(masks)
    if m.ndim not in (2, 3):
        raise DetectionError(f"expected masks of shape (H, W) or (N, H, W), got shape {m.shape}")
    single = m.ndim == 2
    if single:
        m = m[None]
    n, h, w = m.shape
    length = h * w
    flat = (m != 0).transpose(0, 2, 1).reshape(n, length)  # column-major (a copy)
    # toggles: the first pixel when set, then every change; runs are the gaps between
    # 0, the toggles and length, row by row
    edges = np.zeros((n, length + 1), dtype=bool)
    if length:
        edges[:, 0] = flat[:, 0]
        edges[:, 1:-1] = flat[:, 1:] != flat[:, :-1]
    row, col = np.nonzero(edges)
    per_row = np.bincount(row, minlength=n)
    start = np.concatenate(([0], np.cumsum(per_row + 2)))[:-1]
    points = np.zeros(int((per_row + 2).sum()), dtype=np.int64)
    points[start + per_row + 1] = length
    points[np.arange(row.size) - (np.cumsum(per_row) - per_row)[row] + start[row] + 1] = col
    gaps = np.diff(points)
    keep = np.ones(gaps.size, dtype=bool)
    keep[(start + per_row + 1)[:-1]] = False  # the step from one mask's end to the next's 0
    runs = _Runs(np.tile(np.array([h, w], dtype=np.int64), (n, 1)), gaps[keep],
                 np.concatenate(([0], np.cumsum(per_row + 1))).astype(np.int64))
    out = _to_dicts(runs)
    return out[0] if single else out


def rle_decode(rles: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Decode RLEs to binary masks (``pycocotools.mask.decode``).

    Args:
        rles: one RLE dict (compressed or not), or a non-empty list of RLEs of one size.

    Returns:
        ``uint8`` mask ``(H, W)`` for one dict, ``(N, H, W)`` for a list.
    """
    runs, single = _parse_many(rles, "rles")
    if runs.sizes.shape[0] == 0:
        raise DetectionError("expected at least one RLE to decode, got an empty list")
    h, w = _same_size(runs.sizes, "rles")
    _, i = _index(runs.offsets, runs.counts.size)
    flat = np.repeat((i & 1).astype(np.uint8), runs.counts)
    out = np.ascontiguousarray(flat.reshape(runs.sizes.shape[0], w, h).transpose(0, 2, 1))
    return out[0] if single else out


def rle_compress(rle: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``rle`` with its counts as COCO's compressed string (runs kept as they are)."""
    return _compressed(rle, "rle")


def rle_decompress(rle: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``rle`` with its counts as a list of Python ints (column-major runs, zeros first)."""
    h, w, counts = _parse(rle)
    return {"size": [h, w], "counts": counts.tolist()}


# ---------------------------------------------------------------------------------------------
# Area, bounding box, merge, IoU
# ---------------------------------------------------------------------------------------------


def rle_area(rles: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> int | np.ndarray:
    """Number of foreground pixels: the sum of the odd-indexed runs (``rleArea``).

    Returns an ``int`` for one dict, an int64 array ``(N,)`` for a list.
    """
    runs, single = _parse_many(rles, "rles")
    areas = _areas(runs)
    return int(areas[0]) if single else areas


def rle_to_bbox(rles: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Tight pixel bounding box ``[x, y, w, h]`` of each mask (``rleToBbox``).

    Returns float64 ``(4,)`` for one dict, ``(N, 4)`` for a list; an empty mask gives zeros.
    """
    runs, single = _parse_many(rles, "rles")
    boxes = _bboxes(runs)
    return boxes[0] if single else boxes


def rle_merge(rles: Sequence[Mapping[str, Any]], intersect: bool = False) -> dict[str, Any]:
    """Union (or, with ``intersect``, intersection) of RLEs of one size (``rleMerge``).

    Computed from interval events: every foreground run adds 1 to a coverage count at its start
    and subtracts 1 at its end; the result is foreground where coverage > 0 (union) or = N
    (intersection). A single RLE comes back with its runs unchanged, as in pycocotools.
    """
    runs, _ = _parse_many(rles, "rles")
    if runs.sizes.shape[0] == 0:
        raise DetectionError("expected at least one RLE to merge, got an empty list")
    h, w = _same_size(runs.sizes, "rles")
    if runs.sizes.shape[0] == 1:
        return _to_dict(h, w, runs.counts)
    return _to_dict(h, w, _merge_counts(runs, intersect))


def _merge_counts(runs: _Runs, intersect: bool) -> np.ndarray:
    n = int(runs.sizes[0, 0] * runs.sizes[0, 1])
    _, starts, ends = _foreground(runs)
    pos, inverse = np.unique(np.concatenate((starts, ends)), return_inverse=True)
    delta = np.bincount(inverse, weights=np.repeat([1.0, -1.0], starts.size), minlength=pos.size)
    coverage = np.cumsum(delta)  # coverage on [pos[i], pos[i+1])
    inside = coverage >= runs.sizes.shape[0] if intersect else coverage > 0
    toggles = pos[np.flatnonzero(np.diff(np.concatenate(([False], inside))))]
    return _runs_from_toggles(toggles[toggles < n], n)


def rle_iou(dt: Sequence[Mapping[str, Any]], gt: Sequence[Mapping[str, Any]],
            iscrowd: Sequence[bool]) -> np.ndarray:
    """Pairwise mask IoU (``pycocotools.mask.iou`` on RLEs).

    ``iou[d, g] = |D ∩ G| / |D ∪ G|``, or ``|D ∩ G| / |D|`` when ``iscrowd[g]`` (a detection
    inside a crowd region is not penalised for the rest of the crowd), and 0 when ``D ∩ G = ∅``.
    Only pairs whose bounding boxes overlap are intersected, and of a detection only the
    foreground runs ``[s, e)`` in the columns both boxes share: ``|D ∩ G|`` is the sum over
    them of ``F_G(e) − F_G(s)``, where ``F_G(x)`` counts the ground-truth pixels before ``x``
    (a binary search among the ground-truth runs). All pairs are done at once, with ground
    truth ``g`` (and detection ``d``) shifted by ``g·H·W`` (``d·H·W``) onto one long line.

    Args:
        dt: ``D`` RLEs (detections).
        gt: ``G`` RLEs (ground truth), all of the detections' size.
        iscrowd: ``G`` flags.

    Returns:
        float64 ``(D, G)`` (``(D, 0)`` or ``(0, G)`` when either side is empty, where
        pycocotools returns ``[]``).
    """
    rd, _ = _parse_many(list(dt) if isinstance(dt, Sequence) else dt, "dt")
    rg, _ = _parse_many(list(gt) if isinstance(gt, Sequence) else gt, "gt")
    nd, ng = rd.sizes.shape[0], rg.sizes.shape[0]
    crowd = np.asarray(iscrowd, dtype=bool).reshape(-1)
    if crowd.size != ng:
        raise DetectionError(f"expected iscrowd with one flag per gt ({ng}), got {crowd.size}")
    out = np.zeros((nd, ng), dtype=np.float64)
    if nd == 0 or ng == 0:
        return out
    h, w = _same_size(np.concatenate((rd.sizes, rg.sizes)), "dt and gt")
    n = h * w
    box_d, box_g = _bboxes(rd), _bboxes(rg)
    x0 = np.maximum(box_d[:, None, 0], box_g[None, :, 0])
    x1 = np.minimum((box_d[:, 0] + box_d[:, 2])[:, None], (box_g[:, 0] + box_g[:, 2])[None])
    y0 = np.maximum(box_d[:, None, 1], box_g[None, :, 1])
    y1 = np.minimum((box_d[:, 1] + box_d[:, 3])[:, None], (box_g[:, 1] + box_g[:, 3])[None])
    di, gi = np.nonzero((x1 > x0) & (y1 > y0))
    if di.size == 0:
        return out

    g_rid, g_start, g_end = _foreground(rg)
    F = _pixels_before(g_start + g_rid * n, g_end + g_rid * n)
    d_rid, d_start, d_end = _foreground(rd)
    d_start, d_end = d_start + d_rid * n, d_end + d_rid * n
    # the detection's runs that reach into the shared columns [c0, c1) of pair (d, g)
    c0, c1 = x0[di, gi].astype(np.int64), x1[di, gi].astype(np.int64)
    lo = np.searchsorted(d_end, di * n + c0 * h, side="right")
    hi = np.searchsorted(d_start, di * n + c1 * h, side="left")
    q_len = np.maximum(hi - lo, 0)
    pair = np.repeat(np.arange(di.size), q_len)
    idx = np.arange(pair.size) - np.repeat(np.cumsum(q_len) - q_len - lo, q_len)
    shift = (gi - di)[pair] * n
    parts = F(d_end[idx] + shift) - F(d_start[idx] + shift)
    inter = np.bincount(pair, weights=parts, minlength=di.size).round().astype(np.int64)

    area_d, area_g = _areas(rd), _areas(rg)
    union = np.where(crowd[gi], area_d[di], area_d[di] + area_g[gi] - inter)
    out[di, gi] = np.where(inter > 0, inter / np.maximum(union, 1), 0.0)
    return out


def _pixels_before(starts: np.ndarray, ends: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``F(x)`` = number of foreground pixels before position ``x``, for sorted intervals."""
    bs = np.concatenate(([-1], starts))  # a zero-length sentinel so every lookup finds one
    lengths = np.concatenate(([0], ends - starts))
    before = np.concatenate(([0], np.cumsum(lengths)[:-1]))

    def count(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(bs, x, side="right") - 1
        return before[k] + np.minimum(x - bs[k], lengths[k])

    return count


# ---------------------------------------------------------------------------------------------
# Polygons, boxes, COCO segmentations
# ---------------------------------------------------------------------------------------------


def _polygon_counts(xy: np.ndarray, h: int, w: int) -> np.ndarray:
    """Runs of one polygon ``(k, 2)`` rasterised as ``rleFrPoly`` does (see the module doc)."""
    n = h * w
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    # vertices on the 5x grid, C's (int)(v + .5): truncation toward zero
    x = np.trunc(_SCALE * xy[:, 0] + 0.5).astype(np.int64)
    y = np.trunc(_SCALE * xy[:, 1] + 0.5).astype(np.int64)
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    dx, dy = np.abs(xn - x), np.abs(yn - y)
    major_x = dx >= dy
    flip = np.where(major_x, x > xn, y > yn)  # walk each edge from its low end...
    xs, xe = np.where(flip, xn, x), np.where(flip, x, xn)
    ys, ye = np.where(flip, yn, y), np.where(flip, y, yn)
    steps = np.where(major_x, dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(major_x, (ye - ys) / dx, (xe - xs) / dy)
    slope[steps == 0] = 0.0  # a repeated vertex: its one point is never read below

    npts = steps + 1
    edge = np.repeat(np.arange(x.size), npts)
    d = np.arange(int(npts.sum())) - np.repeat(np.cumsum(npts) - npts, npts)
    t = np.where(flip[edge], steps[edge] - d, d)  # ...but emit points from its first vertex
    mx = major_x[edge]
    minor_start = np.where(mx, ys[edge], xs[edge]).astype(np.float64)
    along = np.trunc(minor_start + slope[edge] * t + 0.5).astype(np.int64)
    u = np.where(mx, t + xs[edge], along)
    v = np.where(mx, along, t + ys[edge])

    # every change of upsampled column that lands on a pixel-centre column toggles one pixel
    step = np.flatnonzero(u[1:] != u[:-1]) + 1
    xd = np.where(u[step] < u[step - 1], u[step], u[step] - 1).astype(np.float64)
    xd = (xd + 0.5) / _SCALE - 0.5
    ok = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    step, xd = step[ok], xd[ok]
    yd = np.minimum(v[step], v[step - 1]).astype(np.float64)
    yd = np.ceil(np.clip((yd + 0.5) / _SCALE - 0.5, 0, h))
    pos = xd.astype(np.int64) * h + yd.astype(np.int64)

    values, times = np.unique(pos, return_counts=True)
    toggles = values[(times % 2 == 1) & (values < n)]  # even repeats cancel
    return _runs_from_toggles(toggles, n)


def _check_polygon(poly: object, where: str) -> np.ndarray:
    if (not isinstance(poly, (Sequence, np.ndarray)) or isinstance(poly, (str, bytes))
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in poly)):
        raise DetectionError(f"{where}: expected a polygon as a flat list of numbers "
                             f"[x1, y1, x2, y2, ...], got {str(poly)[:60]}")
    if len(poly) < 6 or len(poly) % 2:
        raise DetectionError(f"{where}: expected a polygon with >= 3 points (6 numbers) and "
                             f"an even count, got {len(poly)} numbers")
    xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(xy).all():
        raise DetectionError(f"{where}: expected finite polygon coordinates, got "
                             f"{xy[~np.isfinite(xy)][0]}")
    return xy


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int,
                    width: int) -> dict[str, Any]:
    """Rasterise the union of polygons to one RLE (``merge(frPyObjects(polygons, h, w))``).

    Args:
        polygons: list of flat ``[x1, y1, x2, y2, ...]`` polygons in pixel coordinates
            (pixel ``(row y, column x)`` is the square ``[x, x+1) × [y, y+1)``, sampled at
            its centre); each >= 3 points. An empty list gives the empty mask.
        height, width: image size.
    """
    h, w = _check_size(height, width)
    if (not isinstance(polygons, (Sequence, np.ndarray)) or isinstance(polygons, (str, bytes))
            or (len(polygons) and isinstance(polygons[0], Real))):
        raise DetectionError(f"expected a list of polygons (lists of numbers), got "
                             f"{str(polygons)[:60]}")
    runs = [_polygon_counts(_check_polygon(p, f"polygon[{i}]"), h, w)
            for i, p in enumerate(polygons)]
    if not runs:
        return _to_dict(h, w, _runs_from_toggles(np.zeros(0, np.int64), h * w))
    counts = runs[0] if len(runs) == 1 else _merge_counts(_runs_of(runs, h, w), False)
    return _to_dict(h, w, counts)


def boxes_to_rle(boxes_xywh: np.ndarray | Sequence[Sequence[float]], height: int,
                 width: int) -> list[dict[str, Any]]:
    """Rasterise boxes ``(N, 4)`` ``[x, y, w, h]`` (``pycocotools.mask.frBbox``).

    Each box is the polygon of its corners ``(x, y), (x, y+h), (x+w, y+h), (x+w, y)``, so a
    box with integer coordinates covers exactly the pixels ``x..x+w−1`` by ``y..y+h−1``.
    """
    h, w = _check_size(height, width)
    b = np.asarray(boxes_xywh, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise DetectionError(f"expected boxes_xywh of shape (N, 4), got shape {b.shape}")
    if not np.isfinite(b).all():
        raise DetectionError("expected finite box coordinates, got NaN or infinity")
    x0, y0 = b[:, 0], b[:, 1]
    x1, y1 = x0 + b[:, 2], y0 + b[:, 3]
    corners = np.stack([x0, y0, x0, y1, x1, y1, x1, y0], axis=1).reshape(-1, 4, 2)
    return _to_dicts(_runs_of([_polygon_counts(c, h, w) for c in corners], h, w))


def segmentation_to_rle(segmentation: Sequence[Sequence[float]] | Mapping[str, Any],
                        height: int, width: int) -> dict[str, Any]:
    """A COCO ``segmentation`` as one compressed RLE (``COCO.annToRLE``).

    Args:
        segmentation: a list of polygons (merged into one mask), an uncompressed RLE (counts
            compressed as they are) or a compressed RLE (returned with ``str`` counts).
        height, width: the image size; an RLE of another size raises.
    """
    h, w = _check_size(height, width)
    if isinstance(segmentation, Mapping):
        rle = _compressed(segmentation, "segmentation")
        if rle["size"] != [h, w]:
            raise DetectionError(f"segmentation: expected RLE size [{h}, {w}] of the image, "
                                 f"got {rle['size']}")
        return rle
    return polygons_to_rle(segmentation, h, w)
