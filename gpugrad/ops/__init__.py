"""All ops, one family per file; this module also gives Tensor its operators and methods."""
from __future__ import annotations

from gpugrad import backend as _backend
from gpugrad import replay
from gpugrad.autograd import mode
from gpugrad.ops import activation, elementwise, linalg, loss, reduce, shape
from gpugrad.ops import normalization, sorting, sparse  # noqa: F401  (op families of issue 14)
from gpugrad.ops.activation import gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus, tanh
from gpugrad.ops.elementwise import (
    abs, add, clamp, clip, cos, div, eq, erf, exp, ge, gt, isfinite, isinf, isnan, le, log, log1p,
    logical_and, logical_not, logical_or, lt, maximum, minimum, mul, ne, neg, pow, rsqrt, sign, sin,
    sqrt, square, sub, where,
)
from gpugrad.ops.linalg import linear, matmul, mm
from gpugrad.ops.reduce import (
    all, amax, amin, any, argmax, argmin, gather, logsumexp, max, mean, min, std, sum, var,
)
from gpugrad.ops.shape import (
    broadcast_to, cat, expand, expand_as, flatten, getitem, index_put, permute, reshape, squeeze,
    stack, t, transpose, unsqueeze, view,
)
from gpugrad.ops.linalg import addmm, bmm, dot, einsum, mv, outer
from gpugrad.ops.reduce import cumsum, norm
from gpugrad.ops.shape import (
    argwhere, chunk, diag, flip, index_select, masked_fill, narrow, nonzero, reshape_as, roll, split,
    tile, tril, triu, unbind, unflatten, view_as,
)
from gpugrad.ops.sorting import argsort, msort, sort, topk
from gpugrad.tensor import Tensor

__all__ = [name for name in dir() if not name.startswith("_")]


def _rev(fn):
    return lambda self, other: fn(other, self)


def _inplace(name, fn):
    """x.op_(...): writes the result into x's own buffer and bumps its version."""

    def method(self, *args, **kwargs):
        shape.check_writable(name, self)
        if mode.state.grad_enabled and self.requires_grad and self.grad_fn is None:
            raise RuntimeError(
                f"a leaf Variable that requires grad is being used in an in-place operation ({name}); "
                "wrap it in gg.no_grad() (as optimizers do) or use the out-of-place op"
            )
        operand = self
        if mode.state.grad_enabled and self.requires_grad:
            # the op may save its input for backward: give it a snapshot, not the buffer we overwrite
            with _backend.device_guard(self.array):
                snapshot = replay.op(_copy_array, self.array)
            operand = Tensor._make(snapshot, True, self.grad_fn, self._output_nr)
            operand._tangent = self._tangent
        result = fn(operand, *args, **kwargs)
        records = mode.state.grad_enabled and result.requires_grad
        if records and self._base is not None and self._base.requires_grad:
            raise RuntimeError(
                f"{name}: in-place operation on a view of a tensor that requires grad is not "
                "supported; use the out-of-place op"
            )
        if result.array.dtype != self.array.dtype:
            if result.array.dtype.kind == "f" and self.array.dtype.kind != "f":
                raise RuntimeError(
                    f"{name}: result type {result.dtype} can't be cast to the desired output type {self.dtype}"
                )
        if tuple(result.shape) != tuple(self.shape):
            raise RuntimeError(
                f"{name}: output with shape {tuple(self.shape)} doesn't match the broadcast shape {tuple(result.shape)}"
            )
        with _backend.device_guard(self.array):
            replay.op(_assign, self.array, result.array)
        self._bump_version()
        if records:
            self.grad_fn, self._output_nr, self.requires_grad = result.grad_fn, result._output_nr, True
        if result._tangent is not None:
            from gpugrad.autograd import forward_ad

            forward_ad.attach_tangent(self, result._tangent)
        return self

    method.__name__ = name
    return method


def _setitem(self, index, value):
    """x[index] = value, recorded as IndexPut when grad is on."""
    def put(x, value):
        return index_put(x, index, value)

    _inplace("__setitem__", put)(self, value)


def _copy_array(array):
    return array.copy()


def _assign(dst, src):
    """dst[...] = src: every in-place write into a tensor's buffer goes through here, a capture
    op (a captured step writes again at each replay)."""
    dst[...] = src


def _fill(self, value, name="fill_"):
    shape.check_writable(name, self)
    with mode.no_grad(), _backend.device_guard(self.array):
        replay.op(_assign, self.array, value)
    self._bump_version()
    return self


def _sample(draw, dst, device):
    """dst[...] = fresh samples from the global generator, drawn again at every replay."""
    from gpugrad import creation

    dst[...] = _backend.to_device(draw(creation.generator(), dst.shape).astype(dst.dtype), device)


def _normal(self, mean=0.0, std=1.0):
    shape.check_writable("normal_", self)  # before the generator moves on
    with _backend.device_guard(self.array):
        replay.op(_sample, lambda g, shape: g.normal(mean, std, size=shape), self.array, self.device)
    self._bump_version()
    return self


def _uniform(self, a=0.0, b=1.0):
    shape.check_writable("uniform_", self)
    with _backend.device_guard(self.array):
        replay.op(_sample, lambda g, shape: g.uniform(a, b, size=shape), self.array, self.device)
    self._bump_version()
    return self


def _copy(self, src):
    shape.check_writable("copy_", self)
    src_array = src.array if isinstance(src, Tensor) else src
    if not isinstance(src_array, (int, float)):
        src_array = _backend.to_device(src_array, self.device)
    with _backend.device_guard(self.array):
        replay.op(_assign, self.array, src_array)
    self._bump_version()
    return self


