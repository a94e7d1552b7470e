"""Weight initialisation schemes and zero-init of residual branches.

For a weight ``W`` of a Linear ``(out, in)`` or convolution ``(out, in/groups, k…)`` layer,
``fan_in = (in/groups)·∏k`` and ``fan_out = out·∏k`` (torch.nn.init's convention). The schemes
draw i.i.d. zero-mean entries with

====================  ======================================================================
``xavier_uniform``    ``U(−a, a)``, ``a = g·√(6 / (fan_in + fan_out))``  (Glorot & Bengio 2010,
                      eq. 16, the "normalized initialization"; ``Var = 2 / (fan_in + fan_out)``)
``xavier_normal``     ``N(0, σ²)``, ``σ = g·√(2 / (fan_in + fan_out))``
``kaiming_normal``    ``N(0, σ²)``, ``σ = gain / √fan``, ``gain = √(2 / (1 + a²))`` for
                      (leaky) ReLU (He et al. 2015, eq. 10: ``½ n_l Var[w_l] = 1``)
``kaiming_uniform``   ``U(−b, b)``, ``b = gain·√(3 / fan)``
``lecun_normal``      ``N(0, σ²)`` truncated to ``±2σ'``, rescaled so that its std is exactly
                      ``σ = 1/√fan_in`` (LeCun et al. 1998, "Efficient BackProp", §4.6; the
                      truncated form of JAX/Flax ``lecun_normal``)
``lecun_uniform``     ``U(−b, b)``, ``b = √(3 / fan_in)``
====================  ======================================================================

``g`` is the ``gain`` argument (1 in the paper). Biases are set to 0. Normalisation layers keep
their own ``γ = 1, β = 0``.

Why the gain matters: a ReLU passes half of a symmetric pre-activation's second moment, so with
``Var[w] = 1/n`` (Xavier when ``fan_in = fan_out``, or LeCun) the pre-activation variance halves
at every layer and vanishes in deep networks; Kaiming's ``2/n`` keeps it constant.

Zero-init of residual branches (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1; He et
al. 2019, "Bag of Tricks", §3.1):
setting ``γ = 0`` in the last BatchNorm of each residual branch makes every block
``y = σ(0 + shortcut(x))`` at initialisation, so the network starts shallow and trains stably at
large batch sizes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from foveal.errors import ConfigError

__all__ = ["INIT_SCHEMES", "init_weights", "zero_init_last_bn"]

INIT_SCHEMES = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                "lecun_normal", "lecun_uniform")

INITIALISED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

# std of a standard normal truncated to [-2, 2]: √(1 − 4 φ(2) / (Φ(2) − Φ(−2)))
TRUNCATED_NORMAL_STD = math.sqrt(
    1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(math.sqrt(2.0)))


def lecun_normal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """In place: truncated normal on ``±2σ'`` with std exactly ``1/√fan_in``,
    ``fan_in = weight[0].numel()``."""
    std = 1.0 / math.sqrt(weight[0].numel()) / TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(weight, 0.0, std, -2.0 * std, 2.0 * std, generator=generator)


@torch.no_grad()
def init_weights(model: nn.Module, scheme: str, nonlinearity: str = "relu", *,
                 negative_slope: float = 0.0, mode: str = "fan_in", gain: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
    """Initialise, in place, the weights of every Linear and Conv1d/2d/3d layer of ``model`` with
    ``scheme`` (see the module docstring) and set their biases to 0.

    Args:
        model: any module; norm layers, embeddings and other parameters are left as they are.
        scheme: one of :data:`INIT_SCHEMES`.
        nonlinearity: the activation after the layer, for the Kaiming gain
            (``torch.nn.init.calculate_gain``: "relu", "leaky_relu", "tanh", "selu", "linear", …).
        negative_slope: the leaky-ReLU slope ``a`` when ``nonlinearity="leaky_relu"``.
        mode: ``"fan_in"`` (preserve forward variance, He et al. eq. 10) or ``"fan_out"``
            (backward, eq. 14) for the Kaiming schemes.
        gain: ``g`` for the Xavier schemes.
        generator: random generator (default: torch's global one).
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"expected an init scheme in {list(INIT_SCHEMES)}, got {scheme!r}")
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"expected init mode 'fan_in' or 'fan_out', got {mode!r}")
    if scheme.startswith("kaiming"):
        try:
            nn.init.calculate_gain(nonlinearity, negative_slope)
        except ValueError:
            raise ConfigError(f"expected a nonlinearity torch.nn.init.calculate_gain knows, "
                              f"got {nonlinearity!r}") from None
    layers = [m for m in model.modules() if isinstance(m, INITIALISED_LAYERS)]
    if not layers:
        raise ConfigError(f"init_weights found no Linear or Conv layer in "
                          f"{type(model).__name__}")
    for m in layers:
        w = m.weight
        if scheme == "xavier_uniform":
            nn.init.xavier_uniform_(w, gain, generator=generator)
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(w, gain, generator=generator)
        elif scheme == "kaiming_uniform":
            nn.init.kaiming_uniform_(w, negative_slope, mode, nonlinearity, generator=generator)
        elif scheme == "kaiming_normal":
            nn.init.kaiming_normal_(w, negative_slope, mode, nonlinearity, generator=generator)
        elif scheme == "lecun_uniform":
            nn.init.kaiming_uniform_(w, 0.0, "fan_in", "linear", generator=generator)
        else:
            lecun_normal_(w, generator)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@torch.no_grad()
def zero_init_last_bn(model: nn.Module) -> int:
    """Set ``γ = 0`` in the last norm layer of every residual branch of ``model``; returns the
    number of blocks changed.

    The rule: a residual block names that layer with a ``last_bn`` attribute (a property is
    fine), the norm layer whose output is added to the shortcut — ``bn2`` of
    :class:`foveal.models.resnet.BasicBlock`, ``bn3`` of ``Bottleneck``. A block whose branch
    ends in a squeeze-excitation gate still qualifies (``0 · gate = 0``). Pre-activation blocks
    end their branch with a convolution and have no such layer. Raises ConfigError when no
    module of ``model`` has a ``last_bn``.
    """
    blocks = [m for m in model.modules() if getattr(m, "last_bn", None) is not None]
    if not blocks:
        raise ConfigError(f"zero_init_last_bn found no residual block with a 'last_bn' in "
                          f"{type(model).__name__}")
    for block in blocks:
        bn = block.last_bn
        if not isinstance(bn, nn.Module) or getattr(bn, "weight", None) is None:
            raise ConfigError(f"expected {type(block).__name__}.last_bn to be an affine norm "
                              f"layer, got {type(bn).__name__}")
        nn.init.zeros_(bn.weight)
    return len(blocks)
