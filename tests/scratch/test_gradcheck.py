"""The numeric gradient checker itself: it passes correct rules and catches wrong ones."""

import numpy as np
import pytest

from foveal.scratch import Tensor, gradcheck, numeric_gradient, relative_error
from foveal.scratch.tensor import node


def test_numeric_gradient_of_a_closed_form():
    x = np.array([0.3, -1.2, 2.0])
    g = numeric_gradient(lambda: float(np.sum(np.sin(x))), x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-8)


def test_gradcheck_catches_a_wrong_backward():
    def bad_square(x: Tensor) -> Tensor:
        return node(x.data**2, (x,), lambda g: (g * x.data,), "bad_square")  # missing factor 2

    result = gradcheck(bad_square, [np.random.default_rng(0).standard_normal(5)])
    assert not result.ok and result.max_error > 0.1


def test_gradcheck_requires_float64():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda x: x * 2.0, [np.ones(3, dtype=np.float32)])


def test_relative_error_ignores_exact_zeros_and_checks_shapes():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(3), np.zeros(4))
