"""The computational graph: a NumPy array that remembers how it was made, and reverse-mode autodiff.

Every op builds a node ``y = f(x₁, …, xₖ)`` holding its parents ``xᵢ`` and a hand-written local
backward rule that maps the upstream gradient ``∂L/∂y`` to ``∂L/∂xᵢ`` (the vector–Jacobian
product). :meth:`Tensor.backward` then runs the chain rule over the whole graph:

1. sort the nodes topologically (every node after all of its parents);
2. walk them in reverse order, calling each node's backward rule once, with the *sum* of the
   gradients flowing into it from all of its consumers.

Step 2's sum is the "copy sums" gate rule: a value used twice (fan-out) is a copy gate, and the
gradient of a copy is the sum of the gradients of its copies. The other local rules read off the
ops themselves (see :mod:`foveal.scratch.ops.elementwise` and :mod:`foveal.scratch.ops.reduce`):
add distributes the gradient unchanged, multiply swaps its inputs, max routes the gradient to
the winner.

Gradients accumulate into ``.grad`` of leaf tensors that require them, as in torch; call
``zero_grad`` (on a layer or optimizer) between steps.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

BackwardFn = Callable[[np.ndarray], Sequence["np.ndarray | None"]]
ArrayLike = Any

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Within this block ops record no graph (evaluation, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _grad_enabled


class Tensor:
    """An ``np.ndarray`` plus what autodiff needs: its gradient and, if computed, its parents.

    ``data`` holds the value. ``grad`` holds ``∂L/∂data`` after :meth:`backward` (leaves with
    ``requires_grad=True`` only, unless :meth:`retain_grad` was called). Floating dtypes only:
    ``float64`` for gradient checks, ``float32`` for training.
    """

    __array_priority__ = 1000  # so ``ndarray + Tensor`` dispatches to Tensor.__radd__

    def __init__(self, data: ArrayLike, requires_grad: bool = False, name: str = "") -> None:
        array = np.asarray(data)
        if array.dtype.kind != "f":
            if requires_grad or array.dtype.kind not in "iub":
                raise ValueError(
                    f"Tensor: expected a floating-point array, got dtype {array.dtype}"
                )
            array = array.astype(np.float64)
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None
        self._op = ""
        self._retain = False

    # ----------------------------------------------------------------------------- basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def op(self) -> str:
        """The name of the op that made this tensor (``""`` for a leaf)."""
        return self._op

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (shared, not copied)."""
        return self.data

    def item(self) -> float:
        return float(self.data.item())

    def detach(self) -> Tensor:
        """The same value cut out of the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` on this intermediate result after :meth:`backward`."""
        self._retain = True
        return self

    def __repr__(self) -> str:
        extra = f", op={self._op}" if self._op else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}{extra})"

    # ----------------------------------------------------------------------------- autodiff
    def backward(self, grad: ArrayLike | None = None) -> None:
        """Accumulate ``∂self/∂leaf`` (times ``grad``) into every leaf's ``.grad``.

        ``grad`` is the upstream gradient ``∂L/∂self``; it defaults to 1 for a scalar.
        """
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require grad (no graph to walk)")
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward: expected a scalar or an explicit grad, got shape {self.shape}"
                )
            grad = np.ones_like(self.data)
        grad = np.asarray(grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: expected grad of shape {self.shape}, got {grad.shape}")

        order = _topological_order(self)
        sole = _sole_references()
        pending: dict[int, np.ndarray] = {id(self): grad}
        for node in reversed(order):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:  # a leaf: keep g itself when nothing else holds it
                if node.grad is not None:
                    node.grad = node.grad + g
                elif (sole is not None and sys.gettrace() is None and _references(g) <= sole
                      and g.flags.owndata and g.flags.writeable):
                    node.grad = g  # fresh and held by nobody else (_sole_references)
                else:
                    node.grad = g.copy()
                continue
            if node._retain:
                node.grad = g.copy() if node.grad is None else node.grad + g
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads, strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(
                        f"{node._op} backward: gradient shape {pg.shape} does not match "
                        f"input shape {parent.shape}"
                    )
                key = id(parent)
                # copy sums: a tensor consumed k times receives the sum of k gradients
                pending[key] = pg if key not in pending else pending[key] + pg
            parent_grads = pg = None  # hold no gradient past its node: a leaf may keep its own

    # ----------------------------------------------------------------------------- operators
    def __add__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import add

        return add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import add

        return add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import sub

        return sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import sub

        return sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import mul

        return mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import mul

        return mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import div

        return div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.elementwise import div

        return div(other, self)

    def __neg__(self) -> Tensor:
        from foveal.scratch.ops.elementwise import neg

        return neg(self)

    def __pow__(self, exponent: float) -> Tensor:
        from foveal.scratch.ops.elementwise import power

        return power(self, exponent)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.linear import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        from foveal.scratch.ops.linear import matmul

        return matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        from foveal.scratch.ops.shape import getitem

        return getitem(self, index)

    # ----------------------------------------------------------------------------- methods
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        from foveal.scratch.ops.reduce import sum as sum_

        return sum_(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        from foveal.scratch.ops.reduce import mean

        return mean(self, axis, keepdims)

    def max(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        from foveal.scratch.ops.reduce import max as max_

        return max_(self, axis, keepdims)

    def exp(self) -> Tensor:
        from foveal.scratch.ops.elementwise import exp

        return exp(self)

    def log(self) -> Tensor:
        from foveal.scratch.ops.elementwise import log

        return log(self)

    def sqrt(self) -> Tensor:
        from foveal.scratch.ops.elementwise import sqrt

        return sqrt(self)

    def reshape(self, *shape: int | tuple[int, ...]) -> Tensor:
        from foveal.scratch.ops.shape import reshape

        target = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        return reshape(self, target)  # type: ignore[arg-type]

    def transpose(self, *axes: int) -> Tensor:
        from foveal.scratch.ops.shape import transpose

        return transpose(self, axes or None)

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        return self.transpose()


def as_tensor(x: ArrayLike, dtype: np.dtype | None = None) -> Tensor:
    """``x`` itself if it is a Tensor, else a constant Tensor (no gradient) holding it.

    Python scalars and integer arrays take ``dtype`` (the other operand's) so that
    ``float32_tensor * 2`` stays float32.
    """
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    if array.dtype.kind != "f" or (dtype is not None and array.ndim == 0):
        array = array.astype(dtype or np.float64)
    return Tensor(array)


def float_tensor(x: ArrayLike, op: str, name: str = "input") -> Tensor:
    """``x`` as a Tensor, refusing integer and boolean arrays with a one-line error naming ``op``.

    (:func:`as_tensor` converts integers silently, which is right for constants but hides a
    bug when labels or indices reach an op that expects real values.)
    """
    if isinstance(x, Tensor):
        return x
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise ValueError(f"{op}: expected a floating-point {name}, got dtype {array.dtype}")
    return Tensor(array)


def node(
    data: np.ndarray, parents: Sequence[Tensor], backward: BackwardFn, op: str
) -> Tensor:
    """The result of an op: ``data`` linked to its ``parents`` through the local rule ``backward``.

    ``backward(g)`` receives ``∂L/∂out`` (shape of ``data``) and returns one gradient per parent
    (``None`` where a parent needs none). No graph is recorded under :func:`no_grad` or when no
    parent requires a gradient.
    """
    out = Tensor(data)
    out._op = op
    if _grad_enabled and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = tuple(parents)
        out._backward = backward
    return out


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting copies an input along new or size-1 axes, and copies sum their gradients.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _references(a: np.ndarray) -> int:
    """``sys.getrefcount(a)`` as seen from a caller that holds ``a`` in one local variable."""
    return sys.getrefcount(a)


def _sole_references() -> int | None:
    """The :func:`_references` count of an array that only one local variable holds, measured
    the way :meth:`Tensor.backward` measures a leaf's gradient (the count depends on the
    interpreter), or None where counts cannot tell one holder from two: no reference counts
    (not CPython), or a trace function running (debuggers and tracers that read a frame's
    locals hold extra references for as long as they keep the snapshot).

    With it, a leaf's first gradient is stored without a copy when it owns its data and no
    other variable, container, closure or view holds it, as torch steals a gradient buffer
    nothing else uses: copying it cost as much as a small layer's backward (a 4 MB input
    gradient: ~1 ms). A gradient an op passes on unchanged (the array add gives both parents,
    a reshape's view, the caller's upstream array) is held elsewhere when a leaf receives it,
    so it is copied: a leaf's ``.grad`` never shares memory with anything. Measured at each
    :meth:`Tensor.backward`, not once, so that a tracer started or stopped in between cannot
    skew it."""
    if not hasattr(sys, "getrefcount") or sys.gettrace() is not None:
        return None
    a = np.empty(1)
    sole = _references(a)
    held = [a]  # noqa: F841 — a second holder must count more
    return sole if _references(a) > sole else None


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root``, each after all of its parents (iterative DFS)."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for p in t._parents:
            if id(p) not in seen and p.requires_grad:
                stack.append((p, False))
    return order
