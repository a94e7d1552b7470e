"""Receptive fields of convolutional networks: the closed form and a gradient measurement.

For a single path of layers ``j = 1 … L`` with kernel ``F_j``, stride ``S_j`` and dilation
``d_j``, one output unit sees an input window of side (Araujo et al. 2019, eq. 2)::

    R = 1 + Σ_j (F'_j − 1) · Π_{i<j} S_i,      F'_j = d_j · (F_j − 1) + 1

where ``F'_j`` is the dilated (effective) kernel. Elementwise layers (batch norm, activations)
have ``F = S = 1`` and add nothing. Examples: three stacked 3×3 stride-1 convolutions see
``1 + 2 + 2 + 2 = 7`` pixels, the span of one 7×7 convolution (Simonyan & Zisserman 2015,
sec. 2.3); VGG-16 sees 196 pixels at conv5_3 and 212 after pool5.

:func:`empirical_receptive_field` measures the same window: it back-propagates from the output
unit at the centre of the feature map to the input and takes the extent of the non-zero
gradient. Positive weights, zero biases and a positive input keep every ReLU open and let no
two paths cancel; max pooling is replaced by average pooling over the same windows, since a
max routes its gradient to a single element of each window.

References: A. Araujo, W. Norris, J. Sim, "Computing receptive fields of convolutional neural
networks", Distill 2019 (doi:10.23915/distill.00021); W. Luo et al., "Understanding the
effective receptive field in deep convolutional neural networks", NeurIPS 2016.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from foveal.errors import ConfigError

__all__ = ["LayerGeometry", "chain_receptive_field", "empirical_receptive_field",
           "layer_geometry", "receptive_field"]

Pair = tuple[int, int]


def receptive_field(layers: Sequence[tuple[int, int] | tuple[int, int, int]]) -> int:
    """Receptive field size along one axis: ``R = 1 + Σ_j (F'_j − 1) Π_{i<j} S_i``.

    Args:
        layers: ``(kernel, stride)`` or ``(kernel, stride, dilation)`` per layer, input first.

    Returns:
        ``R`` in input pixels (1 for no layers).
    """
    r, jump = 1, 1  # jump: Π_{i<j} S_i, the input distance between neighbouring units
    for j, layer in enumerate(layers):
        if len(layer) not in (2, 3) or not all(isinstance(v, int) and v >= 1 for v in layer):
            raise ConfigError(f"layers[{j}]: expected (kernel, stride[, dilation]) as positive "
                              f"integers, got {layer!r}")
        kernel, stride, dilation = (*layer, 1)[:3]
        r += (dilation * (kernel - 1)) * jump
        jump *= stride
    return r


class LayerGeometry(NamedTuple):
    """Kernel, stride and dilation of one layer of a chain, as ``(height, width)`` pairs."""

    name: str
    kernel: Pair
    stride: Pair
    dilation: Pair


def _pair(v: Any) -> Pair:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# layers that act on each pixel alone: F = S = 1
_POINTWISE_MODULES = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd,
                      nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
                      nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish,
                      nn.Hardsigmoid, nn.Hardtanh, nn.Softplus)
_POINTWISE_FUNCTIONS = {F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.elu, F.sigmoid,
                        F.tanh, F.hardswish, F.dropout, torch.relu, torch.sigmoid, torch.tanh}
_POINTWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous"}
# where the spatial part of a classifier ends
_HEAD_MODULES = (nn.Flatten, nn.Linear, nn.modules.pooling._AdaptiveAvgPoolNd,
                 nn.modules.pooling._AdaptiveMaxPoolNd)
_HEAD_FUNCTIONS = {torch.flatten, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.mean}
_HEAD_METHODS = {"flatten", "view", "reshape", "mean"}


def _pool_args(args: tuple, kwargs: dict, names: Sequence[str]) -> dict[str, Any]:
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def _module_geometry(name: str, m: nn.Module) -> LayerGeometry | None:
    if isinstance(m, nn.Conv2d):
        return LayerGeometry(name, _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation))
    if isinstance(m, nn.MaxPool2d):
        stride = m.stride if m.stride is not None else m.kernel_size
        return LayerGeometry(name, _pair(m.kernel_size), _pair(stride), _pair(m.dilation))
    if isinstance(m, nn.AvgPool2d):
        stride = m.stride if m.stride is not None else m.kernel_size
        return LayerGeometry(name, _pair(m.kernel_size), _pair(stride), (1, 1))
    return None


def _function_geometry(name: str, target: Any, args: tuple, kwargs: dict
                       ) -> LayerGeometry | None:
    if target in (F.max_pool2d, F.avg_pool2d):
        names = ["input", "kernel_size", "stride", "padding"]
        names += ["dilation"] if target is F.max_pool2d else []
        a = _pool_args(args, kwargs, names)
        stride = a.get("stride") or a["kernel_size"]
        return LayerGeometry(name, _pair(a["kernel_size"]), _pair(stride),
                             _pair(a.get("dilation", 1)))
    return None


def layer_geometry(model: nn.Module) -> list[LayerGeometry]:
    """The convolution and pooling layers of a plain chain, input first.

    ``model`` is traced with ``torch.fx``; it is a plain chain when every operation takes the
    previous one's output and nothing else uses it (no residual or parallel branch) up to the
    head: the first flatten, linear layer or adaptive pooling, where the spatial part ends.
    ``Conv2d``, ``MaxPool2d``, ``AvgPool2d`` and ``F.max_pool2d`` / ``F.avg_pool2d`` calls give
    geometry; batch norm, activations and dropout pass through.

    Raises:
        ConfigError: the model cannot be traced, branches, or has a layer of unknown geometry
            before its head.
    """
    import torch.fx

    single = _module_geometry(type(model).__name__, model)
    if single is not None:  # one conv or pooling layer, not a network
        return [single]
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # fx raises many types on untraceable code
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"expected a plain chain of layers, got {type(model).__name__} that "
                          f"torch.fx cannot trace: {first}") from exc
    nodes = [n for n in graph.nodes if n.op not in ("get_attr", "output")]
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ConfigError(f"expected a model with one input, got {len(placeholders)}")
    out: list[LayerGeometry] = []
    prev = placeholders[0]
    for node in nodes[1:]:
        where = f"{type(model).__name__}: {node.name}"
        inputs = [n for n in node.all_input_nodes if n.op != "get_attr"]
        if inputs != [prev] or len(prev.users) != 1:
            raise ConfigError(f"expected a plain chain of layers, got a branch at {where}")
        if node.op == "call_module":
            m = model.get_submodule(node.target)
            if isinstance(m, _HEAD_MODULES):
                break
            geometry = _module_geometry(node.target, m)
            if geometry is None and not isinstance(m, _POINTWISE_MODULES):
                raise ConfigError(f"expected conv, pooling or pointwise layers before the head, "
                                  f"got {type(m).__name__} at {where}")
        elif node.op == "call_function":
            if node.target in _HEAD_FUNCTIONS:
                break
            geometry = _function_geometry(node.name, node.target, node.args, node.kwargs)
            if geometry is None and node.target not in _POINTWISE_FUNCTIONS:
                raise ConfigError(f"expected conv, pooling or pointwise operations before the "
                                  f"head, got {getattr(node.target, '__name__', node.target)} "
                                  f"at {where}")
        else:  # call_method
            if node.target in _HEAD_METHODS:
                break
            geometry = None
            if node.target not in _POINTWISE_METHODS:
                raise ConfigError(f"expected conv, pooling or pointwise operations before the "
                                  f"head, got .{node.target}() at {where}")
        if geometry is not None:
            out.append(geometry)
        prev = node
    return out


def chain_receptive_field(model: nn.Module) -> tuple[int, int]:
    """``(height, width)`` receptive field of a plain chain's last spatial layer.

    :func:`layer_geometry` then :func:`receptive_field` per axis; raises ConfigError when
    ``model`` is not a plain chain.
    """
    geometry = layer_geometry(model)
    height = receptive_field([(g.kernel[0], g.stride[0], g.dilation[0]) for g in geometry])
    width = receptive_field([(g.kernel[1], g.stride[1], g.dilation[1]) for g in geometry])
    return height, width


class _MaxAsAverage(TorchFunctionMode):
    """Runs every 2-d max pooling as an average over the same windows."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (F.max_pool2d, F.max_pool2d_with_indices):
            names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                     "return_indices"]
            a = _pool_args(args, kwargs, names)
            x, k = a["input"], _pair(a["kernel_size"])
            stride = _pair(a.get("stride") or k)
            padding, dilation = _pair(a.get("padding", 0)), _pair(a.get("dilation", 1))
            if dilation == (1, 1):
                y = F.avg_pool2d(x, k, stride, padding, ceil_mode=bool(a.get("ceil_mode")))
            else:  # a dilated window: a depthwise convolution of ones
                ones = x.new_full((x.shape[1], 1, *k), 1.0 / math.prod(k))
                y = F.conv2d(x, ones, None, stride, padding, dilation, groups=x.shape[1])
            return (y, torch.zeros_like(y, dtype=torch.long)) if a.get("return_indices") else y
        if func in (F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices):
            a = _pool_args(args, kwargs, ["input", "output_size", "return_indices"])
            y = F.adaptive_avg_pool2d(a["input"], a["output_size"])
            return (y, torch.zeros_like(y, dtype=torch.long)) if a.get("return_indices") else y
        return func(*args, **kwargs)


