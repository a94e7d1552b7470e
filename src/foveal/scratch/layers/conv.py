"""Convolution layers with torch's parameter shapes and default initialisation."""

from __future__ import annotations

import numpy as np

from foveal.scratch.init import kaiming_uniform_linear
from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.conv import Pair, _pair, check_algorithm, conv2d, conv_transpose2d
from foveal.scratch.tensor import Tensor


class Conv2d(Module):
    """:func:`~foveal.scratch.ops.conv.conv2d` with weight (C_out, C_in/groups, kH, kW) and bias
    (C_out,), both ``U(−1/√fan_in, 1/√fan_in)`` with ``fan_in = C_in/groups · kH · kW``;
    ``algorithm`` is conv2d's (``"auto"``, ``"im2col"``, ``"fft"`` or ``"winograd"``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair, stride: Pair = 1,
                 padding: Pair = 0, dilation: Pair = 1, groups: int = 1, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype: type = np.float32,
                 algorithm: str = "auto") -> None:
        super().__init__()
        k = _pair(kernel_size, "kernel_size", "Conv2d", 1)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: expected groups dividing in_channels={in_channels} and "
                             f"out_channels={out_channels}, got groups={groups}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        check_algorithm(algorithm, "Conv2d")
        self.algorithm = algorithm
        w, b = kaiming_uniform_linear((out_channels, in_channels // groups, *k), rng)
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(b.astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups, algorithm=self.algorithm)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class ConvTranspose2d(Module):
    """:func:`~foveal.scratch.ops.conv.conv_transpose2d` with torch's weight layout
    (C_in, C_out/groups, kH, kW); torch computes its init fan_in from ``weight.shape[1]·kH·kW``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair, stride: Pair = 1,
                 padding: Pair = 0, output_padding: Pair = 0, groups: int = 1,
                 bias: bool = True, dilation: Pair = 1, *,
                 rng: np.random.Generator | None = None, dtype: type = np.float32) -> None:
        super().__init__()
        k = _pair(kernel_size, "kernel_size", "ConvTranspose2d", 1)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: expected groups dividing in_channels="
                             f"{in_channels} and out_channels={out_channels}, got {groups}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation
        rng = rng or np.random.default_rng()
        bound = 1.0 / np.sqrt(out_channels // groups * k[0] * k[1])
        w = rng.uniform(-bound, bound, (in_channels, out_channels // groups, *k))
        self.weight = Parameter(w.astype(dtype))
        b = rng.uniform(-bound, bound, out_channels)
        self.bias = Parameter(b.astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
