"""2-D 3×3 convolution by Winograd's minimal filtering F(m×m, 3×3).

For stride 1, no dilation and one group, conv2d's definition (see :mod:`.conv`) is, per output
channel, a sum over input channels of 'valid' cross-correlations with a 3×3 kernel. Cut the
output into m×m tiles; output tile ``(t, τ)`` sees the α×α input tile (α = m + 2) starting at
``(t·m, τ·m)``, so input tiles overlap by 2 pixels. Per tile, with ``d`` (α×α) the input tile and
``g`` (3×3) the kernel,

    Y = Aᵀ [ U ⊙ V ] A,       U = G g Gᵀ,   V = Bᵀ d B                  (Lavin & Gray, eq. 8)

and, summing over input channels in the transform domain, at each of the α² positions ``p``
of the α×α transform one matrix product over all tiles of all images:

    M[p] (tiles·N, C_out) = V[p] (tiles·N, C_in) · U[p]ᵀ (C_in, C_out),   Y = Aᵀ M A per tile.

**Backward** is multiply-swaps in the same domain: ``dM = A dY Aᵀ`` per tile,
``∂L/∂V[p] = dM[p] · U[p]``, ``∂L/∂d = B (∂L/∂V) Bᵀ`` per tile, then the tiles are added back
into the padded input where they overlap by 2 pixels (copy sums); ``∂L/∂U[p] = dM[p]ᵀ · V[p]``
(the product sums over tiles and images), ``∂L/∂g = Gᵀ (∂L/∂U) G``.

**The matrices** come from Toom-Cook interpolation (Lavin & Gray §4; Winograd 1980): a 1-D
'valid' correlation of an α-long signal with an r-long filter (r = 3) giving m outputs is the
transpose of multiplying a degree-(m−1) polynomial by a degree-(r−1) one. Evaluate both at α
points — finite ``p₀ … p_{α−2}`` and ∞ (the leading coefficient) — multiply pointwise, and
interpolate: with ``N_j(x) = Π_{k≠j} (x − p_k)`` (over finite points; for ∞, over all of them)
and ``D_j = N_j(p_j)`` (1 for ∞),

    G[j]   = (1, p_j, p_j²) / |D_j|              (∞: (0, 0, 1))
    Bᵀ[j]  = sign(D_j) · coefficients of N_j,  lowest power first
    Aᵀ     = (p_j^i)  i < m, j < α                (∞: column (0, …, 0, 1))

so that ``Bᵀ`` and ``Aᵀ`` are integer and the fractions sit in ``G``, which is applied to the
kernels only (:func:`winograd_matrices` builds them in exact rationals). This module uses
**F(4×4, 3×3)** with points 0, ±1, ±2, ∞ (α = 6)::

    Bᵀ = [[4,  0, −5,  0,  1, 0],    G = [[1/4,     0,   0],    Aᵀ = [[1, 1,  1, 1,  1, 0],
          [0,  4,  4, −1, −1, 0],         [1/6,   1/6, 1/6],          [0, 1, −1, 2, −2, 0],
          [0, −4,  4,  1, −1, 0],         [1/6,  −1/6, 1/6],          [0, 1,  1, 4,  4, 0],
          [0, −2, −1,  2,  1, 0],         [1/24, 1/12, 1/6],          [0, 1, −1, 8, −8, 1]]
          [0,  2, −1, −2,  1, 0],         [1/24, −1/12, 1/6],
          [0,  4,  0, −5,  0, 1]]         [0,      0,    1]]

(Lavin & Gray's F(4, 3), but for the signs of rows 1 and 2 of Bᵀ and G, which cancel). Its
6×6 input tiles per 4×4 outputs expand the input 2.25× (F(2×2, 3×3): 4×, im2col: 9×), and it
takes 36 products per 16 outputs instead of 144. The transforms are memory-bound, so the
smaller expansion wins: forward + backward of a batch of 64 32×32 maps took 62 ms (F(4×4))
against 83 ms (F(2×2)) at 16 channels and 319 against 479 ms at 64 (one thread, CPU time,
before the tile-major layout below).
The price is precision: the points ±2 and the fractions down to 1/24 make F(4×4)'s float32
rounding error about 5–10× im2col's (relative RMS error of output and gradients 1–3e-6
against 1–3e-7, F(2×2) on a par with im2col; the points 0, ±1, 1/2, −2 would lower it by a
third), far below the noise of training; float64 inputs compute in float64.

The output is cut into ``⌈OH/m⌉ × ⌈OW/m⌉`` tiles: the input is copied once into a zero-bordered
buffer (the convolution's padding, and more at the bottom and right so the last, ragged tiles
have input; their surplus outputs are cropped), and the input gradient is read back from the
same layout, so neither pads nor crops a copy of its own. The batch goes in chunks sized
between keeping their buffers in the CPU cache and paying each chunk's fixed cost
(:data:`CHUNK_VALUES`), as many per worker thread and of equal size, run on the workers (as the
FFT route's batch parts); the bias is added, and its gradient summed, chunk by chunk. Within
a chunk the maps are laid out tile-major, (H, W, image, channel): a tile window is then a
strided view whose contiguous blocks are whole (image, channel) slabs, so the window copies
(the overlapping tiles gathered, and overlap-added back) move ``n·C`` values at a time rather
than ``C``, and each position's matrix in the product is a plain 2-D block (forward +
backward at 16 channels: 11% less CPU time than channels-last (N, H, W, C) with its own
padded copy; unchanged at 32–64). Each 1-D transform is one matrix product with K = α (or m)
over the whole chunk. Measured and not taken (16 channels, one thread): the transforms as
sums of the sparse rows of Bᵀ and Aᵀ on strided views (no gather; the ±p rows sharing their
even and odd parts), 7% faster on one step hand-written and slower overall written from the
matrices; the 2-D transforms as one product with ``Bᵀ ⊗ Bᵀ`` (36 × 36), a few % slower.

Reference: A. Lavin, S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np

from foveal.scratch.ops.conv_fft import _each, batch_chunks, fft_workers

TILE = 4
"""m: the output tile's side, F(m×m, 3×3)."""

