"""Shared checks of conv2d's fast routes against im2col, the plain route they must equal."""

import numpy as np

from foveal.scratch import Tensor
from foveal.scratch.ops.conv import conv2d


def float32_against_im2col(algorithm: str, kernel: int, rng: np.random.Generator
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(route, im2col)`` pairs of output, input gradient, weight gradient and bias gradient
    of a float32 "same" convolution (4 images, 16 → 16 channels, 32×32); each must stay
    float32."""
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    W = (0.1 * rng.standard_normal((16, 16, kernel, kernel))).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    g = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    out = {}
    for route in (algorithm, "im2col"):
        xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, W, b))
        y = conv2d(xt, wt, bt, padding=kernel // 2, algorithm=route)
        y.backward(g)
        assert y.dtype == xt.grad.dtype == wt.grad.dtype == bt.grad.dtype == np.float32
        out[route] = (y.data, xt.grad, wt.grad, bt.grad)
    return list(zip(out[algorithm], out["im2col"], strict=True))


def frozen_against_im2col(algorithm: str, x: np.ndarray, W: np.ndarray
                          ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(route, im2col)`` pairs of ∂L/∂x with the weights frozen and ∂L/∂W with the input
    frozen (L = Σ y, padding 1); the frozen side must get no gradient."""
    grads = {}
    for route in (algorithm, "im2col"):
        xt, wt = Tensor(x, requires_grad=True), Tensor(W)
        conv2d(xt, wt, padding=1, algorithm=route).sum().backward()
        xf, wf = Tensor(x), Tensor(W, requires_grad=True)
        conv2d(xf, wf, padding=1, algorithm=route).sum().backward()
        assert wt.grad is None and xf.grad is None
        grads[route] = (xt.grad, wf.grad)
    return list(zip(grads[algorithm], grads["im2col"], strict=True))
