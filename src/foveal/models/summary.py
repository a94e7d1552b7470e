"""Per-layer summary of any ``nn.Module``: output shapes, parameters, FLOPs, activation memory.

:func:`summarize` runs one forward pass on a zero batch of ``(batch_size, *input_size)`` with
forward hooks and records one row per call of each *unit*: a leaf module, or a module that
:func:`summarize` treats as a whole (``nn.MultiheadAttention``). A module that owns parameters
directly (a class token, a position embedding), or holds sub-modules it never calls (weights it
applies with ``F.linear``), also gets a row with those parameters, so the rows' parameters
always add up to the model's; so does a module whose own ``forward`` computes a matrix product
functionally (below). A module called twice gives two rows; its parameters are counted on the
first.

The pass runs in eval mode under ``torch.no_grad()`` (the training flags are restored), so the
figures are the inference cost. A model built on the meta device (``with torch.device("meta")``)
is summarized without computing anything.

FLOP convention: one multiply–accumulate (MAC) is 2 FLOPs, the convention of
``torch.utils.flop_counter.FlopCounterMode``, and ``macs`` counts only the multiply–accumulates
of matrix products, so ``2 · macs`` equals what ``FlopCounterMode`` reports for the same layers
(on the CPU it sees ``scaled_dot_product_attention`` only through the math backend, in
``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``). ``flops`` adds the elementwise work.
Per layer, for an output ``y`` with ``|y|`` elements:

===============================  ============================================================
Conv (1-3d, groups ``g``)        MACs ``= |y| · (C_in / g) · Π k``; FLOPs ``= 2 MACs + |y|``
                                 with a bias. Transposed: MACs ``= |x| · (C_out / g) · Π k``.
Linear                           MACs ``= |y| · in_features``; FLOPs ``= 2 MACs + |y|`` (bias)
MultiheadAttention               MACs of the q, k, v and output projections plus ``N·L·S·2E``
                                 for ``QKᵀ`` and ``AV``; FLOPs add biases and the softmax
F.scaled_dot_product_attention   MACs ``= B·L·S·(E + E_v)`` (``B``: batch × heads); FLOPs
                                 ``= 2 MACs + 4·B·L·S`` (scale, exp, sum, divide)
F.linear, F.conv1d/2d/3d         as Linear and Conv, from the weight's shape
``@``, matmul, mm, bmm           MACs ``= |y| · K`` (``K``: the contracted length); addmm and
                                 baddbmm add ``|y|`` for the bias
BatchNorm (eval)                 ``2 |y|``: the folded scale and shift
LayerNorm, GroupNorm,            ``5 |y|`` for the statistics and normalization (mean 1,
InstanceNorm                     centre 1, square-accumulate 2, scale 1), ``+ 2 |y|`` if affine
RMSNorm                          ``3 |y|``, ``+ |y|`` with a weight
Max / average pooling            one compare or add per window element: ``|y| · Π k``; adaptive
                                 pooling sums its exact window sizes
Activations                      ``|y|`` (one op per element, transcendental or not);
                                 Softmax / LogSoftmax ``3 |y|``
Dropout, Identity, Flatten,      0, as for any leaf that returns its input tensor itself
Unflatten, Embedding             (stochastic depth in eval mode)
===============================  ============================================================

The three functional rows (attention, ``F.linear`` / ``F.conv*``, matmul) are counted when a
module that is not a unit calls them in its own ``forward`` (a ViT block calling
``F.scaled_dot_product_attention``, a Swin attention calling ``q @ k.transpose(-2, -1)``), on
that module's row; a unit's formula already covers its own calls. A leaf type with no formula
counts its functional products if it makes any, else it gets ``flops = None`` and is listed in
:attr:`ModelSummary.uncounted`. Other work written in a ``forward`` (residual additions,
``F.relu`` or ``F.max_pool2d`` called directly, ``torch.einsum``) is not counted.

Activation memory: the bytes of each output tensor (``numel · element_size``, summed over the
tensors of a tuple, list or dict output). The total leaves out in-place rows
(``ReLU(inplace=True)``, and ``Identity`` or eval-mode ``Dropout``, which return their input)
and rows of containers that return their last sub-module's output, whose memory is counted
once already.

References: torch.utils.flop_counter (PyTorch); the per-layer tables of torchinfo and ptflops.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from foveal.errors import ConfigError

__all__ = ["LayerSummary", "ModelSummary", "format_summary", "layer_flops", "summarize"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerSummary:
    """One row: one call of one module.

    Attributes:
        name: the module's qualified name in the model (``"layer1.0.conv1"``; ``""`` for the
            model itself).
        type: the module's class name.
        output_shape: the output's shape, batch first; a tuple of shapes for a tuple, list or
            dict output (None for a non-tensor element).
        params: parameters counted in this row: on the module's first call, its own and those
            of sub-modules that have no row (for a unit: all of its parameters).
        trainable_params: those of ``params`` with ``requires_grad``.
        macs: multiply–accumulates of matrix products (conv, linear, attention).
        flops: ``2 · macs`` plus elementwise work, or None for a type with no formula.
        output_bytes: bytes of the output tensor(s).
        inplace: the output is the input tensor itself or written into it (``inplace=True``,
            ``Identity``, ``Dropout`` in eval mode), or the tensor a sub-module returned: it
            takes no memory of its own.
    """

    name: str
    type: str
    output_shape: Any
    params: int
    trainable_params: int
    macs: int
    flops: int | None
    output_bytes: int
    inplace: bool = False


@dataclass(frozen=True)
class ModelSummary:
    """The rows of :func:`summarize` and the model's totals.

    Attributes:
        input_size: the input shape without the batch dimension (``(C, H, W)``).
        batch_size: the batch the figures are for (FLOPs and activations scale with it).
        layers: the rows, in the order the modules were called.
        total_params: ``sum(p.numel() for p in model.parameters())`` (shared tensors once).
        trainable_params: those with ``requires_grad``.
        param_bytes: bytes of the parameters and buffers.
        total_macs: the sum of the rows' ``macs``.
        total_flops: the sum of the rows' ``flops`` (rows with ``None`` left out).
        activation_bytes: the sum of the rows' ``output_bytes``, in-place rows left out.
        uncounted: the module types that have no FLOP formula (their rows have ``flops=None``).
    """

    input_size: Shape
    batch_size: int
    layers: tuple[LayerSummary, ...]
    total_params: int
    trainable_params: int
    param_bytes: int
    total_macs: int
    total_flops: int
    activation_bytes: int
    uncounted: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes become lists)."""
        return asdict(self)


