"""Pooling: max, average, global average, and max-unpooling (NCHW, as torch).

Output size per axis: ``OH = ⌊(H + 2p − k) / s⌋ + 1`` (stride defaults to the kernel size).

- **max-pool** routes: each window's gradient goes to its maximum. Where windows overlap
  (stride < kernel) one input can be the maximum of several windows and receives the **sum** of
  their gradients. Ties go to the first maximum in the window in row-major order, as torch
  does on the CPU, so the result is deterministic. Padding is −∞, so it never wins.
- **average-pool** distributes ``g / (kH·kW)`` to every element of the window (padding counts
  in the divisor: torch's ``count_include_pad=True``).
- **max-unpool** scatters values back to the positions recorded by max-pool (the rest zero);
  its backward gathers from the same positions.
"""

from __future__ import annotations

import numpy as np

from foveal.scratch.ops.conv import Pair, _pair, col2im, conv_output_size, im2col
from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, node


def _windows(x: Tensor, kernel_size: Pair, stride: Pair | None, padding: Pair, op: str,
             pad_value: float) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise ValueError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    k = _pair(kernel_size, "kernel_size", op, 1)
    s = _pair(stride if stride is not None else k, "stride", op, 1)
    p = _pair(padding, "padding", op, 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: expected padding at most half the kernel {k}, got {p}")
    n, c, h, w = x.shape
    oh = conv_output_size(h, k[0], s[0], p[0])
    ow = conv_output_size(w, k[1], s[1], p[1])
    xp = np.pad(x.data, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])),
                constant_values=pad_value) if any(p) else x.data
    # one "group" per channel: cols (N·C, kH·kW, OH·OW) via the conv im2col on (1, N·C, ...)
    cols = im2col(xp.reshape(1, n * c, *xp.shape[2:]), *k, oh, ow, s, (1, 1), n * c)
    return cols, (n, c, oh, ow, *xp.shape[2:]), (*k, *s, *p)


def max_pool2d(x: ArrayLike, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
               return_indices: bool = False) -> Tensor | tuple[Tensor, np.ndarray]:
    """Max over each window; with ``return_indices`` also the flat index (into H·W of the
    channel, as torch) of each maximum, for :func:`max_unpool2d`."""
    x = as_tensor(x)
    cols, (n, c, oh, ow, hp, wp), (kh, kw, sh, sw, ph, pw) = _windows(
        x, kernel_size, stride, padding, "max_pool2d", -np.inf)
    arg = cols.argmax(axis=1)  # first maximum in row-major window order
    y = np.take_along_axis(cols, arg[:, None], axis=1).reshape(n, c, oh, ow)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        dcols = np.zeros_like(cols)
        np.put_along_axis(dcols, arg[:, None], g.reshape(n * c, 1, oh * ow), axis=1)
        # col2im adds overlapping windows: an input that wins k windows gets k gradients
        dxp = col2im(dcols, (1, n * c, hp, wp), kh, kw, oh, ow, (sh, sw), (1, 1), n * c)
        return (dxp.reshape(n, c, hp, wp)[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]],)

    out = node(y, (x,), backward, "max_pool2d")
    if not return_indices:
        return out
    u, v = np.divmod(arg, kw)
    rows = np.arange(oh)[:, None] * sh + u.reshape(n * c, oh, ow) - ph
    cols_ = np.arange(ow)[None, :] * sw + v.reshape(n * c, oh, ow) - pw
    indices = (rows * x.shape[3] + cols_).reshape(n, c, oh, ow).astype(np.int64)
    return out, indices


def avg_pool2d(x: ArrayLike, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0
               ) -> Tensor:
    """Mean over each window (zero padding counted in the divisor, as torch's default)."""
    x = as_tensor(x)
    cols, (n, c, oh, ow, hp, wp), (kh, kw, sh, sw, ph, pw) = _windows(
        x, kernel_size, stride, padding, "avg_pool2d", 0.0)
    y = cols.mean(axis=1).reshape(n, c, oh, ow)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        share = g.reshape(n * c, 1, oh * ow) / (kh * kw)
        dcols = np.broadcast_to(share, cols.shape)
        dxp = col2im(np.ascontiguousarray(dcols), (1, n * c, hp, wp), kh, kw, oh, ow,
                     (sh, sw), (1, 1), n * c)
        return (dxp.reshape(n, c, hp, wp)[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]],)

    return node(y, (x,), backward, "avg_pool2d")


def global_avg_pool2d(x: ArrayLike) -> Tensor:
    """(N, C, H, W) → (N, C): the mean over all positions; each receives ``g / (H·W)``."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: expected input (N, C, H, W), got shape {x.shape}")
    h, w = x.shape[2:]

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to(g[:, :, None, None] / (h * w), x.shape).copy(),)

    return node(x.data.mean(axis=(2, 3)), (x,), backward, "global_avg_pool2d")


def max_unpool2d(x: ArrayLike, indices: np.ndarray, kernel_size: Pair,
                 stride: Pair | None = None, padding: Pair = 0,
                 output_size: tuple[int, int] | None = None) -> Tensor:
    """Place each value of ``x`` (N, C, OH, OW) at its recorded flat position in a zero
    (N, C, H, W) map (torch's ``max_unpool2d``); the backward gathers from those positions."""
    x = as_tensor(x)
    idx = np.asarray(indices)
    if idx.shape != x.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"max_unpool2d: expected integer indices of shape {x.shape}, got "
                         f"{idx.dtype} {idx.shape}")
    k = _pair(kernel_size, "kernel_size", "max_unpool2d", 1)
    s = _pair(stride if stride is not None else k, "stride", "max_unpool2d", 1)
    p = _pair(padding, "padding", "max_unpool2d", 0)
    n, c, oh, ow = x.shape
    if output_size is None:
        h, w = (oh - 1) * s[0] - 2 * p[0] + k[0], (ow - 1) * s[1] - 2 * p[1] + k[1]
    else:
        h, w = output_size[-2:]
    flat = idx.reshape(n, c, -1)
    if flat.size and (flat.min() < 0 or flat.max() >= h * w):
        raise ValueError(f"max_unpool2d: indices must lie in [0, {h * w}) for output "
                         f"{(h, w)}, got range [{flat.min()}, {flat.max()}]")
    y = np.zeros((n, c, h * w), dtype=x.dtype)
    np.put_along_axis(y, flat, x.data.reshape(n, c, -1), axis=2)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.take_along_axis(g.reshape(n, c, -1), flat, axis=2).reshape(x.shape),)

    return node(y.reshape(n, c, h, w), (x,), backward, "max_unpool2d")
