"""Shape ops: reshape, permute, expand / sum_to (each the other's gradient), cat, indexing,
dtype and device copies. They are linear, so jvp applies the op itself to the tangent."""
from __future__ import annotations

import math

import numpy as np

from gpugrad import backend, dtypes, replay
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import kernels
from gpugrad.ops._operands import check_ints, normalize_dim, normalize_dims, same_device
from gpugrad.tensor import Tensor


def expandable(shape: tuple, target: tuple) -> bool:
    """True when an array of `shape` broadcasts to `target`."""
    if len(shape) > len(target):
        return False
    for s, t in zip(reversed(shape), reversed(target)):
        if s != t and s != 1:
            return False
    return True


class Reshape(ArrayFunction):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape, ctx.shape = x.shape, shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _shape):
        return reshape(t, ctx.shape)


class Permute(ArrayFunction):
    is_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return permute(g, tuple(int(i) for i in np.argsort(ctx.dims))), None

    @staticmethod
    def jvp(ctx, t, _dims):
        return permute(t, ctx.dims)


class Expand(ArrayFunction):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape, ctx.shape = x.shape, shape
        return backend.xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _shape):
        return expand(t, *ctx.shape)


class SumTo(ArrayFunction):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape, ctx.shape = x.shape, shape
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1
        )
        out = x.sum(axis=axes, keepdims=True) if axes else x
        return out.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return expand(g, *ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _shape):
        return sum_to(t, ctx.shape)


class Cat(ArrayFunction):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim, ctx.sizes = dim, [x.shape[dim] for x in xs]
        return backend.xp_of(xs[0]).concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        pieces, start = [], 0
        for size in ctx.sizes:
            index = [slice(None)] * g.ndim
            index[ctx.dim] = slice(start, start + size)
            pieces.append(g[tuple(index)])
            start += size
        return (None, *pieces)

    @staticmethod
    def jvp(ctx, _dim, *ts):
        return cat(ts, ctx.dim)