def _max_method(self, dim=None, keepdim=False):
    return reduce.max(self, dim, keepdim)


def _min_method(self, dim=None, keepdim=False):
    return reduce.min(self, dim, keepdim)


_METHODS = {
    "__add__": add, "__radd__": _rev(add), "__sub__": sub, "__rsub__": _rev(sub),
    "__mul__": mul, "__rmul__": _rev(mul), "__truediv__": div, "__rtruediv__": _rev(div),
    "__pow__": pow, "__rpow__": _rev(pow), "__matmul__": matmul, "__rmatmul__": _rev(matmul),
    "__neg__": neg, "__abs__": abs, "__getitem__": getitem, "__setitem__": _setitem,
    "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "__invert__": logical_not, "__and__": logical_and, "__or__": logical_or,
    "__iadd__": _inplace("add_", add), "__isub__": _inplace("sub_", sub),
    "__imul__": _inplace("mul_", mul), "__itruediv__": _inplace("div_", div),
    "add_": _inplace("add_", add), "sub_": _inplace("sub_", sub), "mul_": _inplace("mul_", mul),
    "div_": _inplace("div_", div), "clamp_": _inplace("clamp_", clamp), "pow_": _inplace("pow_", pow),
    "relu_": _inplace("relu_", relu), "sigmoid_": _inplace("sigmoid_", sigmoid), "tanh_": _inplace("tanh_", tanh),
    "exp_": _inplace("exp_", exp), "neg_": _inplace("neg_", neg),
    "zero_": lambda self: _fill(self, 0, "zero_"), "fill_": _fill, "normal_": _normal, "uniform_": _uniform,
    "copy_": _copy,
    "add": add, "sub": sub, "mul": mul, "div": div, "neg": neg, "pow": pow, "exp": exp, "log": log,
    "log1p": log1p, "sqrt": sqrt, "rsqrt": rsqrt, "abs": abs, "sin": sin, "cos": cos, "tanh": tanh,
    "sigmoid": sigmoid, "relu": relu, "erf": erf, "sign": sign, "square": square,
    "maximum": maximum, "minimum": minimum, "clamp": clamp, "clip": clamp,
    "sum": sum, "mean": mean, "max": _max_method, "min": _min_method, "amax": amax, "amin": amin,
    "argmax": argmax, "argmin": argmin, "logsumexp": logsumexp, "var": var, "std": std,
    "all": all, "any": any, "gather": gather, "softmax": softmax, "log_softmax": log_softmax,
    "reshape": reshape, "view": view, "transpose": transpose, "permute": permute, "t": t,
    "unsqueeze": unsqueeze, "squeeze": squeeze, "expand": expand, "expand_as": expand_as,
    "flatten": flatten, "matmul": matmul, "mm": mm,
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "isfinite": isfinite, "isnan": isnan, "isinf": isinf,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(lambda self: permute(self, *reversed(range(self.ndim))))
Tensor.mT = property(lambda self: transpose(self, -2, -1))
Tensor.contiguous = lambda self: self
Tensor.clone = lambda self: self + 0 if self.array.dtype.kind == "f" else Tensor._make(self.array.copy())


# ---- the rest of the Tensor surface a PyTorch script uses ---------------------------------------
def _new(fill):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        from gpugrad import creation

        return creation.full(
            creation._size(size), fill, dtype=dtype or self.dtype, device=device or self.device,
            requires_grad=requires_grad,
        )

    return method


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    from gpugrad import creation

    return creation.full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                         requires_grad=requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from gpugrad import creation

    if isinstance(data, Tensor):
        data = data.detach()
    return creation.tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                           requires_grad=requires_grad)


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def _type(self, dtype=None, non_blocking=False):
    """type(): torch's type string ('torch.FloatTensor'); type(dtype): a copy in that dtype."""
    if dtype is None:
        return ("torch.cuda." if self.is_cuda else "torch.") + _TYPE_NAMES[self.dtype.name]
    if isinstance(dtype, str):
        by_name = {name: key for key, name in _TYPE_NAMES.items()}
        short = dtype.rsplit(".", 1)[-1]
        if short not in by_name:
            raise ValueError(f"type: invalid type {dtype!r}")
        from gpugrad import dtypes

        dtype = dtypes.from_name(by_name[short])
    return self.to(dtype)


def _addmm_method(self, mat1, mat2, *, beta=1, alpha=1):
    return addmm(self, mat1, mat2, beta=beta, alpha=alpha)


_MORE_METHODS = {
    "view_as": view_as, "reshape_as": reshape_as, "type": _type,
    "new_zeros": _new(0), "new_ones": _new(1), "new_empty": _new(0), "new_full": _new_full,
    "new_tensor": _new_tensor,
    "masked_fill": masked_fill, "masked_fill_": _inplace("masked_fill_", masked_fill),
    "tril": tril, "triu": triu, "tril_": _inplace("tril_", tril), "triu_": _inplace("triu_", triu),
    "addmm": _addmm_method, "bmm": bmm, "dot": dot, "mv": mv, "outer": outer, "diag": diag,
    "topk": topk, "sort": sort, "argsort": argsort, "msort": msort, "cumsum": cumsum, "norm": norm,
    "nonzero": nonzero, "argwhere": argwhere, "split": split, "chunk": chunk, "unbind": unbind,
    "narrow": narrow, "index_select": index_select, "repeat": shape.repeat, "tile": tile,
    "flip": flip, "roll": roll, "unflatten": unflatten,
}
for _name, _fn in _MORE_METHODS.items():
    setattr(Tensor, _name, _fn)
