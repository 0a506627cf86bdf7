"""Linear and Identity."""

from __future__ import annotations

import math

import numpy as np

from gpugrad import creation
from gpugrad.nn import functional as F
from gpugrad.nn import init
from gpugrad.nn.modules.module import Module
from gpugrad.nn.parameter import Parameter
from gpugrad.tensor import Tensor


def _check_features(name: str, **sizes) -> None:
    for key, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name}: {key} must be a non-negative integer, got {value!r}")


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features); PyTorch's default init:
    W and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features))."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        _check_features("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(
            creation.empty(out_features, in_features, dtype=dtype, device=device)
        )
        if bias:
            self.bias = Parameter(creation.empty(out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform_(a=sqrt(5)) gives bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_features
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        bias = self.bias is not None
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"


class Identity(Module):
    """Returns its input (accepts and ignores any constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
