"""2-D convolution (cross-correlation, as torch), a naive reference and a fast im2col version,
and the transposed convolution as its adjoint.

Conventions: input ``x`` (N, C_in, H, W); weight ``W`` (C_out, C_in/groups, kH, kW); output
(N, C_out, OH, OW) with

    y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x_pad[n, g·C_g + c, i·s + u·d, j·s + v·d]

(``g`` the group of channel ``o``, ``C_g = C_in/groups``) and

    OH = ⌊(H + 2p − d(kH − 1) − 1) / s⌋ + 1.

torch floors that division; with ``exact=True`` a remainder (some input rows never reach the
output) is an error instead.

The fast version: **im2col** stacks, for each kernel offset (u, v), the strided slice of the
padded input that offset sees, giving ``cols`` (G, C_g·kH·kW, N·OH·OW); then one matrix product
per group, ``Y = W_mat · cols``. Backward is that product's backward (multiply swaps):
``∂L/∂W_mat = G_y · colsᵀ`` and ``∂L/∂cols = W_matᵀ · G_y``, followed by **col2im**, the adjoint of
im2col, which adds each offset's slice back into the padded input (copy sums), and
``∂L/∂b = Σ G_y``.

For small channel counts the time goes to memory traffic, not arithmetic: so the batch is
processed in chunks whose im2col buffer (about ``CHUNK_ELEMENTS`` values) stays in the CPU cache
between being written and being read by the matrix product, and backward recomputes each
chunk's columns instead of keeping the whole buffer (less memory, less traffic).

Stride-1 convolutions can also go by the FFT (:mod:`.conv_fft`) or, with 3×3 kernels, by
Winograd's minimal filtering (:mod:`.conv_winograd`); :func:`conv2d`'s ``algorithm`` picks.

The transposed convolution is conv2d's adjoint: its forward is conv2d's input gradient, so
``⟨conv2d(x, W), y⟩ = ⟨x, conv_transpose2d(y, W)⟩``; it is not conv2d's inverse.
Reference: Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.ops.conv_fft import (
    BatchSpectra,
    batch_chunks,
    fft_conv_backward,
    fft_conv_forward,
    fft_shape,
)
from foveal.scratch.ops.conv_winograd import (
    TILE,
    WinogradInput,
    tile_counts,
    winograd_conv_backward,
    winograd_conv_forward,
)
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, float_tensor, node

Pair = int | tuple[int, int]


def _pair(value: Pair, name: str, op: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < minimum for v in pair):
        raise ValueError(f"{op}: expected {name} to be an int >= {minimum} or a pair of them, "
                         f"got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, exact: bool = False) -> int:
    """``⌊(size + 2p − d(k − 1) − 1) / s⌋ + 1``; with ``exact`` a non-zero remainder is an error."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        raise ValueError(f"conv: kernel {kernel} (dilation {dilation}) does not fit input size "
                         f"{size} with padding {padding}")
    if exact and span % stride:
        raise ValueError(
            f"conv: output size (size + 2p − d(k−1) − 1)/s + 1 = ({size} + {2 * padding} − "
            f"{dilation * (kernel - 1)} − 1)/{stride} + 1 is not an integer"
        )
    return span // stride + 1


def _check(x: Tensor, w: Tensor, b: Tensor | None, groups: int, op: str,
           transposed: bool = False) -> None:
    for name, t in (("input", x), ("weight", w)):
        if t.dtype.kind != "f":
            raise ValueError(f"{op}: expected a floating-point {name}, got dtype {t.dtype}")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W) and a 4-D weight, got {x.shape} "
                         f"and {w.shape}")
    if groups < 1:
        raise ValueError(f"{op}: expected groups >= 1, got {groups}")
    c_in = w.shape[0] if transposed else w.shape[1] * groups
    if x.shape[1] != c_in or (not transposed and w.shape[0] % groups) or (
            transposed and w.shape[0] % groups):
        raise ValueError(f"{op}: expected input channels {c_in} for weight {w.shape} and "
                         f"groups={groups}, got input {x.shape}")
    c_out = w.shape[1] * groups if transposed else w.shape[0]
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"{op}: expected bias of shape ({c_out},), got {b.shape}")