# --- FLOP formulas --------------------------------------------------------------------------

_ZERO_COST = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Embedding, nn.modules.dropout._DropoutNd)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
                nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh,
                nn.Softplus, nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Threshold, nn.GLU)
_STAT_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)
_POOLS = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
_ADAPTIVE_POOLS = (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_POOL_DIMS = {nn.MaxPool1d: 1, nn.AvgPool1d: 1, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveMaxPool1d: 1,
              nn.MaxPool2d: 2, nn.AvgPool2d: 2, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveMaxPool2d: 2,
              nn.MaxPool3d: 3, nn.AvgPool3d: 3, nn.AdaptiveAvgPool3d: 3, nn.AdaptiveMaxPool3d: 3}
# modules summarized as one unit: their children get no rows of their own
_UNITS = (nn.MultiheadAttention,)


def _first_tensor(values: Any) -> torch.Tensor | None:
    for v in _tensors(values):
        return v
    return None


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    if isinstance(values, torch.Tensor):
        yield values
    elif isinstance(values, (tuple, list)):
        for v in values:
            yield from _tensors(v)
    elif isinstance(values, dict):
        for v in values.values():
            yield from _tensors(v)


def _window_total(n_in: int, n_out: int) -> int:
    """Σ over adaptive-pooling outputs ``i`` of the window length
    ``ceil((i+1)·n_in/n_out) − floor(i·n_in/n_out)``, PyTorch's adaptive windows."""
    return sum(-(-(i + 1) * n_in // n_out) - (i * n_in // n_out) for i in range(n_out))


def _mha_cost(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> tuple[int, int]:
    names = ("query", "key", "value")
    q, k, v = (args[i] if len(args) > i else kwargs[n] for i, n in enumerate(names))
    e = m.embed_dim

    def batch_and_length(t: torch.Tensor) -> tuple[int, int]:
        if t.dim() == 2:  # unbatched (L, E)
            return 1, t.shape[0]
        return (t.shape[0], t.shape[1]) if m.batch_first else (t.shape[1], t.shape[0])

    n, lq = batch_and_length(q)
    _, ls = batch_and_length(k)
    proj = n * (lq * q.shape[-1] * e + ls * k.shape[-1] * e + ls * v.shape[-1] * e + lq * e * e)
    attention = n * lq * ls * 2 * e  # QKᵀ and AV over all heads
    macs = proj + attention
    biases = n * (lq + 2 * ls + lq) * e if m.in_proj_bias is not None else 0
    softmax = 4 * n * m.num_heads * lq * ls
    return macs, 2 * macs + biases + softmax


def layer_flops(module: nn.Module, inputs: tuple, output: Any,
                kwargs: dict | None = None) -> tuple[int, int | None]:
    """``(macs, flops)`` of one call of ``module`` on ``inputs`` giving ``output``.

    ``flops`` is None for a module type with no formula; the formulas are in the module
    docstring (one multiply–accumulate = 2 FLOPs).
    """
    y = _first_tensor(output)
    x = _first_tensor(inputs)
    n_out = y.numel() if y is not None else 0
    if isinstance(module, nn.modules.conv._ConvNd):
        k = math.prod(module.kernel_size)
        if module.transposed:  # every input element scatters into C_out/g · Π k outputs
            macs = x.numel() * module.out_channels // module.groups * k
        else:
            macs = n_out * module.in_channels // module.groups * k
        return macs, 2 * macs + (n_out if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        macs = n_out * module.in_features
        return macs, 2 * macs + (n_out if module.bias is not None else 0)
    if isinstance(module, nn.MultiheadAttention):
        return _mha_cost(module, inputs, kwargs or {})
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return 0, 2 * n_out
    if isinstance(module, _STAT_NORMS):
        affine = getattr(module, "elementwise_affine", getattr(module, "affine", False))
        return 0, (7 if affine else 5) * n_out
    if isinstance(module, nn.RMSNorm):
        return 0, (4 if module.weight is not None else 3) * n_out
    if isinstance(module, _POOLS + _ADAPTIVE_POOLS):
        dims = next((d for t, d in _POOL_DIMS.items() if isinstance(module, t)), 2)
    if isinstance(module, _POOLS):
        k = module.kernel_size
        return 0, n_out * (math.prod(k) if isinstance(k, tuple) else k ** dims)
    if isinstance(module, _ADAPTIVE_POOLS):
        total = math.prod(y.shape[:-dims])  # batch × channels
        for n_i, n_o in zip(x.shape[-dims:], y.shape[-dims:], strict=True):
            total *= _window_total(n_i, n_o)
        return 0, total
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return 0, 3 * n_out
    if isinstance(module, _ACTIVATIONS):
        return 0, n_out
    if isinstance(module, _ZERO_COST):
        return 0, 0
    return 0, None


def _sdpa_cost(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int]:
    """``F.scaled_dot_product_attention`` on ``q (…, L, E)``, ``k (…, S, E)``, ``v (…, S, Ev)``."""
    b = math.prod(q.shape[:-2])
    lq, e, ls, ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
    macs = b * lq * ls * (e + ev)
    return macs, 2 * macs + 4 * b * lq * ls


_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm,
            torch.Tensor.mm, torch.bmm, torch.Tensor.bmm}
_ADD_MATMULS = {torch.addmm, torch.baddbmm}  # (bias, a, b)
_CONVS = {F.conv1d, F.conv2d, F.conv3d}


def _function_cost(func: Any, args: tuple, kwargs: dict, out: Any) -> tuple[int, int] | None:
    """``(macs, flops)`` of a functional matrix product called in a module's ``forward``, or
    None for other functions."""
    if func is F.scaled_dot_product_attention:
        q, k, v = (args[i] if len(args) > i else kwargs[n]
                   for i, n in enumerate(("query", "key", "value")))
        return _sdpa_cost(q, k, v)
    if not isinstance(out, torch.Tensor):
        return None
    if func is F.linear:  # (input, weight, bias): |y| · in_features
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        macs = out.numel() * weight.shape[-1]
        return macs, 2 * macs + (out.numel() if bias is not None else 0)
    if func in _CONVS:  # weight (C_out, C_in / g, k…): |y| · (C_in / g) · Π k
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        macs = out.numel() * math.prod(weight.shape[1:])
        return macs, 2 * macs + (out.numel() if bias is not None else 0)
    if func in _MATMULS or func in _ADD_MATMULS:  # |y| · (the contracted length)
        a = args[1] if func in _ADD_MATMULS else args[0]
        macs = out.numel() * a.shape[-1]
        return macs, 2 * macs + (out.numel() if func in _ADD_MATMULS else 0)
    return None


# --- the hooks --------------------------------------------------------------------------------


def _shape_of(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of(v) for v in value)
    if isinstance(value, dict):
        return tuple(_shape_of(v) for v in value.values())
    return None


class _Frame:
    __slots__ = ("fn_flops", "fn_macs", "module", "name", "slot")

    def __init__(self, module: nn.Module, name: str, slot: int) -> None:
        self.module, self.name, self.slot = module, name, slot
        self.fn_macs = self.fn_flops = 0


class _FunctionalCounter(TorchFunctionMode):
    """Adds the functional matrix products (``F.scaled_dot_product_attention``, ``F.linear``,
    ``F.conv*``, ``@``, ``torch.matmul``, ``bmm``) that a module calls in its own ``forward`` to
    the innermost running module (a unit with a formula ignores them: they are in it)."""

    def __init__(self, stack: list[_Frame]) -> None:
        super().__init__()
        self.stack = stack

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.stack:
            cost = _function_cost(func, args, kwargs, out)
            if cost is not None:
                self.stack[-1].fn_macs += cost[0]
                self.stack[-1].fn_flops += cost[1]
        return out


def _is_unit(module: nn.Module) -> bool:
    return isinstance(module, _UNITS) or next(module.children(), None) is None


def _hooked_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every module not strictly inside a unit (the units' children get no rows)."""
    out, inside = [], set()
    for name, module in model.named_modules():
        if id(module) in inside:
            continue
        out.append((name, module))
        if isinstance(module, _UNITS):
            inside.update(id(m) for m in module.modules() if m is not module)
    return out


def _input_device_dtype(model: nn.Module, device: torch.device | str | None
                        ) -> tuple[torch.device, torch.dtype]:
    tensors = list(model.parameters()) + list(model.buffers())
    floats = [t for t in tensors if t.is_floating_point()]
    dtype = floats[0].dtype if floats else torch.get_default_dtype()
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    return torch.device(device), dtype


def summarize(model: nn.Module, input_size: Sequence[int], *, batch_size: int = 1,
              device: torch.device | str | None = None) -> ModelSummary:
    """Run ``model`` once on zeros of shape ``(batch_size, *input_size)`` and tabulate its layers.

    Args:
        model: any module; it is not modified (its train/eval flags are restored).
        input_size: the input shape without the batch dimension, ``(C, H, W)`` for images.
        batch_size: the batch size ``N`` of the pass.
        device: where to create the input; default: the device of the model's first parameter
            or buffer (``meta`` for a model built on the meta device), else the CPU.

    Returns:
        A :class:`ModelSummary`; see the module docstring for the FLOP conventions.

    Raises:
        ConfigError: ``input_size`` or ``batch_size`` is not positive integers, or the model
            fails on an input of that size (the model's own message is kept).
    """
    size = tuple(input_size)
    if not size or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                           for s in size):
        raise ConfigError(f"expected input_size as positive integers (C, H, W), got {size}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"expected batch_size >= 1, got {batch_size!r}")
    device_, dtype = _input_device_dtype(model, device)
    x = torch.zeros((batch_size, *size), device=device_, dtype=dtype)

    rows: list[LayerSummary | None] = []
    stack: list[_Frame] = []
    counted: set[int] = set()  # parameters already in a row
    uncounted: list[str] = []

    def pre_hook(module: nn.Module, args: tuple, kwargs: dict, name: str) -> None:
        stack.append(_Frame(module, name, len(rows)))
        rows.append(None)

    last_out: list[torch.Tensor] = []  # the outputs of the module call that ended last

    def post_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        frame = stack.pop()
        out = list(_tensors(output))
        # the output is the input, or what a sub-module just returned: no memory of its own
        reused = any(t is a for t in out for a in [*_tensors(args), *last_out])
        last_out[:] = out
        is_unit = _is_unit(module)
        # its own parameters and those of sub-modules it holds but did not call
        params = [p for p in module.parameters() if id(p) not in counted]
        if not (is_unit or params or frame.fn_macs):
            return
        counted.update(id(p) for p in params)
        macs, flops = layer_flops(module, args, output, kwargs) if is_unit else (0, None)
        if flops is None:  # a container, or a leaf with no formula: its functional products
            macs, flops = frame.fn_macs, frame.fn_flops
            if is_unit and not frame.fn_macs and not reused:
                flops = None
                if type(module).__name__ not in uncounted:
                    uncounted.append(type(module).__name__)
        rows[frame.slot] = LayerSummary(
            name=frame.name, type=type(module).__name__, output_shape=_shape_of(output),
            params=sum(p.numel() for p in params),
            trainable_params=sum(p.numel() for p in params if p.requires_grad),
            macs=macs, flops=flops,
            output_bytes=sum(t.numel() * t.element_size() for t in out),
            inplace=bool(getattr(module, "inplace", False)) or reused,
        )

    handles = []
    training = {m: m.training for m in model.modules()}
    try:
        for name, module in _hooked_modules(model):
            handles.append(module.register_forward_pre_hook(
                lambda m, a, k, name=name: pre_hook(m, a, k, name), with_kwargs=True))
            handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
        model.eval()
        with torch.no_grad(), _FunctionalCounter(stack):
            try:
                model(x)
            except (RuntimeError, ValueError, IndexError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ConfigError(f"expected an input size {type(model).__name__} accepts, "
                                  f"got {tuple(x.shape)}: {first}") from exc
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.training = flag

    layers = tuple(r for r in rows if r is not None)
    unique = list(model.parameters())  # shared tensors once
    return ModelSummary(
        input_size=size, batch_size=batch_size, layers=layers,
        total_params=sum(p.numel() for p in unique),
        trainable_params=sum(p.numel() for p in unique if p.requires_grad),
        param_bytes=sum(t.numel() * t.element_size()
                        for t in [*unique, *model.buffers()]),
        total_macs=sum(r.macs for r in layers),
        total_flops=sum(r.flops for r in layers if r.flops is not None),
        activation_bytes=sum(r.output_bytes for r in layers if not r.inplace),
        uncounted=tuple(uncounted),
    )


# --- text table ---------------------------------------------------------------------------------


def _format_shape(shape: Any) -> str:
    if shape is None:
        return "-"
    if all(isinstance(s, int) for s in shape):
        return "×".join(map(str, shape)) if shape else "scalar"
    return "(" + ", ".join(_format_shape(s) for s in shape) + ")"


def _si(n: float, unit: str = "") -> str:
    """``1_234_567`` → ``1.23 M``."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _bytes(n: int) -> str:
    for scale, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {prefix}"
    return f"{n} B"


def format_summary(summary: ModelSummary) -> str:
    """A text table: one line per row, then the totals."""
    header = ("layer", "type", "output shape", "params", "FLOPs", "activations")
    lines = [(r.name or "(model)", r.type, _format_shape(r.output_shape),
              f"{r.params:,}" if r.params else "-",
              "?" if r.flops is None else (_si(r.flops) if r.flops else "-"),
              _bytes(r.output_bytes) + ("*" if r.inplace else " "))
             for r in summary.layers]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]

    def row(cells: Sequence[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(row(header))
    s = summary
    frozen = s.total_params - s.trainable_params
    out = [row(header), rule, *(row(line) for line in lines), rule,
           f"input            {s.batch_size}×{_format_shape(s.input_size)}",
           f"parameters       {s.total_params:,} ({s.trainable_params:,} trainable"
           + (f", {frozen:,} frozen)" if frozen else ")"),
           f"parameter memory {_bytes(s.param_bytes)} (with buffers)",
           f"FLOPs            {_si(s.total_flops)} ({_si(s.total_macs)} multiply-accumulates)",
           f"activations      {_bytes(s.activation_bytes)} (outputs of the layers above; "
           "* in place or reused, not in the total)"]
    if s.uncounted:
        out.append(f"no FLOP formula  {', '.join(s.uncounted)} (shown as ?)")
    return "\n".join(out)
