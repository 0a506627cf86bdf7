"""Dropout."""

from __future__ import annotations

from gpugrad.nn import functional as F
from gpugrad.nn.modules.module import Module
from gpugrad.tensor import Tensor


class Dropout(Module):
    """Zeroes each element with probability p while training, scaling the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace  # inplace is accepted for compatibility; never in place

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