def im2col(xp: np.ndarray, kh: int, kw: int, oh: int, ow: int, s: tuple[int, int],
           d: tuple[int, int], groups: int) -> np.ndarray:
    """Padded (N, C, Hp, Wp) → cols (G, C_g·kH·kW, N·OH·OW), rows ordered (c, u, v)."""
    n, c = xp.shape[:2]
    cg = c // groups
    cols = np.empty((groups, cg, kh, kw, n, oh, ow), dtype=xp.dtype)
    xg = xp.reshape(n, groups, cg, *xp.shape[2:]).transpose(1, 2, 0, 3, 4)  # (G, Cg, N, Hp, Wp)
    for u in range(kh):
        for v in range(kw):
            r, q = u * d[0], v * d[1]
            cols[:, :, u, v] = xg[..., r: r + s[0] * (oh - 1) + 1: s[0],
                                  q: q + s[1] * (ow - 1) + 1: s[1]]
    return cols.reshape(groups, cg * kh * kw, n * oh * ow)


def col2im(cols: np.ndarray, shape: tuple[int, ...], kh: int, kw: int, oh: int, ow: int,
           s: tuple[int, int], d: tuple[int, int], groups: int) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every offset's slice back into a padded array."""
    n, c, hp, wp = shape
    cg = c // groups
    cols = cols.reshape(groups, cg, kh, kw, n, oh, ow)
    out = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    og = out.reshape(n, groups, cg, hp, wp).transpose(1, 2, 0, 3, 4)  # a view, (G, Cg, N, ...)
    for u in range(kh):
        for v in range(kw):
            r, q = u * d[0], v * d[1]
            og[..., r: r + s[0] * (oh - 1) + 1: s[0], q: q + s[1] * (ow - 1) + 1: s[1]] += (
                cols[:, :, u, v])
    return out


CHUNK_ELEMENTS = 1 << 19  # im2col values per batch chunk (2 MB in float32): stays in cache


def _pad(x: np.ndarray, p: tuple[int, int]) -> np.ndarray:
    """(N, C, H, W) → (N, C, H + 2p₀, W + 2p₁) with zeros around each map (``x`` when p = 0)."""
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))) if any(p) else x


