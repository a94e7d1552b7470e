"""Layers: stateful wrappers (parameters, buffers, modes) over :mod:`foveal.scratch.ops`."""

from foveal.scratch.layers.linear import Flatten, Linear
from foveal.scratch.layers.module import Module, ModuleList, Parameter, Sequential

__all__ = ["Flatten", "Linear", "Module", "ModuleList", "Parameter", "Sequential"]
