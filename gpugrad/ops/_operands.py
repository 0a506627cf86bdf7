"""Turning op arguments into tensors of one dtype on one device, with errors that name the op."""
from __future__ import annotations

import numpy as np

from gpugrad import backend, dtypes
from gpugrad.tensor import Tensor


def same_device(name: str, *tensors: Tensor):
    """RuntimeError naming op `name` unless the tensors share one device."""
    backend.same_device(name, *(t.array for t in tensors))


def constant(value, dtype: dtypes.dtype, like: Tensor) -> Tensor:
    """A 0-d constant tensor for a Python number, on like's device."""
    if backend.is_host(like.array):
        return Tensor._make(np.asarray(value, dtype=dtype.np))
    with backend.device_guard(like.array):  # a no-op with one GPU
        # a fill kernel, not a copy from the host: a CUDA graph can capture it
        if isinstance(value, (np.ndarray, np.generic)):
            value = value.item()
        return Tensor._make(backend.xp_of(like.array).full((), value, dtype=dtype.np))


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        dtype = dtypes.result_type(value)
        if like is not None:
            return constant(value, dtype, like)
        return Tensor._make(np.asarray(value, dtype=dtype.np))
    if like is not None:
        return Tensor(value, device=like.device)
    return Tensor(value)


_NUMBER = (int, float)


def _fast_pair(a, b):
    """The common cases — two CPU tensors of one dtype, or a float CPU tensor and a Python
    number — without the general promotion machinery. None when they do not apply."""
    if type(a.array) is not np.ndarray:
        return None
    if isinstance(b, Tensor):
        if b.array.dtype != a.array.dtype or type(b.array) is not np.ndarray:
            return None
        if a.array.shape != b.array.shape and not _broadcastable(a.array.shape, b.array.shape):
            return None  # let the general path raise the error
        return b
    if type(b) in _NUMBER and a.array.dtype.kind == "f":
        return Tensor._make(np.asarray(b, dtype=a.array.dtype))
    return None


def _broadcastable(s1: tuple, s2: tuple) -> bool:
    for x, y in zip(reversed(s1), reversed(s2)):
        if x != y and x != 1 and y != 1:
            return False
    return True


def promote(name: str, *values, floating: bool = False, broadcast: bool = True) -> list[Tensor]:
    """Tensors of the promoted dtype (PyTorch rules) on one device; broadcast shapes checked."""
    if len(values) == 2 and broadcast:
        a, b = values
        if isinstance(a, Tensor):
            other = _fast_pair(a, b)
            if other is not None and (not floating or a.array.dtype.kind == "f"):
                return [a, other]
        elif isinstance(b, Tensor):
            other = _fast_pair(b, a)
            if other is not None and (not floating or b.array.dtype.kind == "f"):
                return [other, b]
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None:
        raise TypeError(f"{name}: expected at least one Tensor argument")
    result = dtypes.result_type(*values)
    if floating and not result.is_floating_point:
        result = dtypes.DEFAULT_FLOAT
    tensors = []
    for v in values:
        if isinstance(v, Tensor):
            if v.array.dtype != result.np:
                from gpugrad.ops.shape import cast

                v = cast(v, result)
        elif isinstance(v, (bool, int, float, np.number, np.bool_)):
            v = constant(v, result, like)
        else:
            raise TypeError(
                f"{name}: unsupported operand type {type(v).__name__} (expected Tensor or number)"
            )
        tensors.append(v)
    if len(tensors) > 1:
        same_device(name, *tensors)
        shapes = [t.array.shape for t in tensors]
        if broadcast and any(s != shapes[0] for s in shapes[1:]):
            try:
                np.broadcast_shapes(*shapes)
            except ValueError:
                shown = " and ".join(str(tuple(s)) for s in shapes)
                raise ValueError(f"{name}: shapes {shown} cannot be broadcast together") from None
    return tensors


def normalize_dims(name: str, dim, ndim: int) -> tuple | None:
    """dim as a sorted tuple of non-negative axes (None means all)."""
    if dim is None:
        return None
    if type(dim) is int and -ndim <= dim < ndim:  # one valid axis: the common case, kept cheap
        return (dim % ndim,)
    if isinstance(dim, (int, np.integer)):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in dim):
        dims = tuple(dim)
    else:
        raise TypeError(f"{name}: dim must be an int or a tuple of ints, got {dim!r}")
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"{name}: dimension {d} out of range for a tensor of {ndim} dimensions"
            )
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dimension repeated in {dims}")
    return tuple(sorted(out)) if ndim > 0 else ()


def normalize_dim(name: str, dim, ndim: int) -> int:
    """One dim, an int in range, made non-negative (a 0-d tensor takes 0 and -1)."""
    check_ints(name, dim)
    return (normalize_dims(name, dim, ndim) or (0,))[0]


def check_ints(name: str, *dims) -> None:
    """TypeError unless every dim is an int (checked for all before any range, as torch)."""
    for dim in dims:
        if not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{name}: dim must be an int, got {dim!r}")
