"""Normalisation layers with torch's constructor arguments, parameter names and buffers.

The math (and its backward) lives in :mod:`foveal.scratch.ops.norm`; these classes hold γ
(``weight``, ones), β (``bias``, zeros) and, for batch norm, the running statistics, so that
``state_dict`` keys match torch's ``nn.BatchNorm1d/2d``, ``nn.LayerNorm``, ``nn.GroupNorm`` and
``nn.InstanceNorm2d`` exactly (``running_mean``, ``running_var``, ``num_batches_tracked``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foveal.scratch.layers.module import Module, Parameter
from foveal.scratch.ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from foveal.scratch.tensor import Tensor


class _BatchNorm(Module):
    """Shared state and forward of :class:`BatchNorm1d` and :class:`BatchNorm2d`.

    Training: batch statistics, and (with ``track_running_stats``) the running buffers move
    towards them by ``momentum`` — the weight of the NEW statistic — and
    ``num_batches_tracked`` counts the training batches. ``momentum=None`` uses the cumulative
    average ``1 / num_batches_tracked`` instead (torch's convention). Eval: the running
    statistics, or the batch ones when ``track_running_stats=False`` (no buffers exist then).
    """

    _dims: tuple[int, ...] = ()

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
        affine: bool = True, track_running_stats: bool = True, *, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if num_features < 1:
            raise ValueError(f"{name}: num_features must be positive, got {num_features}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            dims = " or ".join(f"{d}-D" for d in self._dims)
            raise ValueError(f"{name}: expected a {dims} input (N, C, ...) with C = "
                             f"{self.num_features}, got {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1  # a 0-d int64 array, updated in place
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if self.track_running_stats else None,
            self.running_var if self.track_running_stats else None,
            self.weight, self.bias, training=use_batch_stats, momentum=momentum, eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs, statistics per channel (``nn.BatchNorm1d``)."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs, statistics per channel (``nn.BatchNorm2d``)."""

    _dims = (4,)


class LayerNorm(Module):
    """Layer norm over the trailing ``normalized_shape`` axes (``nn.LayerNorm``): γ (``weight``,
    ones) and β (``bias``, zeros) of shape ``normalized_shape`` when ``elementwise_affine``."""

    def __init__(
        self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
        elementwise_affine: bool = True, bias: bool = True, *, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                 else tuple(normalized_shape))
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be non-empty and positive, got "
                             f"{normalized_shape}")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = (Parameter(np.zeros(shape, dtype=dtype))
                     if elementwise_affine and bias else None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Group norm with ``num_groups`` groups of channels (``nn.GroupNorm``): γ, β of shape
    (num_channels,) when ``affine``."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
        dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels must be a positive multiple of "
                             f"num_groups, got num_channels={num_channels}, "
                             f"num_groups={num_groups}")
        if not eps > 0:
            raise ValueError(f"GroupNorm: eps must be positive, got {eps}")
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups, num_channels, eps, affine)
        self.weight = Parameter(np.ones(num_channels, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input (N, C, ...) with C = "
                             f"{self.num_channels}, got {x.shape}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(Module):
    """Instance norm of (N, C, H, W) inputs (``nn.InstanceNorm2d``): every (sample, channel)
    standardised over H·W, in training and in eval alike. γ, β (C,) when ``affine``.

    Only torch's default ``track_running_stats=False`` is supported: no buffers, so the state
    dict (``weight``, ``bias`` or nothing) matches torch's. ``momentum`` is accepted for
    signature compatibility and unused, as in torch without running statistics.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
        track_running_stats: bool = False, *, dtype: type = np.float32,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"InstanceNorm2d: num_features must be positive, got "
                             f"{num_features}")
        if not eps > 0:
            raise ValueError(f"InstanceNorm2d: eps must be positive, got {eps}")
        if track_running_stats:
            raise ValueError("InstanceNorm2d: track_running_stats=True is not supported "
                             "(instance statistics are always used)")
        self.num_features, self.eps, self.momentum, self.affine = (
            num_features, eps, momentum, affine)
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected input (N, C, H, W) with C = "
                             f"{self.num_features}, got {x.shape}")
        return instance_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"
