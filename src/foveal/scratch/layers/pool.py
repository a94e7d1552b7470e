"""Pooling layers (no parameters) over :mod:`foveal.scratch.ops.pool`."""

from __future__ import annotations

import numpy as np

from foveal.scratch.layers.module import Module
from foveal.scratch.ops.conv import Pair
from foveal.scratch.ops.pool import avg_pool2d, global_avg_pool2d, max_pool2d, max_unpool2d
from foveal.scratch.tensor import Tensor


class MaxPool2d(Module):
    """Max over windows; ``return_indices`` also returns the positions for unpooling."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
                 return_indices: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.return_indices = return_indices

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, np.ndarray]:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.return_indices)


class AvgPool2d(Module):
    """Mean over windows (padding counted in the divisor)."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) → (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool2d(x)


class MaxUnpool2d(Module):
    """Inverse placement of :class:`MaxPool2d` with ``return_indices=True``."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor, indices: np.ndarray,
                output_size: tuple[int, int] | None = None) -> Tensor:
        return max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)
