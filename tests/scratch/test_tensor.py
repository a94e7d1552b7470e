"""The reverse-mode engine: topological order, fan-out sums, accumulation, no_grad.

Oracles: hand-derived closed forms and torch autograd.
"""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor, no_grad
from foveal.scratch.ops.elementwise import add, exp, mul
from foveal.scratch.torchcheck import torch_check


def test_fan_out_gradients_sum_like_a_copy_gate():
    # y = x·x + x uses x three times: dy/dx = 2x + 1 (closed form)
    x = Tensor(np.array([1.5, -2.0]), requires_grad=True)
    y = (x * x + x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_diamond_graph_matches_torch():
    # a → (b, c) → d: the node a must receive both contributions before its own backward runs
    def ours(x):
        a = exp(x)
        b, c = a * 2.0, a * a
        return (b + c) / (a + 1.0)

    def theirs(x):
        a = torch.exp(x)
        return (a * 2.0 + a * a) / (a + 1.0)

    x = np.random.default_rng(0).standard_normal((3, 4))
    torch_check(ours, theirs, [x]).assert_close(1e-12)


def test_deep_chain_does_not_recurse():
    # an iterative topological sort handles graphs deeper than Python's recursion limit
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**5000, rtol=1e-9)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0])


def test_intermediate_grads_only_when_retained():
    x = Tensor(np.array([2.0]), requires_grad=True)
    h = (x * x).retain_grad()
    k = x * 5.0
    (h * k).sum().backward()
    assert k.grad is None
    np.testing.assert_allclose(h.grad, k.data)


def test_no_grad_records_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.is_leaf


def test_constants_receive_no_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.full(3, 4.0))
    (mul(x, c)).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, 4.0)


def test_backward_needs_scalar_or_explicit_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"grad of shape \(3,\)"):
        (x * 2.0).backward(np.ones(4))


def test_float32_scalars_keep_dtype():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = add(x * 2, 1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensor_needing_grad_is_rejected():
    with pytest.raises(ValueError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)


def test_leaf_grad_never_aliases_a_gradient_passed_on_unchanged():
    """The pitfall of storing a leaf's gradient without a copy: add hands the same upstream
    array to both parents, a reshape a view of it, and the caller's upstream array is the
    caller's. Each leaf's .grad must be its own memory (closed form: equal values, no sharing)."""
    a, b = Tensor(np.ones(4), requires_grad=True), Tensor(np.ones(4), requires_grad=True)
    (a + b).backward(np.arange(4.0))
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1
    np.testing.assert_array_equal(b.grad, np.arange(4.0))
    # add's upstream here is fresh (made by mul's backward), held only by the two parents'
    # pending entries: the first leaf must copy it, however the reference count is taken
    a, b = Tensor(np.ones(4), requires_grad=True), Tensor(np.ones(4), requires_grad=True)
    ((a + b) * 2.0).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    np.testing.assert_array_equal(a.grad, 2.0)

    c = Tensor(np.ones((2, 2)), requires_grad=True)
    upstream = np.arange(4.0)
    d = c.reshape(4)
    d.retain_grad()
    d.backward(upstream)
    assert not np.shares_memory(c.grad, upstream) and not np.shares_memory(c.grad, d.grad)

    leaf = Tensor(np.ones(3), requires_grad=True)
    leaf.backward(upstream[:3])
    assert not np.shares_memory(leaf.grad, upstream)


def _doubling_op() -> tuple[Tensor, Tensor, list]:
    """A leaf ``x`` (3,), ``y = 2x`` by a custom node whose backward returns a fresh array, and
    a list that receives a weak reference to that array (which does not count as holding it)."""
    import weakref

    from foveal.scratch.tensor import node

    made: list = []

    def backward(g):
        out = g * 2.0
        made.append(weakref.ref(out))
        return [out]

    x = Tensor(np.ones(3), requires_grad=True)
    return x, node(x.data * 2.0, [x], backward, "double"), made


def test_leaf_keeps_a_fresh_gradient_without_copying_it():
    """A gradient that an op allocates and nothing else holds becomes the leaf's .grad itself
    (closed form: the array the op returned)."""
    from foveal.scratch.tensor import _sole_references

    if _sole_references() is None:
        pytest.skip("reference counts cannot tell a sole holder here (no CPython, or tracing)")
    x, y, made = _doubling_op()
    y.backward(np.ones(3))
    assert made[0]() is x.grad
    np.testing.assert_array_equal(x.grad, 2.0)


def test_leaf_grad_is_copied_while_a_trace_function_runs():
    """Debuggers that read a frame's locals hold extra references while tracing, which would
    skew the count: under a trace function every leaf gradient is copied (closed form: no
    gradient is the array the op returned)."""
    import sys

    x, y, made = _doubling_op()
    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: None)
    try:
        y.backward(np.ones(3))
    finally:
        sys.settrace(previous)
    assert made[0]() is None or made[0]() is not x.grad
    np.testing.assert_array_equal(x.grad, 2.0)