POINTS: dict[int, tuple[int, ...]] = {2: (0, 1, -1), 4: (0, 1, -1, 2, -2)}
"""The finite interpolation points for each m (with ∞ as the last point)."""


def winograd_matrices(m: int, r: int = 3, points: tuple[float, ...] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Aᵀ (m, α), G (α, r), Bᵀ (α, α))`` of F(m, r) for the finite ``points`` (α − 1 of
    them, default :data:`POINTS`) and ∞, by the construction in the module doc, in float64.

    1-D check: ``Aᵀ · ((G g) ⊙ (Bᵀ d)) = [Σ_u g[u] d[i + u]]_{i < m}`` for ``d`` α-long.
    """
    pts = [Fraction(p) for p in (POINTS[m] if points is None else points)]
    alpha = m + r - 1
    if len(pts) != alpha - 1 or len(set(pts)) != len(pts):
        raise ValueError(f"winograd_matrices: expected {alpha - 1} distinct points for "
                         f"F({m}, {r}), got {points!r}")
    at = np.zeros((m, alpha))
    g = np.zeros((alpha, r))
    bt = np.zeros((alpha, alpha))
    for j in range(alpha):
        others = [p for k, p in enumerate(pts) if k != j]
        coeffs = [Fraction(1)]  # N_j(x), lowest power first
        for p in others:
            coeffs = [a - p * b for a, b in zip([Fraction(0), *coeffs], [*coeffs, Fraction(0)],
                                                strict=True)]
        if j < alpha - 1:
            pj = pts[j]
            dj = np.prod([pj - p for p in others], dtype=object)
            g[j] = [float(pj ** u / abs(dj)) for u in range(r)]
            bt[j, : len(coeffs)] = [float(c if dj > 0 else -c) for c in coeffs]
            at[:, j] = [float(pj ** i) for i in range(m)]
        else:  # ∞: the leading coefficients
            g[j, r - 1] = 1.0
            bt[j, : len(coeffs)] = [float(c) for c in coeffs]
            at[m - 1, j] = 1.0
    return at, g, bt


@cache
def _matrices(m: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`winograd_matrices` for :data:`POINTS` in ``dtype``, made once (read-only use)."""
    at, g, bt = winograd_matrices(m)
    return at.astype(dtype), g.astype(dtype), bt.astype(dtype)


