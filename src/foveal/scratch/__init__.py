"""foveal.scratch: deep learning from first principles in NumPy.

Every op's forward and backward is written by hand (:mod:`foveal.scratch.ops`), a reverse-mode
engine chains them (:mod:`foveal.scratch.tensor`), and each one is checked against centred
differences (:mod:`foveal.scratch.gradcheck`) and torch autograd in the tests.
"""

from foveal.scratch.gradcheck import gradcheck, numeric_gradient, relative_error
from foveal.scratch.tensor import Tensor, as_tensor, no_grad

__all__ = ["Tensor", "as_tensor", "gradcheck", "no_grad", "numeric_gradient", "relative_error"]