class Index(ArrayFunction):
    """x[index]; the gradient scatters back with addition (repeated indices accumulate)."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.index, ctx.input_shape = index, x.shape
        return x[index]

    @staticmethod
    def backward(ctx, g):
        return IndexBackward.apply(g, ctx.index, ctx.input_shape), None

    @staticmethod
    def jvp(ctx, t, _index):
        return Index.apply(t, ctx.index)


class BasicIndex(Index):
    """x[ints, slices, None, ...]: a view, and each element is picked at most once."""

    is_view = True


class IndexBackward(ArrayFunction):
    @staticmethod
    def forward(ctx, g, index, shape):
        ctx.index, ctx.shape = index, shape
        out = backend.xp_of(g).zeros(shape, dtype=g.dtype)
        kernels.scatter_add(out, index, g)
        return out

    @staticmethod
    def backward(ctx, gg):
        return Index.apply(gg, ctx.index), None, None

    @staticmethod
    def jvp(ctx, t, _index, _shape):
        return IndexBackward.apply(t, ctx.index, ctx.shape)


class IndexPut(ArrayFunction):
    """A copy of x with x[index] = value (what `x[index] = value` records)."""

    @staticmethod
    def forward(ctx, x, index, value):
        ctx.index, ctx.value_shape = index, value.shape
        out = x.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, g):
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            grad_x = IndexPut.apply(g, ctx.index, _zeros_scalar(g))
        if ctx.needs_input_grad[2]:
            grad_value = sum_to(Index.apply(g, ctx.index), ctx.value_shape)
        return grad_x, None, grad_value

    @staticmethod
    def jvp(ctx, tx, _index, tv):
        return IndexPut.apply(tx, ctx.index, tv)


def _zeros_scalar(like: Tensor) -> Tensor:
    return Tensor._make(replay.op(backend.xp_of(like.array).zeros, (), like.array.dtype))


class Cast(ArrayFunction):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype, ctx.dtype = dtypes.from_numpy(x.dtype), dtype
        return x.astype(dtype.np)

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.input_dtype), None

    @staticmethod
    def jvp(ctx, t, _dtype):
        return cast(t, ctx.dtype)


class ToDevice(ArrayFunction):
    @staticmethod
    def forward(ctx, x, device):
        ctx.input_device, ctx.device = backend.device_of(x), device
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return to_device(g, ctx.input_device), None

    @staticmethod
    def jvp(ctx, t, _device):
        return to_device(t, ctx.device)


# ---- public wrappers ------------------------------------------------------------------
def check_writable(name: str, x: Tensor) -> None:
    """RuntimeError before an in-place write into x that can't be done element by element:
    an expand()ed tensor's elements share memory (torch refuses it too) and a read-only NumPy
    array can't be written at all."""
    array = x.array
    if array.size > 1 and any(st == 0 and n > 1 for st, n in zip(array.strides, array.shape)):
        raise RuntimeError(
            f"{name}: more than one element of the written-to tensor refers to the same memory "
            f"(an expand()ed or broadcast tensor of shape {tuple(x.shape)}); clone() it first"
        )
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        raise RuntimeError(
            f"{name}: the tensor's memory is read-only (a view of an expand()ed tensor, or a "
            "NumPy array that is not writeable); clone() it first"
        )


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (one dimension may be -1)."""
    return _reshape("reshape", x, _shape_arg(shape))


def _reshape(name: str, x: Tensor, shape: tuple) -> Tensor:
    if shape == x.array.shape:
        return x
    if min(shape, default=0) < 0 or math.prod(shape) != x.array.size:  # else plainly valid
        try:
            if any(s < -1 for s in shape) or shape.count(-1) > 1:  # NumPy takes any s < 0 for -1
                raise ValueError
            np.empty(x.array.shape, dtype=np.bool_).reshape(shape)  # validate, data untouched
        except ValueError:
            raise RuntimeError(
                f"{name}: shape {list(shape)} is invalid for input of size {x.array.size} "
                f"(shape {tuple(x.shape)})"
            ) from None
    return Reshape.apply(x, shape)


def view(x: Tensor, *shape) -> Tensor:
    """Alias of reshape."""
    return _reshape("view", x, _shape_arg(shape))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    check_ints("flatten", start_dim, end_dim)
    start, end = (normalize_dim("flatten", d, x.ndim) for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    if x.ndim == 0:
        return reshape(x, 1)
    shape = x.shape[:start] + (int(np.prod(x.shape[start : end + 1])),) + x.shape[end + 1 :]
    return reshape(x, shape)


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder dimensions."""
    dims = _shape_arg(dims)
    if len(dims) != x.ndim:
        raise ValueError(f"permute: {dims} names {len(dims)} dimensions, the tensor of shape {tuple(x.shape)} has {x.ndim}")
    order = tuple(normalize_dim("permute", d, x.ndim) for d in dims)
    if len(set(order)) != len(order):
        raise ValueError(f"permute: {dims} repeats a dimension")
    return Permute.apply(x, order)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    check_ints("transpose", dim0, dim1)
    if x.ndim < 2:  # nothing to swap, once the dims are in range
        normalize_dim("transpose", dim0, x.ndim), normalize_dim("transpose", dim1, x.ndim)
        return x
    dims = list(range(x.ndim))
    a, b = normalize_dim("transpose", dim0, x.ndim), normalize_dim("transpose", dim1, x.ndim)
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, tuple(dims))


