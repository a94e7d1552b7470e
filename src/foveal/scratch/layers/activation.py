"""Activation layers: parameter-free Modules over :mod:`foveal.scratch.ops.activation` and
:mod:`foveal.scratch.ops.softmax`, with torch's constructor arguments and reprs.

They hold configuration only (no parameters, no buffers), so their ``state_dict`` is empty, as
torch's. The ``inplace`` flag torch offers is accepted for drop-in compatibility and ignored: our
ops never write into their input (the graph keeps a reference to it for the backward).
"""

from __future__ import annotations

from foveal.scratch.layers.module import Module
from foveal.scratch.ops import activation as A
from foveal.scratch.ops.softmax import log_softmax, softmax
from foveal.scratch.tensor import Tensor


class ReLU(Module):
    """``max(x, 0)``; see :func:`~foveal.scratch.ops.activation.relu`."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return A.relu(x)


class LeakyReLU(Module):
    """``x`` for x > 0, ``negative_slope · x`` otherwise."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return A.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``x`` for x > 0, ``α(eˣ − 1)`` otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return A.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    """``λ · elu(x, α)`` with the self-normalising constants."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return A.selu(x)


class GELU(Module):
    """``x Φ(x)``, exact or approximated (``"tanh"``, or ``"sigmoid"`` which torch lacks)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in A.GELU_APPROXIMATIONS:
            raise ValueError(
                f"GELU: approximate must be one of {A.GELU_APPROXIMATIONS}, got {approximate!r}"
            )
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return A.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + e⁻ˣ)``."""

    def forward(self, x: Tensor) -> Tensor:
        return A.sigmoid(x)


class Tanh(Module):
    """``tanh x``."""

    def forward(self, x: Tensor) -> Tensor:
        return A.tanh(x)


class Softplus(Module):
    """``(1/β) log(1 + e^{βx})``, linear where ``βx > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if not beta > 0:
            raise ValueError(f"Softplus: beta must be > 0, got {beta}")
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return A.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(Module):
    """``x σ(x)`` (swish)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return A.silu(x)


class GLU(Module):
    """``a ⊙ σ(b)`` with the input split in halves along ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return A.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Maxout(Module):
    """Max over groups of ``pieces`` consecutive entries along ``axis`` (no torch equivalent;
    usually placed after a layer with ``pieces ×`` the wanted width)."""

    def __init__(self, pieces: int, axis: int = 1) -> None:
        super().__init__()
        if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < 1:
            raise ValueError(f"Maxout: pieces must be a positive integer, got {pieces!r}")
        self.pieces, self.axis = pieces, axis

    def forward(self, x: Tensor) -> Tensor:
        return A.maxout(x, self.pieces, self.axis)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}, axis={self.axis}"


def _explicit_dim(dim: int | None, layer: str) -> int:
    # torch's dim=None falls back to a deprecated guess (0 or 1 by ndim); we ask for the axis.
    if dim is None:
        raise ValueError(f"{layer}: pass dim explicitly (torch's implicit choice is deprecated)")
    return dim


class Softmax(Module):
    """``e^{xᵢ} / Σⱼ e^{xⱼ}`` along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = _explicit_dim(dim, "Softmax")

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``xᵢ − log Σⱼ e^{xⱼ}`` along ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = _explicit_dim(dim, "LogSoftmax")

    def forward(self, x: Tensor) -> Tensor:
        return log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
