"""Reductions. sum and amax/amin carry rules; mean, var, logsumexp and max(dim) are
compositions (max(dim) gathers the winner, so the whole gradient routes to it)."""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from gpugrad import dtypes, replay
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import device_guard, xp_of
from gpugrad.ops import elementwise as E
from gpugrad.ops import shape as S
from gpugrad.ops._operands import normalize_dim, normalize_dims, promote, same_device
from gpugrad.tensor import Tensor

values_indices = namedtuple("values_indices", ["values", "indices"])


def _keep_shape(shape, dims):
    return tuple(1 if (dims is None or i in dims) else s for i, s in enumerate(shape))


class Sum(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.input_shape, ctx.keep_shape = x.shape, _keep_shape(x.shape, dims)
        ctx.dims, ctx.keepdim = dims, keepdim
        return x.sum(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        return S.expand(S.reshape(g, ctx.keep_shape), *ctx.input_shape), None, None

    @staticmethod
    def jvp(ctx, t, _dims, _keepdim):
        return sum(t, ctx.dims, ctx.keepdim)


class Amax(ArrayFunction):
    """Max over dims; tied maxima share the gradient evenly (PyTorch's amax / max()). Where the
    result is NaN, amax's gradient is NaN (no input equals it); with nan_wins (torch's max() of
    all elements) the NaN inputs share it instead."""

    reduce = "max"

    @staticmethod
    def forward(ctx, x, dims, keepdim, nan_wins):
        y = (x.max if ctx.fn.reduce == "max" else x.min)(axis=dims, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim, ctx.nan_wins = dims, keepdim, nan_wins
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if dims is not None and i not in dims])

    @staticmethod
    def _share(ctx, x, y_keep, nan_wins=False):
        winners = x == y_keep
        if nan_wins:
            winners = winners | (E.isnan(x) & E.isnan(y_keep))
        winners = winners.to(x.dtype)
        return winners / sum(winners, ctx.dims, keepdim=True)

    @staticmethod
    def backward(ctx, g):
        x, y_keep = ctx.saved_tensors
        g_keep = S.reshape(g, y_keep.shape)
        return g_keep * Amax._share(ctx, x, y_keep, ctx.nan_wins), None, None, None

    @staticmethod
    def jvp(ctx, t, _dims, _keepdim, _nan_wins):
        x, y_keep = ctx.saved_tensors
        # NaN where the result is NaN, even with nan_wins: torch's jvp does not share it out
        out = sum(t * Amax._share(ctx, x, y_keep), ctx.dims, keepdim=True)
        if ctx.keepdim:
            return out
        return S.reshape(out, [s for i, s in enumerate(x.shape) if ctx.dims is not None and i not in ctx.dims])


class Amin(Amax):
    reduce = "min"


class StdFromVar(ArrayFunction):
    """sqrt of a variance, with torch's std gradient: 0 where the variance is 0 (all entries
    equal), not sqrt's inf, which var's backward would turn into inf * 0 = NaN."""

    @staticmethod
    def forward(ctx, v):
        y = xp_of(v).sqrt(v)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def _scaled(y, g):
        zero = y == 0
        # the safe denominator keeps the masked entries' own derivatives finite (0, not 0 / 0)
        return E.where(zero, 0.0, g / (2 * E.where(zero, 1.0, y)))

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return StdFromVar._scaled(y, g)

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return StdFromVar._scaled(y, t)


# ---- public wrappers ------------------------------------------------------------------
def sum(x: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over dim (int, tuple or None = all)."""
    if dtype is not None:
        x = x.to(dtypes.as_dtype(dtype))
    elif x.array.dtype.kind in "bu" or x.array.dtype == np.int32:
        x = S.cast(x, dtypes.int64)  # as torch: integer sums accumulate in int64
    return Sum.apply(x, _reduced_dims("sum", dim, x.ndim), keepdim)


def _reduced_dims(name: str, dim, ndim: int):
    """The dims a reduction works on: an empty tuple means all of them, as in torch."""
    return normalize_dims(name, dim, ndim) or None


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over dim (int, tuple or None = all)."""
    dims = _reduced_dims("mean", dim, x.ndim)
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"mean: expected a floating point tensor, got {x.dtype}")
    count = _count(x, dims)
    return sum(x, dims, keepdim) / count


def _count(x: Tensor, dims) -> int:
    if dims is None:
        return int(x.array.size)
    n = 1
    for d in dims:
        n *= x.shape[d]
    return n


def var(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, correction=None) -> Tensor:
    """Variance over dim with Bessel's correction by default (correction=1)."""
    return _var("var", x, dim, unbiased, keepdim, correction)


def _var(name, x, dim, unbiased, keepdim, correction):
    if x.array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point tensor, got {x.dtype}")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    dims = _reduced_dims(name, dim, x.ndim)
    centered = x - mean(x, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) / builtins.max(_count(x, dims) - correction, 0)


def std(x: Tensor, dim=None, unbiased=None, keepdim: bool = False, correction=None) -> Tensor:
    """Standard deviation: sqrt(var); gradient 0 where all entries are equal, as torch."""
    return StdFromVar.apply(_var("std", x, dim, unbiased, keepdim, correction))


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Max over dim; ties share the gradient."""
    return _extreme(Amax, "amax", x, dim, keepdim)


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Min over dim; ties share the gradient."""
    return _extreme(Amin, "amin", x, dim, keepdim)


def _check_reducible(name: str, x: Tensor, dims) -> None:
    """max, min, argmax ... have no value for an empty set: as torch, reducing a dimension of
    size zero is an IndexError; reducing all of an empty tensor, a RuntimeError for max / min
    and an IndexError for argmax / argmin."""
    if x.array.size:
        return
    if dims is None:
        kind = IndexError if name.startswith("arg") else RuntimeError
        raise kind(
            f"{name}: cannot reduce all of an empty tensor of shape {tuple(x.shape)}; give the "
            "dim to reduce"
        )
    for d in dims:
        if x.shape[d] == 0:
            raise IndexError(
                f"{name}: cannot reduce dimension {d} of shape {tuple(x.shape)}: it has size zero"
            )


def _extreme(fn, name, x, dim, keepdim, nan_wins=False):
    dims = _reduced_dims(name, dim, x.ndim)
    _check_reducible(name, x, dims)
    if x.array.dtype.kind != "f":
        with device_guard(x.array):
            return Tensor._result(replay.op(_int_extreme, x.array, dims, keepdim, fn is Amax))
    return fn.apply(x, dims, keepdim, nan_wins)


def _int_extreme(array, dims, keepdim, largest):
    return (array.max if largest else array.min)(axis=dims, keepdims=keepdim)


def _arg(name, x, dim, keepdim, pick):
    if x.array.dtype == np.bool_:
        raise TypeError(f"{name}: does not support bool input")
    dims = None if dim is None else (normalize_dim(name, dim, x.ndim),)
    _check_reducible(name, x, dims)
    with device_guard(x.array):
        if dim is None or x.ndim == 0:
            return Tensor._result(replay.op(_pick_flat, pick, x.array))
        return Tensor._result(replay.op(_pick, pick, x.array, dims[0], keepdim))


def _pick_flat(pick, array):
    return pick(array.reshape(-1), axis=0)


def _pick(pick, array, axis, keepdims):
    return pick(array, axis=axis, keepdims=keepdims)


def argmax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the (first) maximum."""
    return _arg("argmax", x, dim, keepdim, xp_of(x.array).argmax)


def argmin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the (first) minimum."""
    return _arg("argmin", x, dim, keepdim, xp_of(x.array).argmin)


def _max_min(name, reduce_all, pick, x, dim, keepdim):
    if dim is None:
        return reduce_all(x)
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        return (E.maximum if name == "max" else E.minimum)(x, dim)
    d = normalize_dim(name, dim, x.ndim)
    _check_reducible(name, x, (d,))
    with device_guard(x.array):
        if x.ndim == 0:
            return values_indices(x, Tensor._make(replay.op(xp_of(x.array).zeros, (), "int64")))
        index = Tensor._result(replay.op(_pick, pick, x.array, d, True))
        values = _gather(x, d, index)  # argmax's indices are in range: no check needed
    if not keepdim:
        values, index = S.squeeze(values, d), S.squeeze(index, d)
    return values_indices(values, index)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """max() of all elements, or (values, indices) over dim: the winner takes the gradient."""
    return _max_min("max", lambda t: _extreme(Amax, "max", t, None, False, nan_wins=True),
                    xp_of(x.array).argmax, x, dim, keepdim)


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """min() of all elements, or (values, indices) over dim: the winner takes the gradient."""
    return _max_min("min", lambda t: _extreme(Amin, "min", t, None, False, nan_wins=True),
                    xp_of(x.array).argmin, x, dim, keepdim)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[i][j][k] = x[i][index[i][j][k]][k] (for dim=1); the gradient scatter-adds back."""
    d = normalize_dim("gather", dim, x.ndim)
    if builtins.max(index.ndim, 1) != builtins.max(x.ndim, 1):  # torch: a 0-d tensor counts as 1-d
        raise ValueError(f"gather: index has {index.ndim} dims but input has {x.ndim}")
    if index.array.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {index.dtype}")
    same_device("gather", x, index)
    with device_guard(x.array):
        # CuPy wraps an out-of-range index around silently where NumPy raises: check first
        size = x.shape[d]
        if index.array.size and bool(((index.array < 0) | (index.array >= size)).any()):
            bad = index.array[(index.array < 0) | (index.array >= size)].ravel()[:1]
            raise IndexError(
                f"gather: index {int(bad[0])} is out of bounds for dimension {d} with size {size}"
            )
        if index.ndim < x.ndim or x.ndim < index.ndim:  # one of them 0-d, the other 1-d
            return S.reshape(_gather(S.reshape(x, -1), 0, S.reshape(index, -1)), index.shape)
        return _gather(x, d, index)


def _gather(x: Tensor, d: int, index: Tensor) -> Tensor:
    xp = xp_of(x.array)
    grids = xp.ogrid[tuple(slice(0, s) for s in index.shape)] if index.ndim > 1 else [xp.arange(index.shape[0])]
    items = tuple(index.array if i == d else grids[i] for i in range(x.ndim))
    return S.Index.apply(x, items)


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x), dim)), stable: the max is subtracted first."""
    (x,) = promote("logsumexp", x, floating=True)
    dims = _reduced_dims("logsumexp", dim, x.ndim) or tuple(range(x.ndim))
    xp = xp_of(x.array)
    with device_guard(x.array):
        shift = Tensor._make(replay.op(_finite_max, x.array, dims, _keep_shape(x.shape, dims)))
    out = E.log(sum(E.exp(x - shift), dims, keepdim=True)) + shift
    return out if keepdim else S.reshape(out, [s for i, s in enumerate(x.shape) if i not in dims])


def _finite_max(array, dims, shape):
    """The max over dims where finite, else 0: logsumexp's shift (no gradient through it)."""
    xp = xp_of(array)
    shift = array.max(axis=dims, keepdims=True) if array.size else xp.zeros(shape, array.dtype)
    return xp.where(xp.isfinite(shift), shift, 0)


def _all(array, dim, keepdim):
    return array.astype(bool).all(axis=dim, keepdims=keepdim)


def _any(array, dim, keepdim):
    return array.astype(bool).any(axis=dim, keepdims=keepdim)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    with device_guard(x.array):
        return Tensor._result(replay.op(_all, x.array, dim, keepdim))


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    with device_guard(x.array):
        return Tensor._result(replay.op(_any, x.array, dim, keepdim))


# ---- scans and norms ---------------------------------------------------------------------------
class Cumsum(ArrayFunction):
    """Running sum along dim; the gradient is the running sum of g taken from the other end."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return xp_of(x).cumsum(x, axis=dim) + 0.0  # as torch's sum from +0: -0.0 + 0 is +0.0

    @staticmethod
    def backward(ctx, g):
        return S.flip(Cumsum.apply(S.flip(g, ctx.dim), ctx.dim), ctx.dim), None

    @staticmethod
    def jvp(ctx, t, _dim):
        return Cumsum.apply(t, ctx.dim)


def cumsum(x: Tensor, dim: int, dtype=None) -> Tensor:
    """out[i] = x[0] + ... + x[i] along dim (integers and bools accumulate in int64)."""
    if dtype is not None:
        x = x.to(dtypes.as_dtype(dtype))
    elif x.array.dtype.kind in "biu":
        x = S.cast(x, dtypes.int64)
    d = normalize_dim("cumsum", dim, x.ndim)
    if x.ndim == 0:
        return x + 0
    if x.array.dtype.kind != "f":
        with device_guard(x.array):
            return Tensor._result(x.array.cumsum(axis=d))
    return Cumsum.apply(x, d)


class VectorNorm(ArrayFunction):
    """The p-norm over dims (kept as size 1) for p = 2, +-inf or any p other than 0 and 1, with
    torch's rules: the gradient (and tangent) is 0 where the norm is 0; the inf-norm's ties share
    it evenly, NaN entries counting as maxima. Backward is written in ops, so it is
    differentiable too (the saved norm is this node's output, so grad of grad sees it vary)."""

    @staticmethod
    def forward(ctx, x, p, dims):
        xp = xp_of(x)
        a = xp.abs(x)
        if p == 2:
            y = xp.sqrt((x * x).sum(axis=dims, keepdims=True))
        elif p == float("inf"):
            y = a.max(axis=dims, keepdims=True)
        elif p == float("-inf"):
            y = a.min(axis=dims, keepdims=True)
        else:
            y = (a**p).sum(axis=dims, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(x, y)
        ctx.p, ctx.dims = p, dims
        return y

    @staticmethod
    def _extreme_share(ctx, x, n):
        """Where |x| is the max (or min), NaN included, 1 / (their count); else 0."""
        a = E.abs(x)
        mask = ((a == n) | (E.isnan(a) & E.isnan(n))).to(x.dtype)
        return mask / sum(mask, ctx.dims, keepdim=True)

    @staticmethod
    def backward(ctx, g):
        with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is masked away, as torch's
            return VectorNorm._backward(ctx, g)

    @staticmethod
    def _backward(ctx, g):
        x, n = ctx.saved_tensors
        p = ctx.p
        if p == 2:
            return g * E.where(n == 0, 0.0, x / n), None, None
        if p in (float("inf"), float("-inf")):
            return E.sign(x) * g * VectorNorm._extreme_share(ctx, x, n), None, None
        if p < 1:
            scaled = E.sign(x) * E.where(x == 0, 0.0, E.abs(x) ** (p - 1))
            return scaled * g * n ** (1 - p), None, None
        scaled = E.sign(x) * E.abs(x) ** (p - 1) if p < 2 else x * E.abs(x) ** (p - 2)
        return scaled * E.where(n == 0, 0.0, g / n ** (p - 1)), None, None

    @staticmethod
    def jvp(ctx, t, _p, _dims):
        with np.errstate(divide="ignore", invalid="ignore"):
            return VectorNorm._jvp(ctx, t)

    @staticmethod
    def _jvp(ctx, t):
        x, n = ctx.saved_tensors
        p, dims = ctx.p, ctx.dims
        if p == 2:
            out = E.where(n == 0, 0.0, sum(x * t, dims, keepdim=True) / n)
        elif p in (float("inf"), float("-inf")):
            out = sum(E.sign(x) * t * VectorNorm._extreme_share(ctx, x, n), dims, keepdim=True)
        elif p < 1:
            scaled = E.sign(x) * E.where(x == 0, 0.0, E.abs(x) ** (p - 1))
            out = sum(scaled * t, dims, keepdim=True) * n ** (1 - p)
        else:
            summed = sum(E.abs(x) ** (p - 2) * x * t, dims, keepdim=True)
            out = E.where(n == 0, 0.0, summed / n ** (p - 1))
        return out


def norm(x: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over dim (all elements by default): p = 'fro' / 2, 1, inf, -inf, 0 or any
    number, with torch's gradients (0 where the norm is 0)."""
    dims = _reduced_dims("norm", dim, x.ndim)  # the argument types first, as torch
    if dtype is not None:
        x = x.to(dtypes.as_dtype(dtype))
    if x.array.dtype.kind != "f":
        raise RuntimeError(f"norm: Expected a floating point tensor as input. Got {x.dtype}")
    if p is None or p == "fro":
        p = 2
    if isinstance(p, (str, bool)) or not isinstance(p, (int, float)):
        raise ValueError(f"norm: p must be a number, 'fro' or None, got {p!r}")
    if p in (float("inf"), float("-inf")):
        _check_reducible("norm", x, dims)  # the max / min of nothing
    if p == 1:
        return sum(E.abs(x), dims, keepdim)
    if p == 0:
        return sum((x != 0).to(x.dtype), dims, keepdim)
    dims = dims if dims is not None else tuple(range(x.ndim))
    out = VectorNorm.apply(x, float(p), dims)
    return out if keepdim else S.reshape(out, [s for i, s in enumerate(x.shape) if i not in dims])
