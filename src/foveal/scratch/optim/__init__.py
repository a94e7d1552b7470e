"""Optimizers, learning-rate schedules, gradient clipping and L-BFGS, in NumPy.

Optimizers update parameters in place: any object with a float ``data`` array and a ``grad``
array (or ``None`` to skip it) will do. Each update rule is checked step by step against its
``torch.optim`` counterpart in the tests; L-BFGS is checked against SciPy.
"""

from foveal.scratch.optim.adagrad import Adagrad
from foveal.scratch.optim.adam import Adam, AdamW
from foveal.scratch.optim.clip import clip_grad_norm
from foveal.scratch.optim.lbfgs import (
    LBFGSResult,
    lbfgs,
    lbfgs_direction,
    strong_wolfe_line_search,
)
from foveal.scratch.optim.muon import Muon, adjusted_lr, newton_schulz
from foveal.scratch.optim.optimizer import Optimizer, Parameter
from foveal.scratch.optim.rmsprop import RMSprop
from foveal.scratch.optim.schedules import (
    cosine_lr,
    exponential_lr,
    inverse_sqrt_lr,
    linear_lr,
    linear_warmup,
    multistep_lr,
    reduce_on_plateau_lr,
    step_lr,
)
from foveal.scratch.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "LBFGSResult",
    "Muon",
    "Optimizer",
    "Parameter",
    "RMSprop",
    "adjusted_lr",
    "clip_grad_norm",
    "cosine_lr",
    "exponential_lr",
    "inverse_sqrt_lr",
    "lbfgs",
    "lbfgs_direction",
    "linear_lr",
    "linear_warmup",
    "multistep_lr",
    "newton_schulz",
    "reduce_on_plateau_lr",
    "step_lr",
    "strong_wolfe_line_search",
]