def tile_counts(out_hw: tuple[int, int], m: int = TILE) -> tuple[int, int]:
    """Output tiles per column and per row: ``(⌈OH/m⌉, ⌈OW/m⌉)``."""
    return -(-out_hw[0] // m), -(-out_hw[1] // m)


def _along_first(mat: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``mat`` (p, q) applied along the first axis of ``a`` (q, …): one matrix product."""
    return (mat @ a.reshape(a.shape[0], -1)).reshape(mat.shape[0], *a.shape[1:])


def _gather(a: np.ndarray, axis: int, count: int, m: int, alpha: int) -> np.ndarray:
    """Windows of ``alpha`` at stride ``m`` along ``axis`` of ``a``, offset first:
    ``out[k, …, t, …] = a[…, t·m + k, …]`` for ``k < alpha``, ``t < count`` (``alpha``
    strided copies; the axes after ``axis`` stay contiguous blocks)."""
    out = np.empty((alpha, *a.shape[:axis], count, *a.shape[axis + 1:]), dtype=a.dtype)
    for k in range(alpha):
        out[k] = a[(slice(None),) * axis + (slice(k, k + m * (count - 1) + 1, m),)]
    return out


def _scatter_add(t: np.ndarray, axis: int, size: int, m: int) -> np.ndarray:
    """The adjoint of :func:`_gather`: ``out[…, t·m + k, …] += tiles[k, …, t, …]``, ``out``
    of length ``size`` along ``axis``. Windows overlap by ``alpha − m``: the first ``m``
    offsets of every window tile the axis exactly (plain copies), the rest are added."""
    alpha, count = t.shape[0], t.shape[axis + 1]
    out = np.empty((*t.shape[1:axis + 1], size, *t.shape[axis + 2:]), dtype=t.dtype)
    lead = (slice(None),) * axis
    out[(*lead, slice(count * m, None))] = 0
    for k in range(alpha):
        dst = out[(*lead, slice(k, k + m * (count - 1) + 1, m))]
        if k < m:
            dst[...] = t[k]
        else:
            dst += t[k]
    return out


CHUNK_VALUES = 380_000
"""Sets the images per batch chunk, ``k = round(√(CHUNK_VALUES / V))`` (at least one) for
``V = α²·tiles·C_in`` transform values per image: a chunk's buffers should stay in the CPU
cache from one step to the next, which calls for few images, but each chunk costs ~50 array
operations whatever its size, which calls for many; the square root balances the two as the
per-image size grows. Measured (forward + backward, 64 images of 32×32, two workers, CPU-2;
the fastest k): 3 images at 16 channels (V = 36,864; 7 images, the largest that fit in 1 MB,
were 8% slower, one image 50% slower), 2–3 at 32, 2 at 64 (1 image: 4% slower, 4: 13%),
1 at 128 (2 images: 7% slower); this constant gives 3, 2, 2, 1."""


def _chunks(n: int, per_image: int) -> list[slice]:
    """The batch cut into chunks of about :data:`CHUNK_VALUES`'s image count, in a multiple
    of the worker count (:func:`batch_chunks`)."""
    images = max(1, round(math.sqrt(CHUNK_VALUES / max(per_image, 1))))
    return batch_chunks(n, per_image, images * per_image, fft_workers())


WinogradInput = list[tuple[slice, np.ndarray]]
"""The input's transform V kept for backward: (batch chunk, V (α², n_chunk·T, C_in)) pairs."""


def _deal(count: int) -> list[list[int]]:
    """Chunk indices ``0 … count − 1`` shared among ``fft_workers()`` threads (at most one per
    chunk, at least one thread) in contiguous runs of ``count/w`` (±1): with
    :func:`batch_chunks`' slices, whose count is a multiple of the workers, thread ``k`` gets
    images ``n·k/w … n·(k+1)/w``, equal work to one image (dealing the chunks in turn could
    line the smaller slices up on one thread). The threads run concurrently, since NumPy's
    copies and BLAS release the GIL."""
    workers = max(1, min(fft_workers(), count))
    return [list(range(k * count // workers, (k + 1) * count // workers))
            for k in range(workers)]


def _input_transform(x: np.ndarray, padding: tuple[int, int], th: int, tw: int, m: int,
                     bt: np.ndarray) -> np.ndarray:
    """V = Bᵀ d B for every α×α tile of ``x`` (n, C, H, W) zero-padded by ``padding`` (and at
    the bottom and right up to ``T_h·m + 2`` × ``T_w·m + 2``) → (α², T_h·T_w·n, C), the
    positions ordered (row ξ, column ν), each position's rows (tile row, tile column, image).
    Tile-major layout (H, W, n, C): a strided window then moves ``n·C`` values at a time.
    Bᵀ along the columns of column strips, then along the rows of tiles."""
    n, c, h, w = x.shape
    p0, p1 = padding
    alpha = m + 2
    xq = np.empty((th * m + 2, tw * m + 2, n, c), dtype=bt.dtype)
    xq[:p0] = 0
    xq[p0 + h:] = 0
    xq[p0: p0 + h, :p1] = 0
    xq[p0: p0 + h, p1 + w:] = 0
    for i in range(n):  # per image: 3× faster than one (n, C, H, W) → (H, W, n, C) copy
        xq[p0: p0 + h, p1: p1 + w, i] = x[i].transpose(1, 2, 0)
    t = _along_first(bt, _gather(xq, 1, tw, m, alpha))              # (ν, H_q, T_w, n, C)
    v = _along_first(bt, _gather(t, 1, th, m, alpha))               # (ξ, ν, T_h, T_w, n, C)
    return v.reshape(alpha * alpha, -1, c)


def _output_transform(mm: np.ndarray, th: int, tw: int, out: np.ndarray, at: np.ndarray,
                      bias: np.ndarray | None = None) -> None:
    """Y = Aᵀ M A (+ ``bias`` (C_out,)) for every tile of ``mm`` (α², T_h·T_w·n, C_out)
    (:func:`_input_transform`'s order) into ``out`` (n, C_out, OH, OW), the ragged tiles'
    surplus outputs cropped. Aᵀ along ξ (one product), then along ν (batched); the tiles are
    interleaved into (H, W, n, C_out) maps, the bias added there (channels last: one
    broadcast row per pixel, while the chunk is in the cache), then copied channels-first."""
    m, alpha = at.shape
    n, o, oh, ow = out.shape
    yt = at @ _along_first(at, mm.reshape(alpha, alpha, -1))       # (i, j, T_h·T_w·n·C_out)
    yq = np.empty((th, m, tw, m, n, o), dtype=mm.dtype)
    for i in range(m):
        yq[:, i] = yt[i].reshape(m, th, tw, n, o).transpose(1, 2, 0, 3, 4)
    if bias is not None:
        yq += bias
    out[...] = yq.reshape(th * m, tw * m, n, o)[:oh, :ow].transpose(2, 3, 0, 1)


def kernel_transform(w: np.ndarray, m: int = TILE) -> np.ndarray:
    """U = G g Gᵀ for 3×3 kernels ``w`` (C_out, C_in, 3, 3) → (α², C_in, C_out), positions
    ordered (row ξ, column ν) as :func:`winograd_conv_forward`'s V, transposed per position
    for the product V·U."""
    _, g, _ = _matrices(m, w.dtype)
    o, c = w.shape[:2]
    t = _along_first(g, w.transpose(3, 2, 1, 0))                   # (ν, u, C_in, C_out)
    return _along_first(g, t.transpose(1, 0, 2, 3)).reshape(-1, c, o)  # (ξ, ν, C_in, C_out)


def winograd_conv_forward(x: np.ndarray, w: np.ndarray, padding: tuple[int, int] = (0, 0),
                          keep_v: bool = True, m: int = TILE, bias: np.ndarray | None = None
                          ) -> tuple[np.ndarray, WinogradInput | None, np.ndarray]:
    """Stride-1 correlation of ``x`` (N, C_in, H, W), zero-padded by ``padding`` (p_h, p_w)
    on each side, with 3×3 kernels ``w`` (C_out, C_in, 3, 3), plus ``bias`` (C_out,) if
    given → (y (N, C_out, H + 2p_h − 2, W + 2p_w − 2), V per batch chunk if ``keep_v`` (for
    ∂L/∂W) else None, U (α², C_in, C_out) (for ∂L/∂x)).

    Per chunk (module doc): V = Bᵀ d B, one product per position (T·n × C_in)(C_in × C_out),
    Y = Aᵀ M A. The rows of each position's matrix are the tiles, ordered (tile row, tile
    column, image); the chunks are shared among :func:`_deal`'s threads.
    """
    n, c, h, wd = x.shape
    dtype = np.result_type(x, w)
    at, _, bt = _matrices(m, dtype)
    out_hw = (h + 2 * padding[0] - 2, wd + 2 * padding[1] - 2)
    th, tw = tile_counts(out_hw, m)
    u = kernel_transform(w.astype(dtype, copy=False), m)
    bias = None if bias is None else bias.astype(dtype, copy=False)
    y = np.empty((n, w.shape[0], *out_hw), dtype=dtype)
    chunks = _chunks(n, (m + 2) ** 2 * th * tw * c)
    lists = _deal(len(chunks))

    def run(k: int) -> WinogradInput:
        kept = []
        for b in (chunks[i] for i in lists[k]):
            v = _input_transform(x[b], padding, th, tw, m, bt)
            _output_transform(np.matmul(v, u), th, tw, y[b], at, bias)
            if keep_v:
                kept.append((b, v))
        return kept

    kept = sorted((pair for part in _each(run, len(lists)) for pair in part),
                  key=lambda pair: pair[0].start)
    return y, (kept if keep_v else None), u


def winograd_conv_backward(gy: np.ndarray, v: WinogradInput | None, u: np.ndarray | None,
                           x_shape: tuple[int, ...], input_grad: bool = True,
                           weight_grad: bool = True, padding: tuple[int, int] = (0, 0),
                           m: int = TILE, bias_grad: bool = False
                           ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`winograd_conv_forward` for upstream ``gy`` (N, C_out, OH, OW):
    (∂L/∂x (N, C_in, H, W) of the unpadded input ``x_shape`` or None, ∂L/∂W (C_out, C_in,
    3, 3) or None, ∂L/∂b (C_out,) if ``bias_grad`` else None). ``v`` (the input's transform)
    is needed for ∂L/∂W, ``u`` (the kernels') for ∂L/∂x.

    Per chunk (module doc): dM = A dY Aᵀ; ∂L/∂V = dM · U per position, then
    ∂L/∂d = B (∂L/∂V) Bᵀ, each 1-D transform followed by its overlap-add (:func:`_scatter_add`);
    ∂L/∂U = dMᵀ · V per position, summed over chunks, and at the end ∂L/∂g = Gᵀ (∂L/∂U) G.
    ∂L/∂b = Σ dY over images and pixels, summed from each chunk's channels-last copy of dY
    while it is in the cache.
    """
    if (weight_grad and v is None) or (input_grad and u is None):
        raise ValueError("winograd_conv_backward: expected the forward transforms each gradient "
                         "needs")
    n, o, oh, ow = gy.shape
    _, c, h, wd = x_shape
    p0, p1 = padding
    dtype = gy.dtype
    at, g, bt = _matrices(m, dtype)
    a, b_mat = np.ascontiguousarray(at.T), np.ascontiguousarray(bt.T)
    alpha = m + 2
    th, tw = tile_counts((oh, ow), m)
    dx = np.empty(x_shape, dtype=dtype) if input_grad else None
    chunks = ([b for b, _ in v] if v is not None else
              _chunks(n, alpha * alpha * th * tw * c))
    lists = _deal(len(chunks))

    def run(k: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        du = db = None
        for i in lists[k]:
            b = chunks[i]
            nb = b.stop - b.start
            # dM = A dY Aᵀ; the ragged tiles' surplus outputs have zero gradient
            gq = np.empty((th * m, tw * m, nb, o), dtype=dtype)
            gq[oh:] = 0
            gq[:oh, ow:] = 0
            for j in range(nb):
                gq[:oh, :ow, j] = gy[b.start + j].transpose(1, 2, 0)
            if bias_grad:  # Σ over pixels and images: one matrix-vector product
                part = np.ones(gq.size // o, dtype=dtype) @ gq.reshape(-1, o)
                db = part if db is None else db + part
            r = _along_first(a, _gather(gq, 1, tw, m, m))               # (ν, H_o, T_w, n, O)
            dm = _along_first(a, _gather(r, 1, th, m, m))               # (ξ, ν, T_h, T_w, n, O)
            dm = dm.reshape(alpha * alpha, -1, o)
            if dx is not None:
                dv = np.matmul(dm, u.transpose(0, 2, 1))               # (α², T·n, C)
                dt = _along_first(b_mat, dv.reshape(alpha, alpha, th, tw, nb, c))  # (k, ν, T…)
                dt = _along_first(b_mat, _scatter_add(dt, 1, th * m + 2, m))  # (k, H_q, T_w…)
                dxq = _scatter_add(dt, 1, tw * m + 2, m)                # (H_q, W_q, n, C)
                dx[b] = dxq[p0: p0 + h, p1: p1 + wd].transpose(2, 3, 0, 1)
            if weight_grad:
                part = np.matmul(dm.transpose(0, 2, 1), v[i][1])       # (α², O, C)
                du = part if du is None else du + part
        return du, db

    parts = _each(run, len(lists))
    dw = db = None
    if bias_grad:
        db = sum((p[1] for p in parts if p[1] is not None), np.zeros(o, dtype=dtype))
    if weight_grad:
        du = sum((p[0] for p in parts if p[0] is not None),
                 np.zeros((alpha * alpha, o, c), dtype=dtype))
        du = du.reshape(alpha, alpha, o, c)                            # (ξ, ν, O, C)
        t = _along_first(g.T, du)                                      # (u, ν, O, C)
        dw = np.ascontiguousarray(  # Gᵀ (∂L/∂U) G
            _along_first(g.T, t.transpose(1, 0, 2, 3)).transpose(2, 3, 1, 0))
    return dx, dw, db
