"""Normalisation: batch, layer, group and instance norm, with their hand-written backward.

All four standardise ``x`` over a set of axes S and then apply a per-feature affine map:

    μ = (1/n) Σ_S x,   σ² = (1/n) Σ_S (x − μ)²   (biased),   x̂ = (x − μ) / √(σ² + ε),
    y = γ ⊙ x̂ + β.

They differ only in S (and in where γ, β live):

==============  =====================  ====================================  =================
op              input                  statistics over S                     γ, β shape
==============  =====================  ====================================  =================
batch_norm      (N, C, *spatial)       N and spatial, per channel            (C,)
layer_norm      (..., *normalized)     the last ``len(normalized_shape)``    normalized_shape
group_norm      (N, C, *spatial)       C/G channels and spatial, per group   (C,)
instance_norm   (N, C, *spatial)       spatial, per (sample, channel)        (C,)
==============  =====================  ====================================  =================

Backward (Ioffe & Szegedy 2015, "Batch Normalization", §3, written compactly). With
``g = ∂L/∂y`` and ``ĝ = γ ⊙ g = ∂L/∂x̂``, and μ, σ² depending on x:

    ∂L/∂x = (1 / (n σ)) · (n ĝ − Σ_S ĝ − x̂ Σ_S (ĝ ⊙ x̂)),      σ = √(σ² + ε),
    ∂L/∂γ = Σ_{not feature} g ⊙ x̂,      ∂L/∂β = Σ_{not feature} g.

The two subtracted terms are the paths through μ (the gradient loses its mean) and through σ²
(it loses its component along x̂). When the statistics are constants (batch norm in eval mode)
those paths vanish and ``∂L/∂x = ĝ / σ``.

Inputs must be floating point, and γ, β must share the input's dtype (as in torch); the output
keeps the input's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foveal.scratch.tensor import ArrayLike, Tensor, as_tensor, float_tensor, node


def batch_norm(
    x: ArrayLike,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation (Ioffe & Szegedy 2015) of x (N, C) or (N, C, *spatial), as
    ``torch.nn.functional.batch_norm``.

    Training: normalise each channel with the batch mean and the BIASED batch variance over all
    axes but C (n = N · ∏spatial values), and update the running buffers in place, torch's
    convention (momentum weighs the NEW statistic, unlike Keras's ``momentum=0.99``)::

        running_mean ← (1 − momentum) · running_mean + momentum · μ_B
        running_var  ← (1 − momentum) · running_var  + momentum · σ²_B · n / (n − 1)

    (the running variance is the UNBIASED estimate; the one used to normalise is biased).
    Eval (``training=False``): normalise with the running buffers, which are constants.

    Args:
        x: input (N, C, *spatial).
        running_mean, running_var: float ndarrays (C,), updated in place in training; ``None``
            in training skips the update (torch's ``track_running_stats=False``).
        weight, bias: γ and β, shape (C,); ``None`` means γ = 1, β = 0.
        momentum: weight of the new batch statistic in [0, 1].
        eps: ε > 0 added to the variance.

    Backward: the compact formula of the module docstring over S = (N, *spatial) in training;
    ``∂L/∂x = γ g / √(running_var + ε)`` in eval.
    """
    x = float_tensor(x, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C) or (N, C, *spatial), got {x.shape}")
    _check_eps(eps, "batch_norm")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum}")
    channels = x.shape[1]
    for name, buf in (("running_mean", running_mean), ("running_var", running_var)):
        if buf is None:
            continue
        if not isinstance(buf, np.ndarray) or buf.dtype.kind != "f":
            raise ValueError(f"batch_norm: {name} must be a floating ndarray, got {type(buf)}")
        if buf.shape != (channels,):
            raise ValueError(
                f"batch_norm: expected {name} of shape ({channels},) for input {x.shape}, "
                f"got {buf.shape}"
            )
    w, b = _affine(weight, bias, (channels,), x, "batch_norm")
    axes = (0, *range(2, x.ndim))
    affine_shape = (1, channels) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // max(channels, 1)
        if n < 2:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel in training, got input "
                f"{x.shape}"
            )
        out, mean, var = _normalise(x, x.shape, axes, eps, w, b, affine_shape, "batch_norm")
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean.reshape(channels)
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var.reshape(channels) * (n / (n - 1))
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and "
                         "running_var, got None")
    fixed = (running_mean.astype(x.dtype).reshape(affine_shape),
             running_var.astype(x.dtype).reshape(affine_shape))
    out, _, _ = _normalise(x, x.shape, axes, eps, w, b, affine_shape, "batch_norm", fixed)
    return out


