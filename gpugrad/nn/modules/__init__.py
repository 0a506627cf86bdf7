"""gg.nn's layers, split as torch.nn splits them: module (the Module base), container, linear,
activation, dropout, flatten, loss, and mlp (gpugrad's fused MLP). Import paths are gg.nn.X."""

from gpugrad.nn.modules.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from gpugrad.nn.modules.container import Sequential
from gpugrad.nn.modules.dropout import Dropout
from gpugrad.nn.modules.flatten import Flatten
from gpugrad.nn.modules.linear import Identity, Linear
from gpugrad.nn.modules.loss import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
)
from gpugrad.nn.modules.mlp import MLP
from gpugrad.nn.modules.module import Module, _source_array, _zero_grad  # noqa: F401  (optim, serialization)
from gpugrad.nn.parameter import Parameter

__all__ = [
    "GELU",
    "MLP",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "MultiMarginLoss",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
