"""gg.nn.Parameter: the tensor a Module registers as a trainable weight."""

from __future__ import annotations

import numpy as np

from gpugrad import creation, dtypes
from gpugrad.tensor import Tensor, _check_can_require_grad, init_fields


class Parameter(Tensor):
    """A leaf tensor that requires grad and that a Module registers when assigned to it.

    Parameter(t) shares t's memory, as torch.nn.Parameter does; other data is copied."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            array = np.empty((0,), dtype=dtypes.DEFAULT_FLOAT.np)
        elif isinstance(data, Tensor):
            array = data.array
        else:
            array = creation._as_array(data)
        init_fields(self, array, bool(requires_grad))
        if requires_grad:
            _check_can_require_grad(self)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
