"""2-D convolution by the FFT: cross-correlation as a product of spectra.

For stride 1, no dilation and one group, conv2d's definition (see :mod:`.conv`) reads, for each
output channel ``o``,

    y[n, o] = Σ_c  x_pad[n, c] ⋆ W[o, c]        (⋆: 'valid' cross-correlation)

Zero-pad every map to ``S_h × S_w`` with ``S ≥`` the padded input size, so that no index wraps
around, and the correlation theorem turns each ⋆ into a product of 2-D real FFTs (``^``),
frequency by frequency ``f``; the sum over channels becomes, at each frequency, one complex
matrix product (N × C_in)(C_in × C_out):

    ŷ[n, o, f] = Σ_c x̂[n, c, f] · conj(Ŵ[o, c, f])                    forward
    ∂L/∂x̂_pad[n, c, f] = Σ_o ĝ[n, o, f] · Ŵ[o, c, f]                   (g convolved with W)
    ∂L/∂Ŵ[o, c, f] = Σ_n conj(ĝ[n, o, f]) · x̂[n, c, f]                 (x correlated with g)

(multiply swaps, as in the im2col version, but in the frequency domain; the input gradient is a
true convolution, the adjoint of the forward correlation), each read back with an inverse FFT
and cropped to ``(OH, OW)``, ``(H_p, W_p)`` and ``(kH, kW)``. No index wraps: the largest
index any of the three sums reaches is ``H_p − 1 < S_h`` (``OH − 1 + kH − 1 = H_p − 1``).

Cost per (image, input channel, output channel): about ``8 · S_h · (S_w/2 + 1)`` real flops
for the complex products (a complex multiply-add is 8) against ``2 · k² · OH · OW`` for the
direct sum, 3.4×
fewer for 3×3 and 9.4× fewer for 5×5 kernels on 32×32 maps (S = 36), plus two FFTs per input
and per output map, which do not depend on the kernel size, and two per kernel, once a batch.
Unlike im2col it never builds a ``k²``-times larger copy of the input, which is what makes
small channel counts memory-bound there.

Reference: Mathieu, Henaff & LeCun, "Fast Training of Convolutional Networks through FFTs",
ICLR 2014.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

import numpy as np
import scipy.fft as sfft
from threadpoolctl import ThreadpoolController

T = TypeVar("T")


def fft_workers() -> int:
    """Threads for the FFTs, read at each call: ``OPENBLAS_NUM_THREADS``, else
    ``OMP_NUM_THREADS`` (the variables that set NumPy's BLAS threads), else every core this
    process may use. Limits set at run time (threadpoolctl, ``MKL_NUM_THREADS``) are not seen."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def fft_shape(hp: int, wp: int) -> tuple[int, int]:
    """The transform size: the smallest fast sizes (factors 2, 3, 5) ≥ the padded input."""
    return sfft.next_fast_len(hp, real=True), sfft.next_fast_len(wp, real=True)


def _spectra(a: np.ndarray, s: tuple[int, int], workers: int) -> np.ndarray:
    """(A, B, h, w) real → frequency-major (S_h·(S_w/2+1), A, B) complex, zero-padded to ``s``."""
    spec = sfft.rfft2(a, s=s, workers=workers)
    return np.ascontiguousarray(spec.transpose(2, 3, 0, 1)).reshape(
        s[0] * (s[1] // 2 + 1), *a.shape[:2])


def _maps(spec: np.ndarray, s: tuple[int, int], crop: tuple[int, ...], dtype: np.dtype,
          workers: int) -> np.ndarray:
    """Frequency-major (F, A, B) complex → real (A, B, crop) maps; inverts :func:`_spectra`."""
    fw = s[1] // 2 + 1
    full = spec.reshape(s[0], fw, *spec.shape[1:]).transpose(2, 3, 0, 1)
    out = sfft.irfft2(full, s=s, workers=workers)[..., : crop[0], : crop[1]]
    return np.ascontiguousarray(out, dtype=dtype)


def batch_chunks(n: int, per_image: int, budget: int, parts: int = 1) -> list[slice]:
    """The batch ``0 … n − 1`` cut into slices of at most ``budget`` buffer values each, at
    ``per_image`` values per image (at least one image a slice): the chunk size that keeps a
    route's buffers in the CPU cache (im2col's columns, Winograd's tiles). The slices are a
    multiple of ``parts`` in number where there are enough images, and differ by one image at
    most, so ``parts`` threads given contiguous runs of them get equal work, to one image (64
    images at 7 a chunk are ten chunks of 6 or 7, 32 images to each of two threads, not nine
    of 7 and one of 1, which left one thread 35 and the other 29)."""
    step = max(1, budget // max(per_image, 1))
    count = -(-n // step)
    count = min(n, -(-count // parts) * parts)
    bounds = [n * k // count for k in range(count + 1)] if count else [0]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def _batch_parts(n: int) -> list[slice]:
    """The batch split into one part per worker thread (at least 8 images each): the parts run
    concurrently, since NumPy, scipy.fft and BLAS release the GIL, so the copies and the small
    per-frequency products run in parallel too, not only the transforms."""
    k = max(1, min(fft_workers(), n // 8))
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


@cache
def _pool(count: int) -> ThreadPoolExecutor:
    """A pool of ``count`` threads, made once and reused by every convolution (starting threads
    at each forward and backward pass would cost more than the smaller convolutions)."""
    return ThreadPoolExecutor(count, thread_name_prefix="foveal-fft")


@cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (found once: the search costs ~1 ms)."""
    return ThreadpoolController()


_limit_lock = threading.Lock()
_limit_state: dict[str, Any] = {"users": 0, "limiter": None}


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS at one thread while any caller is inside, restored when the last one leaves.

    The BLAS thread count is a process-wide setting: concurrent convolutions (from several
    user threads) share one limit, counted under a lock, so that none restores it while
    another still runs and the original count is always restored in the end. While a
    convolution runs, other NumPy work in the process also gets one BLAS thread."""
    with _limit_lock:
        if _limit_state["users"] == 0:
            _limit_state["limiter"] = _blas().limit(limits=1, user_api="blas")
        _limit_state["users"] += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_state["users"] -= 1
            if _limit_state["users"] == 0:
                _limit_state["limiter"].restore_original_limits()
                _limit_state["limiter"] = None


def _each(fn: Callable[[int], T], count: int) -> list[T]:
    """``[fn(0), …, fn(count − 1)]``, on ``count`` threads when there is more than one, with
    one BLAS thread each (:func:`_one_blas_thread`): the workers already share out the cores,
    and BLAS threads of their own on top would oversubscribe them (a 16-channel 3×3 Winograd
    forward and backward of 64 images on two cores: 55 ms with two BLAS threads per worker,
    39 with one)."""
    if count == 1:
        return [fn(0)]
    with _one_blas_thread():
        return list(_pool(count).map(fn, range(count)))


def _dft(size: int, taps: int, rows: int, sign: float, dtype: np.dtype) -> np.ndarray:
    """``E[f, u] = exp(sign · 2πi · f·u / size)`` for ``f < rows``, ``u < taps``: the part of a
    DFT matrix that a short (``taps``-long) signal sees."""
    phase = np.outer(np.arange(rows), np.arange(taps)) % size  # exact integer phases
    return np.exp(sign * 2j * np.pi * phase / size).astype(dtype)


def _kernel_spectra(w: np.ndarray, s: tuple[int, int]) -> np.ndarray:
    """(A, B, k_h, k_w) real kernels → frequency-major (S_h·(S_w/2+1), A, B) spectra, as
    :func:`_spectra` but by two small DFT products, ``Ŵ = E_h · W · E_wᵀ``: a k×k kernel
    zero-padded to S×S costs a full FFT, while the products cost k·(S_w/2+1)·(k + S_h)."""
    kh, kw = w.shape[2:]
    cdtype = np.result_type(w.dtype, np.complex64)
    fw = s[1] // 2 + 1
    t = w @ _dft(s[1], kw, fw, -1.0, cdtype).T                     # (A, B, k_h, F_w)
    t = np.ascontiguousarray(t.transpose(2, 3, 0, 1)).reshape(kh, -1)  # (k_h, F_w·A·B)
    return (_dft(s[0], kh, s[0], -1.0, cdtype) @ t).reshape(-1, *w.shape[:2])


def _kernel_maps(spec: np.ndarray, s: tuple[int, int], kernel: tuple[int, int],
                 dtype: np.dtype) -> np.ndarray:
    """Frequency-major (F, A, B) spectra → the real (A, B, k_h, k_w) corner of their inverse
    transforms, as :func:`_maps` but by two small DFT products. For a real signal's half
    spectrum, ``x[u, v] = Re Σ_{f_h, f_w} c_{f_w} X[f_h, f_w] e^{2πi(f_h u/S_h + f_w v/S_w)} /
    (S_h S_w)`` with ``c = 1`` at ``f_w = 0`` (and at S_w/2 for even S_w), ``c = 2`` between."""
    kh, kw = kernel
    fw = s[1] // 2 + 1
    a, b = spec.shape[1:]
    c = np.full(fw, 2.0)
    c[0] = 1.0
    if s[1] % 2 == 0:
        c[-1] = 1.0
    rows = _dft(s[0], s[0], kh, 1.0, spec.dtype) @ spec.reshape(s[0], -1)   # (k_h, F_w·A·B)
    rows = rows.reshape(kh, fw, a, b).transpose(0, 2, 3, 1)                  # (k_h, A, B, F_w)
    cols = _dft(s[1], fw, kw, 1.0, spec.dtype).T * c[:, None].astype(spec.dtype)  # (F_w, k_w)
    out = (rows @ cols).real.transpose(1, 2, 0, 3) / (s[0] * s[1])          # (A, B, k_h, k_w)
    return np.ascontiguousarray(out, dtype=dtype)


BatchSpectra = list[tuple[slice, np.ndarray]]
"""The input's spectra as (batch part, (F, part size, C_in) spectra) pairs, one per thread."""


def fft_conv_forward(xp: np.ndarray, w: np.ndarray
                     ) -> tuple[np.ndarray, tuple[BatchSpectra, np.ndarray]]:
    """Stride-1 correlation of the padded input ``xp`` (N, C_in, H_p, W_p) with ``w``
    (C_out, C_in, kH, kW) → (y (N, C_out, OH, OW), the spectra kept for backward: x̂ per batch
    part and Ŵ (F, C_out, C_in))."""
    n, _, hp, wp = xp.shape
    kh, kw = w.shape[2:]
    s = fft_shape(hp, wp)
    w_hat = _kernel_spectra(w, s)                    # (F, C_out, C_in)
    w_t = w_hat.conj().transpose(0, 2, 1)            # (F, C_in, C_out)
    y = np.empty((n, w.shape[0], hp - kh + 1, wp - kw + 1), dtype=np.result_type(xp, w))
    parts = _batch_parts(n)
    workers = max(1, fft_workers() // len(parts))

    def run(i: int) -> tuple[slice, np.ndarray]:
        x_hat = _spectra(xp[parts[i]], s, workers)   # (F, n_i, C_in)
        y[parts[i]] = _maps(np.matmul(x_hat, w_t), s, y.shape[2:], y.dtype, workers)
        return parts[i], x_hat

    return y, (_each(run, len(parts)), w_hat)


def fft_conv_backward(g: np.ndarray, spectra: tuple[BatchSpectra | None, np.ndarray | None],
                      xp_shape: tuple[int, ...], kernel: tuple[int, int], input_grad: bool = True,
                      weight_grad: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`fft_conv_forward` for upstream ``g`` (N, C_out, OH, OW):
    (∂L/∂x_pad (N, C_in, H_p, W_p) or None, ∂L/∂W (C_out, C_in, kH, kW) or None).
    ``spectra`` = (x̂, Ŵ) from the forward pass; x̂ may be None without ``weight_grad`` and Ŵ
    without ``input_grad``. ∂L/∂Ŵ sums the batch parts' products."""
    x_hat, w_hat = spectra
    if (weight_grad and x_hat is None) or (input_grad and w_hat is None):
        raise ValueError("fft_conv_backward: expected the forward spectra each gradient needs")
    s = fft_shape(*xp_shape[2:])
    parts = [part for part, _ in x_hat] if x_hat is not None else _batch_parts(g.shape[0])
    workers = max(1, fft_workers() // len(parts))
    dxp = np.empty(xp_shape, dtype=g.dtype) if input_grad else None

    def run(i: int) -> np.ndarray | None:
        g_hat = _spectra(g[parts[i]], s, workers)   # (F, n_i, C_out)
        if dxp is not None:
            dxp[parts[i]] = _maps(np.matmul(g_hat, w_hat), s, xp_shape[2:], g.dtype, workers)
        if not weight_grad:
            return None
        return np.matmul(g_hat.conj().transpose(0, 2, 1), x_hat[i][1])   # (F, C_out, C_in)

    dw_parts = _each(run, len(parts))
    dw = None
    if weight_grad:
        dw = _kernel_maps(sum(dw_parts[1:], dw_parts[0]), s, kernel, g.dtype)
    return dxp, dw
