"""The torch cross-check helpers themselves: they pass on a correct op or layer and fail, with
the errors named, on a wrong gradient or mismatched parameters."""

import numpy as np
import pytest
import torch

from foveal.scratch import Tensor
from foveal.scratch.layers.linear import Linear
from foveal.scratch.tensor import node
from foveal.scratch.torchcheck import module_check, torch_check

rng = np.random.default_rng(0)


def wrong_square(x: Tensor) -> Tensor:
    """x² whose backward forgets the factor 2."""
    return node(x.data**2, (x,), lambda g: [g * x.data], "wrong_square")


def test_torch_check_passes_a_correct_op():
    x = rng.standard_normal((3, 4))
    torch_check(lambda t: t * t, lambda t: t * t, [x]).assert_close()


def test_torch_check_catches_a_wrong_backward():
    result = torch_check(wrong_square, lambda t: t * t, [rng.standard_normal((3, 4))])
    assert result.forward_error < 1e-12 and result.grad_errors[0] > 0.1
    with pytest.raises(AssertionError, match="gradient errors"):
        result.assert_close()


def test_module_check_compares_every_parameter_gradient():
    theirs = torch.nn.Linear(5, 3).double()
    ours = Linear(5, 3).to(np.float64)
    result = module_check(ours, theirs, [rng.standard_normal((2, 5))])
    assert [name for name, _ in result.param_errors] == ["weight", "bias"]
    result.assert_close(1e-12)


def test_module_check_rejects_mismatched_parameter_names():
    theirs = torch.nn.Linear(5, 3, bias=False).double()
    ours = Linear(5, 3).to(np.float64)
    with pytest.raises(AssertionError, match="parameter names differ"):
        module_check(ours, theirs, [rng.standard_normal((2, 5))], load_weights=False)
