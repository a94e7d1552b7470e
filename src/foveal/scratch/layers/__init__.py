"""Layers: stateful wrappers (parameters, buffers, modes) over :mod:`foveal.scratch.ops`.

Constructor arguments, parameter names and buffers follow the torch ``nn`` layer of the same
name, so ``state_dict`` moves between the two unchanged.
"""

from foveal.scratch.layers.activation import (
    ELU,
    GELU,
    GLU,
    SELU,
    LeakyReLU,
    LogSoftmax,
    Maxout,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from foveal.scratch.layers.attention import MultiheadAttention
from foveal.scratch.layers.conv import Conv2d, ConvTranspose2d
from foveal.scratch.layers.dropout import DropConnectLinear, Dropout
from foveal.scratch.layers.embedding import Embedding, SinusoidalPositionalEncoding
from foveal.scratch.layers.linear import Flatten, Linear
from foveal.scratch.layers.loss import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    MulticlassHingeLoss,
    SmoothL1Loss,
    TripletMarginLoss,
)
from foveal.scratch.layers.module import Module, ModuleList, Parameter, Sequential
from foveal.scratch.layers.norm import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)
from foveal.scratch.layers.pool import AvgPool2d, GlobalAvgPool2d, MaxPool2d, MaxUnpool2d
from foveal.scratch.layers.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from foveal.scratch.layers.transformer import TransformerEncoderLayer

__all__ = [
    "ELU",
    "GELU",
    "GLU",
    "GRU",
    "LSTM",
    "RNN",
    "SELU",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "DropConnectLinear",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "GlobalAvgPool2d",
    "GroupNorm",
    "InstanceNorm2d",
    "L1Loss",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "MaxUnpool2d",
    "Maxout",
    "Module",
    "ModuleList",
    "MulticlassHingeLoss",
    "MultiheadAttention",
    "Parameter",
    "RNNCell",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SinusoidalPositionalEncoding",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "TransformerEncoderLayer",
    "TripletMarginLoss",
]
