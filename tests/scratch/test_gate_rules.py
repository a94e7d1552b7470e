"""The four local gate rules of backprop, each shown on the smallest example (closed forms).

add distributes, max routes, multiply swaps, copy sums.
"""

import numpy as np

from foveal.scratch import Tensor
from foveal.scratch.ops.elementwise import maximum


def leaves(*values):
    return [Tensor(np.array(v, dtype=float), requires_grad=True) for v in values]


def test_add_distributes_the_gradient_unchanged():
    x, y = leaves(3.0, -4.0)
    (x + y).backward(np.array(2.0))
    assert x.grad == 2.0 and y.grad == 2.0


def test_max_routes_the_gradient_to_the_larger_input():
    x, y = leaves(3.0, -4.0)
    maximum(x, y).backward(np.array(2.0))
    assert x.grad == 2.0 and y.grad == 0.0


def test_multiply_swaps_the_inputs():
    x, y = leaves(3.0, -4.0)
    (x * y).backward(np.array(2.0))
    assert x.grad == 2.0 * -4.0 and y.grad == 2.0 * 3.0


def test_copy_sums_the_gradients_of_its_uses():
    (x,) = leaves(3.0)
    (x * 2.0 + x * 5.0).backward(np.array(1.0))
    assert x.grad == 7.0


def test_cs231n_circuit_example():
    # f(x, y, z) = (x + y) · z at x=−2, y=5, z=−4: df/dx = df/dy = z = −4, df/dz = x + y = 3
    x, y, z = leaves(-2.0, 5.0, -4.0)
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)