def t(x: Tensor) -> Tensor:
    """Transpose of a matrix (<= 2-D)."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {tuple(x.shape)}")
    return x if x.ndim < 2 else transpose(x, 0, 1)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at dim."""
    check_ints("unsqueeze", dim)
    if not -x.ndim - 1 <= dim <= x.ndim:
        raise IndexError(f"unsqueeze: dimension {dim} out of range for {x.ndim}-d tensor")
    dim = dim % (x.ndim + 1)
    return Reshape.apply(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove size-1 dimensions (all, or the given ones)."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = normalize_dims("squeeze", dim, x.ndim)
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return x if shape == x.shape else Reshape.apply(x, shape)


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast to a larger shape without copying (-1 keeps a dimension)."""
    sizes = _shape_arg(sizes)
    if sizes == x.array.shape:  # already that shape (sum's backward, mostly): skip the checks
        return x
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {sizes}")
    if any(s < -1 or (s == -1 and i < lead) for i, s in enumerate(sizes)):
        raise ValueError(
            f"expand: sizes {sizes} must be >= 0, or -1 to keep one of the {x.ndim} existing dims"
        )
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    if not expandable(x.shape, shape):
        raise ValueError(f"expand: shape {tuple(x.shape)} cannot be expanded to {shape}")
    return x if shape == x.shape else Expand.apply(x, shape)


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return expand(x, *other.shape)


def broadcast_to(x: Tensor, shape) -> Tensor:
    return expand(x, *shape)


def sum_to(x: Tensor, shape) -> Tensor:
    """Sum a broadcast tensor back down to `shape` (the gradient of expand)."""
    shape = tuple(shape)
    return x if x.shape == shape else SumTo.apply(x, shape)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    from gpugrad.ops._operands import promote

    check_ints("cat", dim)
    for i, t in enumerate(tensors):
        if isinstance(t, Tensor) and t.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be concatenated")
    tensors = promote("cat", *tensors, broadcast=False) if len(tensors) > 1 else tensors
    ref = tensors[0]
    d = normalize_dim("cat", dim, ref.ndim)
    for i, other in enumerate(tensors[1:], 1):
        if other.ndim != ref.ndim or any(
            a != b for k, (a, b) in enumerate(zip(ref.shape, other.shape)) if k != d
        ):
            raise ValueError(
                f"cat: tensor {i} has shape {tuple(other.shape)}, which does not match "
                f"{tuple(ref.shape)} outside dimension {d}"
            )
    return Cat.apply(d, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    dim = normalize_dim("stack", dim, tensors[0].ndim + 1)  # a new dim: one more place
    for i, other in enumerate(tensors[1:], 1):
        if other.shape != tensors[0].shape:
            raise ValueError(
                f"stack: tensor {i} has shape {tuple(other.shape)} but tensor 0 has {tuple(tensors[0].shape)}"
            )
    return cat([unsqueeze(x, dim) for x in tensors], dim)


def _index_array(x: Tensor, value):
    if isinstance(value, Tensor):
        if value.array.dtype.kind not in "biu":
            raise IndexError(f"tensors used as indices must be long or bool, got {value.dtype}")
        same_device("indexing", x, value)
        return value.array
    if isinstance(value, (list, np.ndarray)):
        array = np.asarray(value)
        if array.dtype.kind not in "biu":
            raise IndexError(f"index arrays must hold integers or bools, got {array.dtype}")
        return backend.to_device(array, x.device)
    return value


def _normalize_index(x: Tensor, index):
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(_index_array(x, item) for item in items)
    basic = all(
        item is None or item is Ellipsis or isinstance(item, (int, np.integer, slice))
        for item in items
    )
    return (items if isinstance(index, tuple) else items[0]), basic


def getitem(x: Tensor, index) -> Tensor:
    """x[index]: basic and integer/bool-array indexing, gradients scatter-added back."""
    index, basic = _normalize_index(x, index)
    _check_index(x, index, basic)
    return (BasicIndex if basic else Index).apply(x, index)


def _check_index(x: Tensor, index, basic: bool) -> tuple:
    """The shape x[index] has, or an IndexError for an index that does not fit x (checked on
    the host: CuPy would wrap an out-of-range integer around instead of raising)."""
    if not basic:
        _check_masks(x, index if isinstance(index, tuple) else (index,))
    try:  # indexes a zero-stride stand-in of x's shape: nothing of x's size is allocated
        return np.broadcast_to(np.False_, x.shape)[index if basic else _host_index(index)].shape
    except IndexError as exc:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {exc}") from None


def _check_masks(x: Tensor, items: tuple):
    """torch's rule, which NumPy skips for an empty mask: a bool array index has the shape of
    the dims it covers."""
    masks = [getattr(item, "dtype", None) == np.bool_ and item.ndim > 0 for item in items]
    widths = [item.ndim if mask else int(not (item is None or item is Ellipsis or isinstance(item, bool)))
              for item, mask in zip(items, masks)]
    dim = 0
    for k, (item, mask, width) in enumerate(zip(items, masks, widths)):
        if item is Ellipsis:
            dim = x.ndim - sum(widths[k + 1 :])
        if mask and tuple(item.shape) != tuple(x.shape[dim : dim + width]):
            raise IndexError(
                f"index: a mask of shape {tuple(item.shape)} does not match dims {dim}.. of the "
                f"indexed tensor of shape {tuple(x.shape)}"
            )
        dim += width


def _host_index(index):
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(backend.to_device(i, backend.Device("cpu")) if hasattr(i, "__cuda_array_interface__") else i for i in items)
    return items if isinstance(index, tuple) else items[0]


def index_put(x: Tensor, index, value) -> Tensor:
    """A copy of x with x[index] = value (differentiable in x and value)."""
    from gpugrad.ops._operands import as_tensor

    index, basic = _normalize_index(x, index)
    target = _check_index(x, index, basic)
    value = as_tensor(value, like=x)
    same_device("index_put", x, value)
    shape = tuple(value.shape)
    while shape and shape[0] == 1 and len(shape) > len(target):  # leading 1s broadcast away
        shape = shape[1:]
    if not expandable(shape, target):
        raise ValueError(
            f"index_put: a value of shape {tuple(value.shape)} can't be assigned to x[index] "
            f"of shape {target}"
        )
    value = reshape(value, shape)  # NumPy 2 refuses a (1,) array for one element
    if value.array.dtype != x.array.dtype:
        value = cast(value, x.dtype)
    return IndexPut.apply(x, index, value)


def _astype(array, dtype):
    return array.astype(dtype)


def cast(x: Tensor, dtype: dtypes.dtype) -> Tensor:
    """A copy of x with another dtype (differentiable between float dtypes)."""
    if dtype.np is None:
        dtypes._no_bfloat16()
    if x.array.dtype == dtype.np:
        return x
    if not dtype.is_floating_point:
        with backend.device_guard(x.array):
            return Tensor._make(replay.op(_astype, x.array, dtype.np))
    return Cast.apply(x, dtype)


def to_device(x: Tensor, device: backend.Device) -> Tensor:
    """A copy of x on another device (gradients flow back to x's device)."""
    if x.device == device:
        return x
    return ToDevice.apply(x, device)


# ---- views, pieces and rearrangements a PyTorch script reaches for ---------------------------
class Flip(ArrayFunction):
    """x reversed along dims (a copy, as torch.flip); its own inverse, so linear both ways."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return backend.xp_of(x).flip(x, axis=dims).copy()

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, ctx.dims), None

    @staticmethod
    def jvp(ctx, t, _dims):
        return Flip.apply(t, ctx.dims)


class Roll(ArrayFunction):
    """x shifted circularly by shifts along dims; the gradient rolls back by -shifts."""

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return backend.xp_of(x).roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, g):
        return Roll.apply(g, tuple(-s for s in ctx.shifts), ctx.dims), None, None

    @staticmethod
    def jvp(ctx, t, _shifts, _dims):
        return Roll.apply(t, ctx.shifts, ctx.dims)


def view_as(x: Tensor, other: Tensor) -> Tensor:
    """x viewed with other's shape."""
    return _reshape("view", x, tuple(other.shape))


def reshape_as(x: Tensor, other: Tensor) -> Tensor:
    """x reshaped to other's shape."""
    return _reshape("reshape", x, tuple(other.shape))


def _one_dim(name: str, x: Tensor, dim, at_least_1d: bool = False) -> int:
    check_ints(name, dim)
    if at_least_1d and x.ndim == 0:  # as torch, for the ops that cut a dimension
        raise ValueError(f"{name}: expects a tensor of at least 1 dimension, got a 0-d one")
    return normalize_dim(name, dim, x.ndim)


def _slice_along(x: Tensor, dim: int, start: int, stop: int) -> Tensor:
    index = [slice(None)] * x.ndim
    index[dim] = slice(start, stop)
    return getitem(x, tuple(index))


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of x along dim: split_size each (the last may be smaller), or the given sizes."""
    if not isinstance(split_size_or_sections, (int, np.integer, list, tuple)) or (
        isinstance(split_size_or_sections, (list, tuple))
        and not all(isinstance(s, (int, np.integer)) for s in split_size_or_sections)
    ):
        raise TypeError(
            f"split: split_size_or_sections must be an int or a list of ints, got "
            f"{split_size_or_sections!r}"
        )
    d = _one_dim("split", x, dim, at_least_1d=True)
    size = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size > 0):
            raise RuntimeError(
                f"split: split_size can only be 0 if dimension size is 0, got {step} for size {size}"
            )
        sizes = [min(step, size - start) for start in range(0, size, step)] if step else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                f"size at dimension {d}), but got split_sizes={sizes}"
            )
    pieces, start = [], 0
    for s in sizes:
        pieces.append(_slice_along(x, d, start, start + s))
        start += s
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Up to `chunks` pieces of equal size ceil(n / chunks) along dim (the last may be smaller)."""
    if not isinstance(chunks, (int, np.integer)):
        raise TypeError(f"chunk: chunks must be an int, got {chunks!r}")
    check_ints("chunk", dim)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _one_dim("chunk", x, dim, at_least_1d=True)
    size = x.shape[d]
    if not size:  # torch: `chunks` empty pieces
        return tuple(_slice_along(x, d, 0, 0) for _ in range(int(chunks)))
    return split(x, max(-(-size // int(chunks)), 1) if size else 0, d)


def unbind(x: Tensor, dim: int = 0) -> tuple:
    """The slices of x along dim, that dimension removed."""
    d = _one_dim("unbind", x, dim)
    if x.ndim == 0:
        raise IndexError(f"unbind: dimension {dim} specified, but the tensor has no dimensions")
    return tuple(squeeze(piece, d) for piece in split(x, 1, d)) if x.shape[d] else ()


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """x[..., start:start + length, ...] along dim (a view)."""
    check_ints("narrow", dim, start, length)
    d = _one_dim("narrow", x, dim, at_least_1d=True)
    start = start + x.shape[d] if start < 0 else start
    if not 0 <= start <= x.shape[d] or length < 0 or start + length > x.shape[d]:
        raise IndexError(
            f"narrow: start {start} + length {length} exceeds dimension {d} of size {x.shape[d]}"
        )
    return _slice_along(x, d, start, start + length)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of x at the 1-D integer `index` along dim; the gradient scatter-adds back."""
    d = _one_dim("index_select", x, dim)
    if not isinstance(index, Tensor) or index.array.dtype.kind not in "iu":
        raise TypeError("index_select: index must be a 1-D integer tensor")
    if index.ndim > 1:
        raise IndexError(f"index_select: index must be a vector, got shape {tuple(index.shape)}")
    size = x.shape[d] if x.ndim else 1
    if x.ndim == 0 and index.array.size != 1:
        raise ValueError(f"index_select: a 0-d tensor takes one index, got {index.array.size}")
    # checked here on the CPU, to name this op; on a GPU x[...] below checks it (on the host),
    # except for a 0-d x, which takes no x[...]
    array = np.asarray(index) if x.ndim == 0 else index.array
    if isinstance(array, np.ndarray) and array.size and ((array < 0) | (array >= size)).any():
        raise IndexError(f"index_select: index out of range for dimension {d} of size {size}")
    if x.ndim == 0:
        return x
    items = [slice(None)] * x.ndim
    items[d] = reshape(index, -1)
    return getitem(x, tuple(items))


def repeat(x: Tensor, *sizes) -> Tensor:
    """x tiled sizes[i] times along each dimension (len(sizes) >= x.ndim), as torch's repeat."""
    return _repeat("repeat", x, _shape_arg(sizes))


def _repeat(name: str, x: Tensor, sizes: tuple) -> Tensor:
    if len(sizes) < x.ndim:
        raise RuntimeError(
            f"{name}: Number of dimensions of repeat dims can not be smaller than number of "
            "dimensions of tensor"
        )
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    if any(r * s < 0 for r, s in zip(sizes, shape)):  # torch checks the result's sizes
        raise RuntimeError(f"{name}: repeats can not be negative, got {list(sizes)}")
    # (s0, s1, ...) -> (1, s0, 1, s1, ...) -> (r0, s0, r1, s1, ...) -> (r0 s0, r1 s1, ...)
    interleaved = tuple(v for s in shape for v in (1, s))
    expanded = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    out = expand(reshape(x, interleaved), *expanded)
    return reshape(out, tuple(r * s for r, s in zip(sizes, shape)))


def tile(x: Tensor, dims) -> Tensor:
    """x repeated dims[i] times along each dimension; missing leading dims count as 1."""
    dims = _shape_arg((dims,) if isinstance(dims, (int, np.integer)) else tuple(dims))
    return _repeat("tile", x, (1,) * (x.ndim - len(dims)) + dims)


def flip(x: Tensor, *dims) -> Tensor:
    """x reversed along the given dimensions (a copy)."""
    dims = normalize_dims("flip", _shape_arg(dims), x.ndim)
    return Flip.apply(x, dims) if dims else x


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """x shifted circularly; with dims None, over the flattened tensor (shape kept)."""
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else shifts
    if not isinstance(shifts, (tuple, list)) or not all(isinstance(s, (int, np.integer)) for s in shifts):
        raise TypeError(f"roll: shifts must be an int or a tuple of ints, got {shifts!r}")
    if not shifts:
        raise RuntimeError("roll: shifts required")
    shifts = tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(
                f"roll: with dims=None, shifts must be a single number, got {list(shifts)}"
            )
        return reshape(Roll.apply(reshape(x, -1), shifts, (0,)), x.shape)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(dims) != len(shifts):
        raise RuntimeError(
            f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims: {len(dims)}"
        )
    check_ints("roll", *dims)
    if x.ndim == 0:
        raise IndexError(f"roll: dims {dims} given, but the tensor has no dimensions")
    dims = tuple(normalize_dim("roll", d, x.ndim) for d in dims)
    return Roll.apply(x, shifts, dims)


def _triangle(name: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    _check_diagonal(name, diagonal)
    if x.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, diagonal if lower else diagonal - 1, dtype=bool)
    keep = keep if lower else ~keep
    xp = backend.xp_of(x.array)
    with backend.device_guard(x.array):
        mask = backend.to_device(keep, x.device)
        if x.array.dtype.kind != "f":
            return Tensor._make(xp.where(mask, x.array, x.array.dtype.type(0)))
    from gpugrad.ops.elementwise import where

    return where(Tensor._make(mask), x, 0.0)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below `diagonal`), the rest zero."""
    return _triangle("tril", x, diagonal, lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above `diagonal`), the rest zero."""
    return _triangle("triu", x, diagonal, lower=False)


def _check_diagonal(name: str, diagonal) -> None:
    if not isinstance(diagonal, (int, np.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"{name}: diagonal must be an int, got {diagonal!r}")


def _diagonal_positions(n_rows: int, n_cols: int, diagonal: int):
    start_row, start_col = max(-diagonal, 0), max(diagonal, 0)
    length = max(min(n_rows - start_row, n_cols - start_col), 0)
    return np.arange(length) + start_row, np.arange(length) + start_col


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """1-D x: a square matrix with x on the given diagonal; 2-D x: that diagonal as 1-D."""
    _check_diagonal("diag", diagonal)
    if x.ndim == 2:
        rows, cols = _diagonal_positions(*x.shape, diagonal)
        return getitem(x, (rows, cols))
    if x.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")
    n = x.shape[0] + abs(diagonal)
    with backend.device_guard(x.array):
        zeros = Tensor._make(backend.xp_of(x.array).zeros((n, n), dtype=x.array.dtype))
    return index_put(zeros, _diagonal_positions(n, n, diagonal), x)


def masked_fill(x: Tensor, mask: Tensor, value) -> Tensor:
    """x with value (a number or a 0-d tensor) where the bool mask is True (broadcasting)."""
    if not isinstance(value, (Tensor, bool, int, float, np.number, np.bool_)):
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {value!r}")
    if not isinstance(mask, Tensor) or mask.array.dtype != np.bool_:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(
            f"masked_fill_ only supports boolean masks, but got mask with dtype {got}"
        )
    same_device("masked_fill", x, mask)
    try:
        np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    except ValueError:
        raise ValueError(
            f"masked_fill: a mask of shape {tuple(mask.shape)} does not broadcast with the tensor's "
            f"shape {tuple(x.shape)}"
        ) from None
    from gpugrad.ops._operands import constant
    from gpugrad.ops.elementwise import where

    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.ndim} dimension(s)."
            )
        same_device("masked_fill", x, value)
        value = cast(value, x.dtype)
    else:
        value = constant(np.asarray(value).astype(x.array.dtype), x.dtype, x)
    if x.array.dtype.kind != "f":
        with backend.device_guard(x.array):
            return Tensor._result(backend.xp_of(x.array).where(mask.array, value.array, x.array))
    return where(mask, value, x)


def nonzero(x: Tensor, as_tuple: bool = False):
    """Indices of the non-zero entries: an (n, ndim) int64 tensor, or one 1-D tensor per dim."""
    with backend.device_guard(x.array):
        array = x.array if x.ndim else x.array.reshape(1)
        found = backend.xp_of(array).nonzero(array)
        if as_tuple:
            return tuple(Tensor._make(i.astype(np.int64)) for i in found)
        out = backend.xp_of(array).stack(found, axis=1).astype(np.int64)
        return Tensor._make(out if x.ndim else out[:, :0])


def argwhere(x: Tensor) -> Tensor:
    """nonzero(x) as an (n, ndim) tensor."""
    return nonzero(x)


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension dim into `sizes` (one entry may be -1)."""
    d = _one_dim("unflatten", x, dim)
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    known = int(np.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) > 1 or (-1 not in sizes and known != x.shape[d]) or (
        -1 in sizes and (known == 0 or x.shape[d] % known)
    ):
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
            f"({x.shape[d]}) in the input tensor"
        )
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1 :])