def _positive_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in float64 with weights ``1 / fan_in``, biases 0 and identity batch norms."""
    tensors = list(model.parameters()) + list(model.buffers())
    model = copy.deepcopy(model)
    if any(t.is_meta for t in tensors):
        model = model.to_empty(device=device)
    model = model.to(device=device, dtype=torch.float64).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if nn.parameter.is_lazy(p):  # a lazy layer not yet run: initialized in the pass
                continue
            if name.rsplit(".", 1)[-1] == "bias":
                p.zero_()
            else:
                p.fill_(1.0 / math.prod(p.shape[1:]) if p.dim() >= 2 else 1.0)
        for name, b in model.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "running_mean":
                b.zero_()
            elif leaf == "running_var":
                b.fill_(1.0)
    return model


def empirical_receptive_field(model: nn.Module, input_size: Sequence[int], *,
                              device: torch.device | str = "cpu") -> tuple[int, int]:
    """``(height, width)`` of the input region that reaches the centre output unit.

    Back-propagates ``Σ_c y[0, c, H//2, W//2]`` of a copy of ``model`` (eval mode, float64,
    positive weights ``1/fan_in``, zero biases, identity batch norms, max pooling run as average
    pooling) on an input of ones, and measures the rows and columns where the input gradient is
    non-zero. ``model`` itself is not changed.

    Args:
        model: maps ``(1, C, H, W)`` to a feature map ``(1, C', H', W')``.
        input_size: ``(C, H, W)``; make ``H, W`` larger than the receptive field, or the
            window is clipped at the image border.
        device: where to run the copy.

    Raises:
        ConfigError: ``input_size`` is not ``(C, H, W)`` or the output is not a 4-d map.
    """
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ConfigError(f"expected input_size (C, H, W) of positive integers, got {size}")
    net = _positive_copy(model, torch.device(device))
    x = torch.ones((1, *size), dtype=torch.float64, device=device, requires_grad=True)
    with _MaxAsAverage():
        y = net(x)
    if not isinstance(y, torch.Tensor) or y.dim() != 4:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ConfigError(f"expected a model that returns a (N, C, H, W) feature map, "
                          f"got {shape}")
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    reached = x.grad[0].abs().sum(0) > 0  # (H, W)
    extent = []
    for axis in (1, 0):  # rows reached: any over columns; then columns
        idx = torch.nonzero(reached.any(axis)).flatten()
        extent.append(int(idx.max() - idx.min() + 1) if idx.numel() else 0)
    return extent[0], extent[1]
