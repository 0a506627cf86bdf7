"""Sorting: sort, argsort, topk. The order is found on the raw array; the values are gathered
from x through an index op, so their gradient scatters back to where each value came from."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from gpugrad.backend import device_guard, xp_of
from gpugrad.ops._operands import normalize_dim
from gpugrad.ops.reduce import _gather
from gpugrad.tensor import Tensor

sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])


def _order(array, dim: int, descending: bool):
    """Stable argsort along dim. NaN sorts above +inf (last ascending, first descending), and
    equal values keep their order both ways, as torch's stable sort."""
    xp = xp_of(array)
    moved = xp.moveaxis(array, dim, -1)
    if not descending:
        order = xp.argsort(moved, axis=-1, kind="stable")
    else:
        # stable descending: sort the reversed row ascending, reverse that, map positions back
        n = moved.shape[-1]
        order = (n - 1) - xp.flip(xp.argsort(xp.flip(moved, -1), axis=-1, kind="stable"), -1)
    return xp.moveaxis(order.astype(np.int64), -1, dim)


def _take(x: Tensor, dim: int, index):
    if x.array.dtype.kind == "f":
        return _gather(x, dim, Tensor._make(index))
    return Tensor._make(xp_of(x.array).take_along_axis(x.array, index, axis=dim))


def _dim(name: str, x: Tensor, dim: int) -> int:
    return normalize_dim(name, dim, x.ndim)  # a 0-d tensor takes 0 and -1


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along dim; the values' gradient flows back to x."""
    _dim("sort", x, dim)
    if x.ndim == 0:
        return sort_result(x, Tensor._make(xp_of(x.array).zeros((), dtype=np.int64)))
    d = _dim("sort", x, dim)
    with device_guard(x.array):
        index = _order(x.array, d, descending)
        return sort_result(_take(x, d, index), Tensor._make(index))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices that sort x along dim."""
    return sort(x, dim, descending, stable).indices


def msort(x: Tensor) -> Tensor:
    """x sorted along its first dimension."""
    return sort(x, 0).values


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """(values, indices) of the k largest (or smallest) entries along dim, in order."""
    if not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    d = _dim("topk", x, dim)
    if x.array.dtype == np.bool_:
        raise TypeError("topk: bool tensors are not supported (as in torch)")
    size = x.shape[d] if x.ndim else 1
    if not isinstance(k, (int, np.integer)) or not 0 <= k <= size:
        raise RuntimeError(
            f"topk: selected index k out of range (k={k}, dimension {d} has size {size})"
        )
    if x.ndim == 0:
        return topk_result(x, Tensor._make(xp_of(x.array).zeros((), dtype=np.int64)))
    with device_guard(x.array):
        index = _order(x.array, d, descending=largest)
        index = xp_of(index).take(index, xp_of(index).arange(int(k)), axis=d)
        return topk_result(_take(x, d, index), Tensor._make(index))
