"""gg.nn's layers, split as torch.nn splits them: module (the Module base), container, linear,
activation, dropout, flatten, normalization, batchnorm, sparse, loss, and mlp (gpugrad's fused
MLP). Import paths are gg.nn.X."""

from gpugrad.nn.modules.activation import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from gpugrad.nn.modules.batchnorm import BatchNorm1d
from gpugrad.nn.modules.container import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from gpugrad.nn.modules.dropout import Dropout
from gpugrad.nn.modules.flatten import Flatten, Unflatten
from gpugrad.nn.modules.linear import Identity, Linear
from gpugrad.nn.modules.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
    SmoothL1Loss,
)
from gpugrad.nn.modules.mlp import MLP
from gpugrad.nn.modules.module import Module, _source_array, _zero_grad  # noqa: F401  (optim, serialization)
from gpugrad.nn.modules.normalization import LayerNorm
from gpugrad.nn.modules.sparse import Embedding
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
    # issue 14
    "BatchNorm1d",
    "BCELoss",
    "ELU",
    "Embedding",
    "Hardtanh",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "LayerNorm",
    "LogSigmoid",
    "Mish",
    "ModuleDict",
    "ModuleList",
    "ParameterDict",
    "ParameterList",
    "PReLU",
    "ReLU6",
    "SiLU",
    "SmoothL1Loss",
    "Softplus",
    "Unflatten",
    # torch's remaining elementwise activations
    "CELU",
    "GLU",
    "Hardshrink",
    "Hardsigmoid",
    "Hardswish",
    "SELU",
    "Softmin",
    "Softshrink",
    "Softsign",
    "Tanhshrink",
    "Threshold",
]