def _conv_forward(xd: np.ndarray, wd: np.ndarray, s: tuple[int, int], p: tuple[int, int],
                  d: tuple[int, int], groups: int, exact: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """conv2d without bias → (y (N, C_out, OH, OW), the padded input kept for backward)."""
    n, _, h, w = xd.shape
    c_out, cg, kh, kw = wd.shape
    oh = conv_output_size(h, kh, s[0], p[0], d[0], exact)
    ow = conv_output_size(w, kw, s[1], p[1], d[1], exact)
    xp = _pad(xd, p)
    wmat = wd.reshape(groups, c_out // groups, cg * kh * kw)
    y = np.empty((n, c_out, oh, ow), dtype=np.result_type(xd, wd))
    for b in batch_chunks(n, cg * groups * kh * kw * oh * ow, CHUNK_ELEMENTS):
        cols = im2col(xp[b], kh, kw, oh, ow, s, d, groups)
        yb = np.matmul(wmat, cols)  # (G, O_g, n_b·OH·OW)
        y[b] = yb.reshape(c_out, -1, oh, ow).transpose(1, 0, 2, 3)
    return y, xp


def _conv_backward(g: np.ndarray, wd: np.ndarray, xp_shape: tuple[int, ...],
                   xp: np.ndarray | None, s: tuple[int, int], d: tuple[int, int], groups: int,
                   input_grad: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """conv2d's gradients for upstream ``g`` (N, C_out, OH, OW), one pass over batch chunks.

    ∂L/∂x_pad = col2im(W_matᵀ · G_mat) if ``input_grad``; ∂L/∂W = Σ_chunks G_mat · colsᵀ when
    the padded input ``xp`` is given (its columns are recomputed per chunk).
    ``wd`` (C_out, C_g, kH, kW).
    """
    n, c_out, oh, ow = g.shape
    _, cg, kh, kw = wd.shape
    wmat_t = wd.reshape(groups, c_out // groups, cg * kh * kw).transpose(0, 2, 1)
    dtype = np.result_type(g, wd)
    dxp = np.empty(xp_shape, dtype=dtype) if input_grad else None
    dw = None if xp is None else np.zeros(wmat_t.transpose(0, 2, 1).shape, dtype=dtype)
    for b in batch_chunks(n, cg * groups * kh * kw * oh * ow, CHUNK_ELEMENTS):
        gmat = g[b].transpose(1, 0, 2, 3).reshape(groups, c_out // groups, -1)
        if dxp is not None:
            dcols = np.matmul(wmat_t, gmat)
            dxp[b] = col2im(dcols, (dcols.shape[2] // (oh * ow), *xp_shape[1:]), kh, kw, oh,
                            ow, s, d, groups)
        if dw is not None:
            cols = im2col(xp[b], kh, kw, oh, ow, s, d, groups)
            dw += np.matmul(gmat, cols.transpose(0, 2, 1))
    return dxp, None if dw is None else dw.reshape(c_out, cg, kh, kw)


def _unpad(a: np.ndarray, p: tuple[int, int], hw: tuple[int, ...]) -> np.ndarray:
    return a[:, :, p[0]: p[0] + hw[0], p[1]: p[1] + hw[1]]


ALGORITHMS = ("auto", "im2col", "fft", "winograd")


def check_algorithm(algorithm: str, op: str) -> None:
    """Raise a one-line ValueError unless ``algorithm`` is one of :data:`ALGORITHMS`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: expected algorithm one of {', '.join(ALGORITHMS)}, got "
                         f"{algorithm!r}")


def fft_applies(stride: tuple[int, int], dilation: tuple[int, int], groups: int,
                kernel: tuple[int, int]) -> bool:
    """Whether the FFT route (:mod:`.conv_fft`) can compute this convolution: stride 1, no
    dilation, one group and a kernel larger than 1×1 (a 1×1 convolution is one matrix product)."""
    return stride == (1, 1) and dilation == (1, 1) and groups == 1 and kernel != (1, 1)


FFT_WEIGHT_SPECTRA_BYTES = 128 * 2**20
"""The FFT route holds the kernels' spectra, S_h·(S_w/2+1)·C_in·C_out complex values, whatever
the batch size; past this many bytes ``"auto"`` takes im2col."""


def winograd_applies(stride: tuple[int, int], dilation: tuple[int, int], groups: int,
                     kernel: tuple[int, int]) -> bool:
    """Whether the Winograd route (:mod:`.conv_winograd`) can compute this convolution: a 3×3
    kernel, stride 1, no dilation and one group."""
    return stride == (1, 1) and dilation == (1, 1) and groups == 1 and kernel == (3, 3)


def _fft_ms(n: int, c_in: int, c_out: int, fft_hw: tuple[int, int]) -> float:
    s2 = fft_hw[0] * fft_hw[1]
    return s2 * (n * (2.3e-5 * (c_in + c_out) + 8.1e-7 * c_in * c_out) + 4.0e-6 * c_in * c_out)


def _im2col_ms(n: int, c_in: int, c_out: int, kernel: tuple[int, int],
               out_hw: tuple[int, int]) -> float:
    return n * out_hw[0] * out_hw[1] * kernel[0] * kernel[1] * c_in * (4.4e-6 + 1.1e-7 * c_out)


def _winograd_ms(n: int, c_in: int, c_out: int, out_hw: tuple[int, int]) -> float:
    th, tw = tile_counts(out_hw)
    return 0.5 + n * th * tw * (TILE + 2) ** 2 * (
        4.8e-5 + 4.0e-6 * (c_in + c_out) + 2.2e-7 * c_in * c_out)


def _spectra_fit(c_in: int, c_out: int, fft_hw: tuple[int, int], itemsize: int) -> bool:
    """Whether the kernels' spectra stay within :data:`FFT_WEIGHT_SPECTRA_BYTES`."""
    s2 = fft_hw[0] * fft_hw[1]
    return s2 // 2 * c_in * c_out * 2 * itemsize <= FFT_WEIGHT_SPECTRA_BYTES


def prefers_fft(n: int, c_in: int, c_out: int, kernel: tuple[int, int], out_hw: tuple[int, int],
                fft_hw: tuple[int, int], itemsize: int = 4) -> bool:
    """Whether the FFT is estimated cheaper than im2col (:func:`auto_algorithm`'s FFT and
    im2col estimates; also False where the kernels' spectra would exceed
    :data:`FFT_WEIGHT_SPECTRA_BYTES`)."""
    return _spectra_fit(c_in, c_out, fft_hw, itemsize) and (
        _fft_ms(n, c_in, c_out, fft_hw) < _im2col_ms(n, c_in, c_out, kernel, out_hw))


def auto_algorithm(n: int, c_in: int, c_out: int, kernel: tuple[int, int],
                   out_hw: tuple[int, int], fft_hw: tuple[int, int],
                   stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1),
                   groups: int = 1, itemsize: int = 4) -> str:
    """``algorithm="auto"``'s choice: the cheapest applicable route by cost estimates in
    milliseconds of forward + backward on CPU, fitted to ``bench/scratch_conv.py``'s timings
    (N = 64, 16–128 channels, 3×3 and 5×5 kernels, 32×32 maps):

        FFT      ≈ S_h·S_w · (N · (2.3e-5 · (C_in + C_out) + 8.1e-7 · C_in·C_out)   per image
                              + 4.0e-6 · C_in·C_out)                                the kernels
        im2col   ≈ N · OH·OW·k² · C_in · (4.4e-6 + 1.1e-7 · C_out)
        Winograd ≈ 0.5 + N · T · 36 · (4.8e-5 + 4.0e-6 · (C_in + C_out) + 2.2e-7 · C_in·C_out)

    with ``T = ⌈OH/4⌉·⌈OW/4⌉`` F(4×4, 3×3) tiles. FFT and im2col: two-thread timings on CPU-2.
    Winograd: its time relative to im2col's, measured single-threaded (CPU time, alternating
    routes, on a loaded 2-core machine) on 17 shapes (N = 1, 8, 64; C_in, C_out from 3 to
    256; 8×8 to 32×32 maps), times the im2col estimate; its 0.5 ms is the fixed cost of its
    ~50 array operations. Every choice between the two matched the measurement there.

    The FFT's per-image cost does not grow with the kernel: it wins at 5×5 and loses at 3×3
    there; transforming the kernels (and the weight gradient back) costs about five images'
    channel products, once per batch, which tips single images towards im2col. Spectra of the
    kernels larger than :data:`FFT_WEIGHT_SPECTRA_BYTES` also send it to im2col. Winograd
    (3×3 only) copies the input 2.25× where im2col copies it 9×: it took 0.45–0.6× im2col's
    time from 16 channels on, but its transforms cost per tile and channel however few the
    channels, and it has a fixed cost, so an RGB input layer (C_in = 3) and a single image
    with 16 channels stay with im2col. Half precision (``itemsize`` < 4) never goes to
    Winograd: its transforms' ±2 points and fractions down to 1/24 make its float16 error
    ~25× im2col's (float32: 5–10×).
    """
    costs = {"im2col": _im2col_ms(n, c_in, c_out, kernel, out_hw)}
    if fft_applies(stride, dilation, groups, kernel) and _spectra_fit(c_in, c_out, fft_hw,
                                                                       itemsize):
        costs["fft"] = _fft_ms(n, c_in, c_out, fft_hw)
    if itemsize >= 4 and winograd_applies(stride, dilation, groups, kernel):
        costs["winograd"] = _winograd_ms(n, c_in, c_out, out_hw)
    return min(costs, key=costs.__getitem__)


def conv2d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: Pair = 1,
           padding: Pair = 0, dilation: Pair = 1, groups: int = 1, exact: bool = False,
           algorithm: str = "auto") -> Tensor:
    """Fast 2-D convolution: by im2col and one matrix product per group, by the FFT or by
    Winograd's minimal filtering.

    x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out,) → (N, C_out, OH, OW).
    ``exact=True`` rejects a non-integer output size instead of flooring it. ``algorithm``:
    ``"im2col"`` (module doc; any stride, dilation and groups), ``"fft"`` (:mod:`.conv_fft`;
    stride 1, no dilation, one group), ``"winograd"`` (:mod:`.conv_winograd`; 3×3 kernels,
    stride 1, no dilation, one group) or ``"auto"``: the cheapest applicable route by
    :func:`auto_algorithm`'s cost estimates. All give the same values up to rounding, but in
    float32 the FFT's rounding error scales with the largest values of each map rather than
    with each output (outputs far smaller than the map's largest are less precise), and
    Winograd F(4×4, 3×3)'s is a few times im2col's (pass float64, or ``"im2col"``, where that
    matters).
    """
    x, w = float_tensor(x, "conv2d", "input"), float_tensor(weight, "conv2d", "weight")
    b = as_tensor(bias) if bias is not None else None
    _check(x, w, b, groups, "conv2d")
    s = _pair(stride, "stride", "conv2d", 1)
    p = _pair(padding, "padding", "conv2d", 0)
    d = _pair(dilation, "dilation", "conv2d", 1)
    kernel = (w.shape[2], w.shape[3])
    check_algorithm(algorithm, "conv2d")
    if algorithm == "fft" and (s != (1, 1) or d != (1, 1) or groups != 1):
        raise ValueError(f"conv2d: algorithm 'fft' needs stride 1, dilation 1 and groups 1, got "
                         f"stride={s}, dilation={d}, groups={groups}")
    if algorithm == "winograd" and not winograd_applies(s, d, groups, kernel):
        raise ValueError(f"conv2d: algorithm 'winograd' needs a 3×3 kernel, stride 1, dilation 1 "
                         f"and groups 1, got kernel={kernel}, stride={s}, dilation={d}, "
                         f"groups={groups}")
    if algorithm in ("fft", "winograd") or (algorithm == "auto" and
                                            fft_applies(s, d, groups, kernel)):
        # stride 1: the same size checks (and errors) as im2col's
        out_hw = (conv_output_size(x.shape[2], kernel[0], 1, p[0]),
                  conv_output_size(x.shape[3], kernel[1], 1, p[1]))
        if algorithm == "auto":
            fft_hw = fft_shape(x.shape[2] + 2 * p[0], x.shape[3] + 2 * p[1])
            algorithm = auto_algorithm(x.shape[0], w.shape[1], w.shape[0], kernel, out_hw,
                                       fft_hw, s, d, groups, np.result_type(x, w).itemsize)
    xp: np.ndarray | None = None
    spectra: tuple[BatchSpectra | None, np.ndarray | None] = (None, None)
    transforms: tuple[WinogradInput | None, np.ndarray | None] = (None, None)
    if algorithm == "fft":
        xpad = _pad(x.data, p)
        y, (x_hat, w_hat) = fft_conv_forward(xpad, w.data)
        # backward needs x̂ only for ∂L/∂W and Ŵ only for ∂L/∂x, and not the padded input
        spectra = (x_hat if w.requires_grad else None, w_hat if x.requires_grad else None)
    elif algorithm == "winograd":  # pads as it copies the input into its tiles
        xpad = x.data
        # adds the bias in its chunks, and sums the bias gradient in them
        y, v, u = winograd_conv_forward(x.data, w.data, p, keep_v=w.requires_grad,
                                        bias=None if b is None else b.data)
        transforms = (v, u if x.requires_grad else None)
    else:
        y, xpad = _conv_forward(x.data, w.data, s, p, d, groups, exact)
        xp = xpad if w.requires_grad else None
    xp_shape = xpad.shape
    if b is not None and algorithm != "winograd":
        y += b.data[:, None, None]
    parents = (x, w) if b is None else (x, w, b)

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        if algorithm == "winograd":  # ∂L/∂x itself, not the padded input's
            dx, dw, db = winograd_conv_backward(g, *transforms, x.shape, x.requires_grad,
                                                w.requires_grad, padding=p,
                                                bias_grad=b is not None and b.requires_grad)
            return [dx, dw] if b is None else [dx, dw, db]
        if algorithm == "fft":
            dxp, dw = fft_conv_backward(g, spectra, xp_shape, kernel, x.requires_grad,
                                        w.requires_grad)
        else:
            dxp, dw = _conv_backward(g, w.data, xp_shape, xp, s, d, groups,
                                     input_grad=x.requires_grad)
        dx = None if dxp is None else _unpad(dxp, p, x.shape[2:])
        grads: list[np.ndarray | None] = [dx, dw]
        if b is not None:
            grads.append(g.sum(axis=(0, 2, 3)))
        return grads

    return node(y, parents, backward, "conv2d")


def conv2d_naive(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
                 stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: int = 1
                 ) -> Tensor:
    """The readable reference: the definition in the module doc as loops over output pixels.

    Forward: each output pixel is a dot product of the kernel with the window it sees.
    Backward: each output pixel's gradient flows back to that window (multiply swaps): the
    window's values go to ∂L/∂W and the kernel, times the gradient, is added into ∂L/∂x.
    Slow; for teaching and for testing :func:`conv2d`.
    """
    x, w = float_tensor(x, "conv2d_naive", "input"), float_tensor(weight, "conv2d_naive", "weight")
    b = as_tensor(bias) if bias is not None else None
    _check(x, w, b, groups, "conv2d_naive")
    s = _pair(stride, "stride", "conv2d_naive", 1)
    p = _pair(padding, "padding", "conv2d_naive", 0)
    d = _pair(dilation, "dilation", "conv2d_naive", 1)
    n, _, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    oh = conv_output_size(h, kh, s[0], p[0], d[0])
    ow = conv_output_size(wd, kw, s[1], p[1], d[1])
    xp = _pad(x.data, p)
    y = np.zeros((n, c_out, oh, ow), dtype=x.dtype)

    def window(i: int, j: int, grp: int) -> tuple[slice, slice, slice]:
        r, q = i * s[0], j * s[1]
        return (slice(grp * cg, (grp + 1) * cg),
                slice(r, r + d[0] * (kh - 1) + 1, d[0]), slice(q, q + d[1] * (kw - 1) + 1, d[1]))

    for o in range(c_out):
        for i in range(oh):
            for j in range(ow):
                cs, rs, qs = window(i, j, o // og)
                y[:, o, i, j] = np.sum(xp[:, cs, rs, qs] * w.data[o], axis=(1, 2, 3))
    if b is not None:
        y += b.data[:, None, None]

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(w.data)
        for o in range(c_out):
            for i in range(oh):
                for j in range(ow):
                    cs, rs, qs = window(i, j, o // og)
                    go = g[:, o, i, j][:, None, None, None]
                    dw[o] += np.sum(go * xp[:, cs, rs, qs], axis=0)
                    dxp[:, cs, rs, qs] += go * w.data[o]
        grads: list[np.ndarray | None] = [dxp[:, :, p[0]: p[0] + h, p[1]: p[1] + wd], dw]
        if b is not None:
            grads.append(g.sum(axis=(0, 2, 3)))
        return grads

    return node(y, (x, w) if b is None else (x, w, b), backward, "conv2d_naive")


def conv_transpose2d(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
                     stride: Pair = 1, padding: Pair = 0, output_padding: Pair = 0,
                     groups: int = 1, dilation: Pair = 1) -> Tensor:
    """The adjoint of :func:`conv2d` (torch's ``conv_transpose2d``).

    x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) (torch's layout), bias (C_out,) →
    (N, C_out, OH, OW) with ``OH = (H − 1)s − 2p + d(kH − 1) + output_padding + 1``.
    Forward = conv2d's input gradient; its input gradient = conv2d's forward; its weight
    gradient = conv2d's weight gradient with the roles of input and output exchanged.
    """
    x = float_tensor(x, "conv_transpose2d", "input")
    w = float_tensor(weight, "conv_transpose2d", "weight")
    b = as_tensor(bias) if bias is not None else None
    _check(x, w, b, groups, "conv_transpose2d", transposed=True)
    s = _pair(stride, "stride", "conv_transpose2d", 1)
    p = _pair(padding, "padding", "conv_transpose2d", 0)
    d = _pair(dilation, "dilation", "conv_transpose2d", 1)
    op = _pair(output_padding, "output_padding", "conv_transpose2d", 0)
    if op[0] >= max(s[0], d[0]) or op[1] >= max(s[1], d[1]):
        raise ValueError(f"conv_transpose2d: expected output_padding smaller than stride or "
                         f"dilation, got output_padding={op}, stride={s}, dilation={d}")
    n, _, h, wd = x.shape
    _, og, kh, kw = w.shape
    c_out = og * groups
    out_h = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    out_w = (wd - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"conv_transpose2d: output size ({out_h}, {out_w}) is not positive for "
                         f"input {x.shape}")
    # as a conv2d, this op's weight is (C_in, C_out/groups, kH, kW) read as (out, in) groups
    xp_shape = (n, c_out, out_h + 2 * p[0], out_w + 2 * p[1])
    yp = _conv_backward(x.data, w.data, xp_shape, None, s, d, groups)[0]
    assert yp is not None
    y = np.ascontiguousarray(_unpad(yp, p, (out_h, out_w)))
    if b is not None:
        y += b.data[:, None, None]

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        # conv2d's forward maps the upstream gradient back onto the input grid
        gx, gp = _conv_forward(g, w.data, s, p, d, groups, exact=False)
        grads: list[np.ndarray | None] = [gx[:, :, :h, :wd] if x.requires_grad else None, None]
        if w.requires_grad:
            # conv2d's weight gradient with x as the upstream gradient of a conv2d of g
            xs = x.data[:, :, : gx.shape[2], : gx.shape[3]]
            grads[1] = _conv_backward(xs, w.data, gp.shape, gp, s, d, groups,
                                      input_grad=False)[1]
        if b is not None:
            grads.append(g.sum(axis=(0, 2, 3)))
        return grads

    return node(y, (x, w) if b is None else (x, w, b), backward, "conv_transpose2d")
