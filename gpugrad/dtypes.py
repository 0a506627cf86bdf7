"""Tensor dtypes and PyTorch's type-promotion rules (which differ from NumPy's)."""
from __future__ import annotations

import builtins

import numpy as np


class dtype:
    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np.dtype(np_dtype) if np_dtype is not None else None
        self.is_floating_point = category == 2
        self.itemsize = self.np.itemsize if self.np is not None else 2
        self._category = category  # 0 bool, 1 integer, 2 floating

    def __repr__(self) -> str:
        return f"gpugrad.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
bfloat16 = dtype("bfloat16", None, 2)  # no NumPy/CuPy array type: creating one raises
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
bool_ = dtype("bool", np.bool_, 0)

half, float, double, long, int = float16, float32, float64, int64, int32  # noqa: A001

_ALL = [float16, float32, float64, bfloat16, uint8, int8, int16, int32, int64, bool_]
_BY_NAME = {d.name: d for d in _ALL}
_BY_NP = {d.np: d for d in _ALL if d.np is not None}

DEFAULT_FLOAT = float32


def from_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy(np_dtype) -> dtype:
    """gpugrad dtype of a NumPy dtype; float64 stays float64, unsigned ints other than uint8 fail."""
    key = np.dtype(np_dtype)
    if key not in _BY_NP:
        raise TypeError(f"unsupported array dtype {key}: gpugrad supports {sorted(_BY_NAME)}")
    return _BY_NP[key]


def as_dtype(value) -> dtype:
    """Accept a gpugrad dtype, a NumPy dtype / type, a torch dtype or a name."""
    if isinstance(value, dtype):
        return value
    if isinstance(value, str):
        name = value.replace("torch.", "").replace("gpugrad.", "")
        if name in _BY_NAME:
            if name == "bfloat16":
                _no_bfloat16()
            return _BY_NAME[name]
    if type(value).__module__ == "torch":
        return as_dtype(str(value))
    if value is builtins.bool:
        return bool_
    return from_numpy(value)


def _no_bfloat16():
    raise TypeError("bfloat16 is not supported: neither NumPy nor CuPy has a bfloat16 array type")


def _scalar_category(value) -> int:
    if isinstance(value, (builtins.bool, np.bool_)):
        return 0
    if isinstance(value, (builtins.int, np.integer)):
        return 1
    return 2


def _category_dtype(category: int) -> dtype:
    return (bool_, int64, DEFAULT_FLOAT)[category]


def python_scalar_dtype(value) -> dtype:
    """The dtype a Python bool, int or float takes in a tensor: bool, int64, the default float."""
    return _category_dtype(_scalar_category(value))


def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    return from_numpy(np.promote_types(a.np, b.np))


def result_type(*operands) -> dtype:
    """PyTorch's promotion: dimensioned tensors > zero-dim tensors > Python scalars,
    a lower-priority operand only counts when its category (bool < int < float) is higher."""
    from gpugrad.tensor import Tensor

    dims, zeros, scalars = None, None, -1
    for op in operands:
        if isinstance(op, Tensor):
            if op.ndim > 0:
                dims = op.dtype if dims is None else _promote_pair(dims, op.dtype)
            else:
                zeros = op.dtype if zeros is None else _promote_pair(zeros, op.dtype)
        else:
            scalars = max(scalars, _scalar_category(op))
    result = dims
    if zeros is not None:
        if result is None:
            result = zeros
        elif zeros._category > result._category:
            result = zeros
    if scalars >= 0:
        if result is None or scalars > result._category:
            result = _category_dtype(scalars)
    return result