def layer_norm(
    x: ArrayLike,
    normalized_shape: int | Sequence[int],
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalisation (Ba, Kiros & Hinton 2016) over the last ``len(normalized_shape)``
    axes, as ``torch.nn.functional.layer_norm``.

    x (..., *normalized_shape); γ, β have shape ``normalized_shape`` (elementwise affine).
    Each leading index is normalised on its own, so the op is the same in training and eval.
    Backward: the compact formula of the module docstring with S = the normalised axes.
    """
    x = float_tensor(x, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or any(s < 1 for s in shape):
        raise ValueError(f"layer_norm: normalized_shape must be non-empty and positive, got "
                         f"{normalized_shape}")
    if x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(
            f"layer_norm: expected input (..., {', '.join(map(str, shape))}) ending in "
            f"normalized_shape {shape}, got {x.shape}"
        )
    _check_eps(eps, "layer_norm")
    w, b = _affine(weight, bias, shape, x, "layer_norm")
    axes = tuple(range(x.ndim - k, x.ndim))
    affine_shape = (1,) * (x.ndim - k) + shape
    out, _, _ = _normalise(x, x.shape, axes, eps, w, b, affine_shape, "layer_norm")
    return out


def group_norm(
    x: ArrayLike,
    num_groups: int,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalisation (Wu & He 2018) of x (N, C, *spatial), as
    ``torch.nn.functional.group_norm``.

    The C channels are split into ``num_groups`` consecutive groups of C/G channels; each
    (sample, group) is standardised over its C/G channels and all spatial positions, then γ, β
    (C,) act per channel. G = 1 is layer norm over (C, *spatial) with per-channel affine;
    G = C is instance norm. Backward: the compact formula with S = one (sample, group).
    """
    x = float_tensor(x, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C) or (N, C, *spatial), got {x.shape}")
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
        raise ValueError(f"group_norm: num_groups must be a positive integer, got {num_groups}")
    channels = x.shape[1]
    if channels % num_groups:
        raise ValueError(
            f"group_norm: expected input (N, C, ...) with C divisible by num_groups = "
            f"{num_groups}, got {x.shape}"
        )
    _check_eps(eps, "group_norm")
    w, b = _affine(weight, bias, (channels,), x, "group_norm")
    view = (x.shape[0], int(num_groups), -1)
    affine_shape = (1, channels) + (1,) * (x.ndim - 2)
    out, _, _ = _normalise(x, view, (2,), eps, w, b, affine_shape, "group_norm")
    return out


def instance_norm(
    x: ArrayLike,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016) of x (N, C, *spatial), as
    ``torch.nn.functional.instance_norm`` with ``use_input_stats=True`` and no running
    statistics: every (sample, channel) is standardised over its spatial positions, then γ, β
    (C,) act per channel. Backward: the compact formula with S = the spatial axes.
    """
    x = float_tensor(x, "instance_norm")
    if x.ndim < 3:
        raise ValueError(f"instance_norm: expected input (N, C, *spatial) with at least one "
                         f"spatial axis, got {x.shape}")
    if int(np.prod(x.shape[2:])) < 2:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, "
                         f"got input {x.shape}")
    _check_eps(eps, "instance_norm")
    channels = x.shape[1]
    w, b = _affine(weight, bias, (channels,), x, "instance_norm")
    axes = tuple(range(2, x.ndim))
    affine_shape = (1, channels) + (1,) * (x.ndim - 2)
    out, _, _ = _normalise(x, x.shape, axes, eps, w, b, affine_shape, "instance_norm")
    return out


# ------------------------------------------------------------------------------------ shared
def _normalise(
    x: Tensor,
    view: tuple[int, ...],
    axes: tuple[int, ...],
    eps: float,
    weight: Tensor | None,
    bias: Tensor | None,
    affine_shape: tuple[int, ...],
    op: str,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """``y = γ ⊙ x̂ + β`` where x̂ standardises ``x.reshape(view)`` over ``axes``.

    ``fixed = (μ, σ²)`` uses given statistics (constants: no gradient path through them);
    otherwise they are the biased batch statistics. γ, β broadcast as ``affine_shape`` (x's
    rank, 1 on the axes they are shared over). Returns (y, μ, σ²) with μ, σ² in view shape.
    """
    xv = x.data.reshape(view)
    if fixed is None:
        mean = xv.mean(axis=axes, keepdims=True)
        centred = xv - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
    else:
        mean, var = fixed
        centred = xv - mean
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat_v = centred * inv_std
    xhat = xhat_v.reshape(x.shape)
    gamma = weight.data.reshape(affine_shape) if weight is not None else None
    y = xhat * gamma if gamma is not None else xhat.copy()
    if bias is not None:
        y = y + bias.data.reshape(affine_shape)
    param_axes = tuple(i for i, s in enumerate(affine_shape) if s == 1)
    parents = (x, *(p for p in (weight, bias) if p is not None))

    def backward(g: np.ndarray) -> list[np.ndarray | None]:
        grads: list[np.ndarray | None] = [None]
        if x.requires_grad:
            d = (g * gamma if gamma is not None else g).reshape(xhat_v.shape)  # ĝ = ∂L/∂x̂
            if fixed is None:
                # (1/σ)(ĝ − mean_S ĝ − x̂ mean_S(ĝ x̂)) = (1/(nσ))(n ĝ − Σĝ − x̂ Σ ĝx̂)
                d = d - d.mean(axis=axes, keepdims=True) - xhat_v * np.mean(
                    d * xhat_v, axis=axes, keepdims=True
                )
            grads[0] = (d * inv_std).reshape(x.shape)
        if weight is not None:
            grads.append((g * xhat).sum(axis=param_axes).reshape(weight.shape))
        if bias is not None:
            grads.append(g.sum(axis=param_axes).reshape(bias.shape))
        return grads

    return node(y, parents, backward, op), mean, var



def _check_eps(eps: float, op: str) -> None:
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")


def _affine(
    weight: ArrayLike | None, bias: ArrayLike | None, shape: tuple[int, ...], x: Tensor, op: str
) -> tuple[Tensor | None, Tensor | None]:
    """γ and β as Tensors of ``shape`` and x's dtype (or None), validated."""
    out: list[Tensor | None] = []
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            out.append(None)
            continue
        t = as_tensor(p, x.dtype)
        if t.shape != shape:
            raise ValueError(f"{op}: expected {name} of shape {shape} for input {x.shape}, "
                             f"got {t.shape}")
        if t.dtype != x.dtype:
            raise ValueError(f"{op}: {name} dtype {t.dtype} differs from input dtype {x.dtype}")
        out.append(t)
    return out[0], out[1]
