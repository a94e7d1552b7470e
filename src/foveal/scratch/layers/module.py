"""Layers with state: parameters, buffers, train/eval mode and ``state_dict`` in torch's format.

A :class:`Module` finds its parameters, buffers and sub-modules among its attributes, in the
order they were assigned, so state-dict keys are the attribute paths (``features.0.weight``,
``bn.running_mean``) — the same keys torch gives the equivalent ``nn.Module``. That makes
cross-checks a one-liner in each direction::

    torch_model.load_state_dict(to_torch(model.state_dict()))
    model.load_state_dict(torch_model.state_dict())   # torch tensors are accepted
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from foveal.scratch.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that a layer owns and an optimizer updates (``requires_grad=True``)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(np.asarray(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class: subclasses assign Parameters, Modules and buffers, and define ``forward``."""

    def __init__(self) -> None:
        self.training = True
        self._buffer_names: list[str] = []

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------------------- registry
    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep ``value`` as non-trainable state saved in the state dict (running statistics)."""
        if "_buffer_names" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__ before registering")
        setattr(self, name, np.asarray(value))
        if name not in self._buffer_names:
            self._buffer_names.append(name)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield (f"{prefix}.{name}" if prefix else name), value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in self._buffer_names:
            yield (f"{prefix}.{name}" if prefix else name), getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}.{name}" if prefix else name)

    # ---------------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics, dropout active) or, with ``mode=False``, eval."""
        for _, m in self.named_modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, dtype: Any) -> Module:
        """Cast parameters and floating buffers to ``dtype`` (e.g. float64 for checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for _, m in self.named_modules():
            for name in m._buffer_names:
                value = getattr(m, name)
                if value.dtype.kind == "f":
                    setattr(m, name, value.astype(dtype))
        return self

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of all parameters and buffers, keyed by attribute path (torch's keys)."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: np.array(b, copy=True) for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy values from ``state`` (NumPy arrays or torch tensors) into this module.

        Shapes must match exactly; with ``strict`` the key sets must match too.
        """
        arrays = {k: _to_numpy(v) for k, v in state.items()}
        params = dict(self.named_parameters())
        buffers = {name for name, _ in self.named_buffers()}
        expected = set(params) | buffers
        if strict:
            missing, unexpected = expected - set(arrays), set(arrays) - expected
            if missing or unexpected:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: missing keys {sorted(missing)}, "
                    f"unexpected keys {sorted(unexpected)}"
                )
        for key, value in arrays.items():
            if key not in expected:
                continue
            if key in params:
                p = params[key]
                if value.shape != p.shape:
                    raise ValueError(
                        f"load_state_dict: {key} expected shape {p.shape}, got {value.shape}"
                    )
                p.data = value.astype(p.dtype, copy=True)
                continue
            owner_path, _, name = key.rpartition(".")
            owner = dict(self.named_modules())[owner_path]
            old = getattr(owner, name)
            if value.shape != old.shape:
                raise ValueError(
                    f"load_state_dict: {key} expected shape {old.shape}, got {value.shape}"
                )
            setattr(owner, name, value.astype(old.dtype, copy=True))

    def __repr__(self) -> str:
        children = [f"  ({n}): {repr(m).replace(chr(10), chr(10) + '  ')}"
                    for n, m in self.named_children()]
        inner = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({inner})"
        return f"{type(self).__name__}({inner}\n" + "\n".join(children) + "\n)"

    def extra_repr(self) -> str:
        return ""


class Sequential(Module):
    """Apply layers in order; their state-dict keys are ``0.weight``, ``1.weight``, …"""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ValueError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __getitem__(self, i: int) -> Module:
        return getattr(self, str(i % len(self)))

    def __iter__(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def forward(self, x: Any) -> Any:
        for layer in self:
            x = layer(x)
        return x


class ModuleList(Module):
    """A list of sub-modules registered under keys ``0``, ``1``, … (no forward)."""

    def __init__(self, modules: list[Module] | None = None) -> None:
        super().__init__()
        self._n = 0
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> None:
        setattr(self, str(self._n), module)
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Module:
        return getattr(self, str(i % self._n))

    def __iter__(self) -> Iterator[Module]:
        return (getattr(self, str(i)) for i in range(self._n))


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; no torch import needed
        return value.detach().cpu().numpy()
    return np.asarray(value)
