"""A differential fuzz of errors: hypothesis draws shapes, dtypes and argument values, valid and
not, for every op of tests/opinfo.py, calls gpugrad and torch alike and asserts they agree on
whether the call fails, and when it succeeds on the result's shape, dtype and values. A
gpugrad error must be a ValueError / TypeError / IndexError / RuntimeError naming the op (torch
raises RuntimeError for most misuse: gpugrad may say ValueError / TypeError / IndexError there;
where torch raises one of those three, gpugrad raises the same). DIFFERENCES lists where
gpugrad differs on purpose, each with its reason. Bounded and derandomized, so CI runs the
same cases every time."""

from __future__ import annotations

import collections
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import gpugrad as gg
from tests.opinfo import OPS

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    derandomize=True,  # the same cases on every run: CI is reproducible
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
DTYPES = ("float32", "float32", "float64", "int64", "bool")
FLOATS = ("float32", "float64")


@dataclass
class Call:
    """One drawn call: fn(m, *tensors) runs it with m = gpugrad or torch."""

    op: str  # the name gpugrad's error must mention
    fn: Callable
    arrays: list
    args: dict = field(default_factory=dict)  # what was drawn, for messages and DIFFERENCES

    def __repr__(self):
        shown = [f"{a.dtype}{list(a.shape)}" for a in self.arrays]
        return f"{self.op}({', '.join(shown)}; {self.args})"


# ---- drawing ---------------------------------------------------------------------------------
def shape(draw, min_dims=0, max_dims=3) -> tuple:
    return tuple(
        draw(st.lists(st.sampled_from((1, 2, 3, 4, 0)), min_size=min_dims, max_size=max_dims))
    )


def related_shape(draw, base: tuple) -> tuple:
    """Broadcastable to base (usually) or anything (an error to provoke)."""
    how = draw(st.sampled_from(("same", "broadcast", "broadcast", "any")))
    if how == "same":
        return base
    if how == "any":
        return shape(draw)
    kept = base[draw(st.integers(0, len(base))) :]
    out = tuple(1 if draw(st.booleans()) else s for s in kept)
    return (1,) * draw(st.integers(0, 1)) + out


def array(draw, shp, dtype=None, low=None, high=None) -> np.ndarray:
    dtype = dtype or draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "bool":
        return np.asarray(rng.random(shp) < 0.5)
    if dtype in ("int64", "int32", "uint8"):
        lo = -3 if low is None else low
        if dtype == "uint8":  # no wrap-around to 255: torch's message for it is mangled bytes
            lo = max(lo, 0)
        return np.asarray(rng.integers(lo, 6 if high is None else high, shp), dtype)
    values = np.asarray(rng.standard_normal(shp) * 2)
    if low is not None:
        values = np.asarray(rng.uniform(low, high, shp))
    if draw(st.integers(0, 3)) == 0 and values.size:  # sometimes: 0, -0.0, +-inf, NaN
        specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0])
        mask = rng.random(shp) < 0.3
        values = np.where(mask, rng.choice(specials, shp), values)
    return values.astype(dtype)


def dim_arg(draw, ndim: int):
    """A dim: mostly in range, sometimes out of it, now and then not an int at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from((1.0, "0", None)))
    return draw(st.integers(-ndim - 1, max(ndim, 1)))


def dims_arg(draw, ndim: int):
    kind = draw(st.sampled_from(("none", "int", "int", "tuple")))
    if kind == "none":
        return None
    if kind == "int":
        return dim_arg(draw, ndim)
    return tuple(draw(st.lists(st.integers(-ndim - 1, max(ndim, 1)), max_size=3)))


def scalar(draw):
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(("2", None, [1.0])))  # not a number
    return draw(st.sampled_from((2, -1, 0, 2.5, -0.5, True, float("inf"))))


# ---- the ops ---------------------------------------------------------------------------------
F = "nn.functional."


def _attr(m, path: str):
    for part in path.split("."):
        m = getattr(m, part)
    return m


BINARY = {
    "add": ("add", "add_scalar", "add_alpha"),
    "sub": ("sub", "rsub_scalar"),
    "mul": ("mul", "mul_broadcast"),
    "div": ("div", "rdiv_scalar"),
    "pow": ("pow_scalar", "pow_frac", "pow_tensor", "rpow"),
    "maximum": ("maximum",),
    "minimum": ("minimum",),
}


def binary(draw) -> Call:
    op = draw(st.sampled_from(sorted(BINARY) + ["where"]))
    a = array(draw, shape(draw))
    if op == "where":
        cond = array(draw, related_shape(draw, a.shape), "bool" if not odd(draw) else None)
        if odd(draw):
            s = scalar(draw)
            return Call(op, lambda m, c, x: m.where(c, x, s), [cond, a], {"other": s})
        b = array(draw, related_shape(draw, a.shape))
        return Call(op, lambda m, c, x, y: m.where(c, x, y), [cond, a, b])
    form = draw(st.sampled_from(("tensors", "tensors", "scalar", "rscalar", "alpha")))
    if form == "tensors" or op in ("maximum", "minimum"):
        b = array(draw, related_shape(draw, a.shape))
        return Call(op, lambda m, x, y: getattr(m, op)(x, y), [a, b])
    if form == "alpha" and op in ("add", "sub"):
        b = array(draw, related_shape(draw, a.shape))
        alpha = scalar(draw)
        return Call(op, lambda m, x, y: getattr(m, op)(x, y, alpha=alpha), [a, b], {"alpha": alpha})
    s = scalar(draw)
    if not isinstance(s, (int, float)):  # as an operator, tensor * "2" is str repetition
        return Call(op, lambda m, x: getattr(m, op)(x, s), [a], {"scalar": s})
    apply = {
        "add": operator.add,
        "sub": operator.sub,
        "mul": operator.mul,
        "div": operator.truediv,
        "pow": operator.pow,
    }[op]
    if form == "rscalar":
        return Call(op, lambda m, x: apply(s, x), [a], {"scalar": s, "reflected": True})
    return Call(op, lambda m, x: apply(x, s), [a], {"scalar": s})


UNARY = {  # opinfo name -> (op, call path on m, extra keyword arguments to draw)
    "neg": ("neg", "neg"),
    "exp": ("exp", "exp"),
    "log": ("log", "log"),
    "log1p": ("log1p", "log1p"),
    "sqrt": ("sqrt", "sqrt"),
    "abs": ("abs", "abs"),
    "sin": ("sin", "sin"),
    "cos": ("cos", "cos"),
    "erf": ("erf", "erf"),
    "sigmoid": ("sigmoid", "sigmoid"),
    "tanh": ("tanh", "tanh"),
    "relu": ("relu", "relu"),
    "relu_squared": ("relu", "relu"),
    "silu": ("silu", F + "silu"),
    "leaky_relu": ("leaky_relu", F + "leaky_relu"),
    "gelu": ("gelu", F + "gelu"),
    "gelu_tanh": ("gelu", F + "gelu"),
    "softplus": ("softplus", F + "softplus"),
    "softplus_beta": ("softplus", F + "softplus"),
}


def unary(draw) -> Call:
    op, path = UNARY[draw(st.sampled_from(sorted(UNARY)))]
    x = array(draw, shape(draw))
    kwargs = {}
    if op == "leaky_relu" and draw(st.booleans()):
        kwargs["negative_slope"] = draw(st.sampled_from((0.1, -2.0, 0, "0.1")))
    if op == "gelu" and draw(st.booleans()):
        kwargs["approximate"] = draw(st.sampled_from(("tanh", "none", "exact")))
    if op == "softplus" and draw(st.booleans()):
        kwargs["beta"] = draw(st.sampled_from((2.0, 0.5, -1.0, None)))
        kwargs["threshold"] = draw(st.sampled_from((5.0, 20.0, 0.0)))
    return Call(op, lambda m, t: _attr(m, path)(t, **kwargs), [x], kwargs)


def clamp(draw) -> Call:
    x = array(draw, shape(draw))
    numbers, tensor_bounds, arrays = {}, [], [x]
    for name in ("min", "max"):
        kind = draw(st.sampled_from(("none", "number", "tensor")))
        if kind == "number":
            numbers[name] = draw(st.sampled_from((-0.5, 0.5, 1, float("nan"), "1")))
        elif kind == "tensor":
            arrays.append(array(draw, related_shape(draw, x.shape)))
            tensor_bounds.append(name)

    def fn(m, t, *bounds):
        return m.clamp(t, **numbers, **dict(zip(tensor_bounds, bounds)))

    return Call("clamp", fn, arrays, {**numbers, "tensor bounds": tensor_bounds})


def softmax(draw) -> Call:
    op = draw(st.sampled_from(("softmax", "log_softmax")))
    x = array(draw, shape(draw))
    dim = dim_arg(draw, x.ndim)
    return Call(op, lambda m, t: _attr(m, F + op)(t, dim=dim), [x], {"dim": dim})


REDUCTIONS = (
    "sum",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "logsumexp",
    "var",
    "std",
    "argmax",
    "argmin",
)


def reduction(draw) -> Call:
    op = draw(st.sampled_from(REDUCTIONS))
    x = array(draw, shape(draw))
    keepdim = draw(st.booleans())
    if op in ("max", "min", "argmax", "argmin"):
        dim = draw(st.one_of(st.none(), st.integers(-x.ndim - 1, max(x.ndim, 1))))
        if dim is None:
            return Call(op, lambda m, t: getattr(t, op)(), [x], {"dim": None})
        return Call(
            op,
            lambda m, t: getattr(t, op)(dim, keepdim=keepdim),
            [x],
            {"dim": dim, "keepdim": keepdim},
        )
    dim = dims_arg(draw, x.ndim)
    if op == "logsumexp" and dim is None:
        dim = draw(st.integers(-x.ndim - 1, max(x.ndim, 1)))
    kwargs = {"keepdim": keepdim}
    if op in ("var", "std") and draw(st.booleans()):
        kwargs["correction"] = draw(st.sampled_from((0, 1, 2)))
    args = {"dim": dim, **kwargs}
    return Call(op, lambda m, t: getattr(m, op)(t, dim=dim, **kwargs), [x], args)


def reshape_like(draw, size: int) -> tuple:
    if draw(st.booleans()) and size:
        sides = [s for s in (1, 2, 3, 4, 6) if size % s == 0]
        first = draw(st.sampled_from(sides))
        return draw(st.sampled_from(((first, -1), (-1, first), (size,), (first, size // first))))
    return tuple(draw(st.lists(st.sampled_from((-1, 0, 1, 2, 3, 4, -2)), min_size=1, max_size=3)))


def shape_op(draw) -> Call:
    op = draw(
        st.sampled_from(
            (
                "reshape",
                "view",
                "transpose",
                "permute",
                "T",
                "unsqueeze",
                "squeeze",
                "expand",
                "flatten",
                "cat",
                "stack",
            )
        )
    )
    x = array(draw, shape(draw))
    nd = x.ndim
    if op in ("reshape", "view"):
        new = reshape_like(draw, x.size)
        return Call(op, lambda m, t: getattr(t, op)(*new), [x], {"shape": new})
    if op == "transpose":
        d0, d1 = dim_arg(draw, nd), dim_arg(draw, nd)
        return Call(op, lambda m, t: t.transpose(d0, d1), [x], {"dims": (d0, d1)})
    if op == "permute":
        dims = (
            tuple(draw(st.permutations(range(nd))))
            if draw(st.booleans())
            else tuple(draw(st.lists(st.integers(-nd - 1, nd + 1), max_size=4)))
        )
        return Call(op, lambda m, t: t.permute(*dims), [x], {"dims": dims})
    if op == "T":
        return Call("permute", lambda m, t: t.T, [x])
    if op == "unsqueeze":
        d = draw(st.integers(-nd - 2, nd + 1))
        return Call(op, lambda m, t: t.unsqueeze(d), [x], {"dim": d})
    if op == "squeeze":
        d = dims_arg(draw, nd)
        return Call(op, lambda m, t: t.squeeze() if d is None else t.squeeze(d), [x], {"dim": d})
    if op == "expand":
        sizes = tuple(
            draw(st.lists(st.sampled_from((-1, 1, 2, 3, 4, 0, -2)), min_size=1, max_size=4))
        )
        if draw(st.booleans()):
            sizes = tuple(draw(st.sampled_from((s, -1, 3))) if s == 1 else s for s in x.shape)
        return Call(op, lambda m, t: t.expand(*sizes), [x], {"sizes": sizes})
    if op == "flatten":
        a, b = dim_arg(draw, nd), dim_arg(draw, nd)
        return Call(op, lambda m, t: m.flatten(t, a, b), [x], {"start_dim": a, "end_dim": b})
    others = [
        array(draw, draw(st.sampled_from((x.shape, related_shape(draw, x.shape)))))
        for _ in range(draw(st.integers(0, 2)))
    ]
    dim = dim_arg(draw, nd + (op == "stack"))
    return Call(op, lambda m, *ts: getattr(m, op)(list(ts), dim), [x, *others], {"dim": dim})


def index_op(draw) -> Call:
    x = array(draw, shape(draw, min_dims=1))
    kind = draw(st.sampled_from(("basic", "array", "mask", "two_arrays", "gather", "put")))
    n = x.shape[0]
    if kind == "basic":
        items = tuple(
            draw(
                st.one_of(
                    st.integers(-n - 1, n),
                    st.builds(
                        slice,
                        st.sampled_from((None, 1, -1, 0)),
                        st.sampled_from((None, 2, -1)),
                        st.sampled_from((None, 1, 2)),
                    ),
                    st.just(None),
                    st.just(Ellipsis),
                )
            )
            for _ in range(draw(st.integers(1, 3)))
        )
        return Call("index", lambda m, t: t[items], [x], {"index": items})
    if kind == "array":
        index = array(draw, shape(draw, 1, 2), "int64", low=-n - 1, high=n + 1)
        return Call("index", lambda m, t, i: t[i], [x, index])
    if kind == "mask":
        mask = array(draw, related_shape(draw, x.shape), "bool")
        return Call("index", lambda m, t, i: t[i], [x, mask])
    if kind == "two_arrays":
        i = array(draw, shape(draw, 1, 1), "int64", low=-n, high=n + 1)
        j = array(draw, related_shape(draw, i.shape), "int64", low=-2, high=x.shape[-1] + 1)
        return Call("index", lambda m, t, a, b: t[a, b], [x, i, j])
    if kind == "gather":
        dim = dim_arg(draw, x.ndim)
        index = array(
            draw,
            related_shape(draw, x.shape),
            draw(st.sampled_from(("int64", "int64", "float32"))),
            low=-1,
            high=5,
        )
        return Call("gather", lambda m, t, i: m.gather(t, dim, i), [x, index], {"dim": dim})
    value = array(draw, related_shape(draw, x.shape[1:]))
    where = draw(st.integers(-n - 1, n))

    def put(m, t, v):
        t = t.clone()
        t[where] = v
        return t

    return Call("index", put, [x, value], {"index": where})


def odd(draw, one_in: int = 4) -> bool:
    """True now and then: time to draw an unusual (often invalid) argument."""
    return draw(st.integers(1, one_in)) == 1


def _linear_act(m, x, w, b, activation):
    """gpugrad's fused F.linear_act; torch's linear, then the activation."""
    if m is gg:
        return gg.nn.functional.linear_act(x, w, b, activation)
    y = torch.nn.functional.linear(x, w, b)
    return y if activation == "identity" else getattr(torch, activation)(y)


def matmul(draw) -> Call:
    op = draw(st.sampled_from(("matmul", "matmul", "linear", "linear_act")))
    dtype = draw(st.sampled_from(FLOATS + ("int64",))) if odd(draw) else "float64"
    a = array(draw, shape(draw, 0 if odd(draw) else 1, 3), dtype)
    if op == "matmul":
        b_shape = shape(draw, 0 if odd(draw) else 1, 3)
        if a.ndim and b_shape and not odd(draw):  # usually the inner dims agree
            b_shape = (
                b_shape[:-2] + (a.shape[-1],) + b_shape[-1:] if len(b_shape) > 1 else (a.shape[-1],)
            )
        b = array(draw, b_shape, "float32" if odd(draw, 6) else dtype)
        return Call("matmul", lambda m, x, y: m.matmul(x, y), [a, b])
    out = draw(st.sampled_from((2, 3)))
    w = array(draw, (out, 3 if odd(draw) or not a.ndim else a.shape[-1]), dtype)
    arrays = [a, w]
    if draw(st.booleans()) or op == "linear_act":
        arrays.append(array(draw, draw(st.sampled_from(((out,), (out,), (out + 1,), ()))), dtype))
    if op == "linear_act":  # its errors come from linear, or name linear_act
        act = draw(st.sampled_from(("relu", "sigmoid", "tanh", "identity")))
        return Call("linear", lambda m, *ts: _linear_act(m, *ts, act), arrays, {"activation": act})
    return Call("linear", lambda m, *ts: _attr(m, F + "linear")(*ts), arrays)


def _probs(draw, shp, dtype):
    if odd(draw):  # outside [0, 1] somewhere, often
        return array(draw, shp, dtype, low=-0.5, high=1.5)
    return array(draw, shp, dtype, low=0.0, high=1.0)


def reduction_arg(draw) -> str:
    return (
        draw(st.sampled_from(("batchmean", "max")))
        if odd(draw, 8)
        else draw(st.sampled_from(("mean", "sum", "none")))
    )


def class_loss(draw) -> Call:
    op = draw(st.sampled_from(("cross_entropy", "cross_entropy", "nll_loss", "multi_margin_loss")))
    dtype = (
        draw(st.sampled_from(("int64", "bool"))) if odd(draw, 8) else draw(st.sampled_from(FLOATS))
    )
    x = array(
        draw, shape(draw, 0 if odd(draw, 8) else 1, 3 if op != "multi_margin_loss" else 2), dtype
    )
    classes = x.shape[1] if x.ndim > 1 else x.shape[0] if x.ndim else 1
    target_shape = (x.shape[0], *x.shape[2:]) if x.ndim > 1 else ()
    if odd(draw, 6):
        target_shape = shape(draw)
    kwargs = {"reduction": reduction_arg(draw)}
    if op == "cross_entropy" and draw(st.booleans()):
        target = _probs(draw, target_shape if odd(draw, 6) else x.shape, x.dtype.name)
    else:
        tdtype = draw(st.sampled_from(("float32", "bool", "uint8"))) if odd(draw, 6) else "int64"
        low, high = (-1, classes + 1) if odd(draw) else (0, max(classes, 1))
        target = array(draw, target_shape, tdtype, low=low, high=high)
        if draw(st.booleans()) and op != "multi_margin_loss":
            kwargs["ignore_index"] = draw(st.sampled_from((-1, 0, -100)))
    arrays = [x, target]
    if draw(st.booleans()):
        w_shape = (
            draw(st.sampled_from(((classes + 1,), (classes, 1), ()))) if odd(draw) else (classes,)
        )
        w_dtype = draw(st.sampled_from(("float64", "int64"))) if odd(draw) else x.dtype.name
        arrays.append(array(draw, w_shape, w_dtype, low=0, high=2))
    if op == "cross_entropy" and draw(st.booleans()):
        kwargs["label_smoothing"] = (
            draw(st.sampled_from((1.5, -0.1)))
            if odd(draw)
            else draw(st.sampled_from((0.1, 1.0, 0.0)))
        )
    if op == "multi_margin_loss" and draw(st.booleans()):
        kwargs["p"] = 3 if odd(draw) else draw(st.sampled_from((1, 2)))
        kwargs["margin"] = draw(st.sampled_from((0.5, -1.0, 2)))

    def fn(m, t, y, *w):
        kw = dict(kwargs)
        if w:
            kw["weight"] = w[0]
        return _attr(m, F + op)(t, y, **kw)

    return Call(op, fn, arrays, {**kwargs, "weight": arrays[2].shape if len(arrays) > 2 else None})


def pointwise_loss(draw) -> Call:
    op = draw(
        st.sampled_from(
            ("mse_loss", "l1_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy")
        )
    )
    dtype = "int64" if odd(draw, 6) else draw(st.sampled_from(FLOATS))
    y_dtype = draw(st.sampled_from(FLOATS + ("int64",))) if odd(draw) else dtype
    shp = shape(draw)
    y_shape = related_shape(draw, shp) if odd(draw) else shp
    if op == "binary_cross_entropy":
        x, y = _probs(draw, shp, dtype), _probs(draw, y_shape, y_dtype)
    else:
        x, y = array(draw, shp, dtype), array(draw, y_shape, y_dtype)
    kwargs = {"reduction": reduction_arg(draw)}
    arrays = [x, y]
    names = []
    if op.startswith("binary") and draw(st.booleans()):
        names.append("weight")
    if op == "binary_cross_entropy_with_logits" and draw(st.booleans()):
        names.append("pos_weight")
    for _ in names:
        arrays.append(array(draw, related_shape(draw, shp), x.dtype.name, low=0, high=2))

    def fn(m, a, b, *ws):
        return _attr(m, F + op)(a, b, **kwargs, **dict(zip(names, ws)))

    return Call(op, fn, arrays, {**kwargs, "rescaled by": names})


def small_int(draw, low=-2, high=4):
    return "2" if odd(draw, 20) else draw(st.integers(low, high))


def more_shape(draw) -> Call:
    op = draw(
        st.sampled_from(
            (
                "view_as",
                "reshape_as",
                "masked_fill",
                "split",
                "chunk",
                "unbind",
                "narrow",
                "index_select",
                "repeat",
                "tile",
                "flip",
                "roll",
                "tril",
                "triu",
                "diag",
            )
        )
    )
    x = array(draw, shape(draw))
    nd = x.ndim
    if op in ("view_as", "reshape_as"):
        target = (x.size,) if draw(st.booleans()) else tuple(reversed(x.shape))
        other = np.zeros(shape(draw) if odd(draw) else target, np.float32)
        return Call(op[:-3], lambda m, t, o: getattr(t, op)(o), [x, other], {"op": op})
    if op == "masked_fill":
        mask = array(draw, related_shape(draw, x.shape), "bool" if not odd(draw) else None)
        if draw(st.booleans()):
            value = scalar(draw)
            return Call(op, lambda m, t, k: t.masked_fill(k, value), [x, mask], {"value": value})
        value = array(draw, () if not odd(draw) else shape(draw, 1, 1))
        return Call(op, lambda m, t, k, v: t.masked_fill(k, v), [x, mask, value])
    dim = dim_arg(draw, nd)
    if op == "split":
        if draw(st.booleans()):
            sizes = small_int(draw, -1, 3)
        else:
            sizes = list(draw(st.lists(st.integers(-1, 3), max_size=3)))
        return Call(op, lambda m, t: m.split(t, sizes, dim), [x], {"sizes": sizes, "dim": dim})
    if op == "chunk":
        chunks = small_int(draw, -1, 4)
        return Call(op, lambda m, t: m.chunk(t, chunks, dim), [x], {"chunks": chunks, "dim": dim})
    if op == "unbind":
        return Call(op, lambda m, t: m.unbind(t, dim), [x], {"dim": dim})
    if op == "narrow":
        start, length = small_int(draw, -3, 3), small_int(draw, -1, 3)
        return Call(
            op,
            lambda m, t: m.narrow(t, dim, start, length),
            [x],
            {"dim": dim, "start": start, "length": length},
        )
    if op == "index_select":
        index = array(
            draw,
            shape(draw, 0 if odd(draw) else 1, 1 if not odd(draw) else 2),
            "float32" if odd(draw, 8) else "int64",
            low=-1,
            high=4,
        )
        return Call(op, lambda m, t, i: m.index_select(t, dim, i), [x, index], {"dim": dim})
    if op in ("repeat", "tile"):
        sizes = tuple(
            draw(st.lists(st.integers(-1, 3), min_size=0 if op == "tile" else 1, max_size=4))
        )
        call = (
            (lambda m, t: t.repeat(*sizes)) if op == "repeat" else (lambda m, t: m.tile(t, sizes))
        )
        return Call(op, call, [x], {"sizes": sizes})
    if op == "flip":
        dims = tuple(draw(st.lists(st.integers(-nd - 1, max(nd, 1)), max_size=3)))
        return Call(op, lambda m, t: m.flip(t, dims), [x], {"dims": dims})
    if op == "roll":
        if draw(st.booleans()):
            shifts = small_int(draw, -3, 3)
            return Call(op, lambda m, t: m.roll(t, shifts), [x], {"shifts": shifts})
        shifts = tuple(draw(st.lists(st.integers(-3, 3), min_size=1, max_size=2)))
        dims = tuple(dim_arg(draw, nd) for _ in range(len(shifts) if not odd(draw) else 1))
        return Call(op, lambda m, t: m.roll(t, shifts, dims), [x], {"shifts": shifts, "dims": dims})
    diagonal = small_int(draw, -3, 3)
    return Call(op, lambda m, t: getattr(m, op)(t, diagonal), [x], {"diagonal": diagonal})


EQUATIONS = (
    "ij,jk->ik",
    "bi,oi->bo",
    "bij,bjk->bik",
    "i,ij,j",
    "ii,...i->...",
    "ii->i",
    "ij->",
    "i,i->",
    "ij,jk",
    "...ij,...jk->...ik",
    "i->ii",
    "ab,ab,ab->a",
    "ij->jk",
    "i j",
)


def more_linalg(draw) -> Call:
    op = draw(st.sampled_from(("addmm", "bmm", "einsum", "einsum", "outer", "dot", "mv")))
    dtype = draw(st.sampled_from(FLOATS + ("int64",))) if odd(draw) else "float64"
    n, k, j = (draw(st.integers(0, 3)) for _ in range(3))
    shapes = {
        "addmm": [(n, j), (n, k), (k, j)],
        "bmm": [(2, n, k), (2, k, j)],
        "outer": [(n,), (k,)],
        "dot": [(n,), (n,)],
        "mv": [(n, k), (k,)],
    }
    if op == "einsum":
        eq = draw(st.sampled_from(EQUATIONS))
        operands = eq.split("->")[0].split(",")
        size = {c: draw(st.integers(1, 3)) for c in "abijko"}
        arrays = [
            array(
                draw,
                tuple(size[c] for c in term if c in size) if not odd(draw, 6) else shape(draw),
                dtype,
            )
            for term in operands
        ]
        if odd(draw, 8):
            arrays = arrays[:-1]
        return Call(op, lambda m, *ts: m.einsum(eq, *ts), arrays, {"equation": eq})
    arrays = [array(draw, shp if not odd(draw) else shape(draw), dtype) for shp in shapes[op]]
    if op == "addmm":
        # finite: BLAS folds an infinite alpha into the products (inf - inf), NumPy after them
        beta, alpha = (draw(st.sampled_from((2, -1, 0, 2.5, True, "2", None))) for _ in "ba")
        return Call(
            op,
            lambda m, c, a, b: m.addmm(c, a, b, beta=beta, alpha=alpha),
            arrays,
            {"beta": beta, "alpha": alpha},
        )
    return Call(op, lambda m, *ts: getattr(m, op)(*ts), arrays)


def sorting(draw) -> Call:
    op = draw(st.sampled_from(("topk", "sort", "cumsum", "norm", "norm")))
    x = array(draw, shape(draw))
    dim = dim_arg(draw, x.ndim)
    if op == "topk":
        k, largest = small_int(draw, -1, 4), draw(st.booleans())
        return Call(
            op,
            lambda m, t: m.topk(t, k, dim, largest=largest),
            [x],
            {"k": k, "dim": dim, "largest": largest},
        )
    if op == "sort":
        descending = draw(st.booleans())
        return Call(
            op,
            lambda m, t: m.sort(t, dim, descending=descending),
            [x],
            {"dim": dim, "descending": descending},
        )
    if op == "cumsum":
        return Call(op, lambda m, t: m.cumsum(t, dim), [x], {"dim": dim})
    p = draw(st.sampled_from(("fro", 2, 1, 3, float("inf"), float("-inf"), 0, 0.5, "nuc", "x")))
    dims, keepdim = dims_arg(draw, x.ndim), draw(st.booleans())
    return Call(
        op, lambda m, t: m.norm(t, p, dims, keepdim), [x], {"p": p, "dim": dims, "keepdim": keepdim}
    )


def more_activation(draw) -> Call:
    op = draw(st.sampled_from(("elu", "mish", "hardtanh", "relu6", "prelu", "logsigmoid")))
    x = array(draw, shape(draw))
    if op == "prelu":
        channels = x.shape[1] if x.ndim > 1 else 1
        w = array(
            draw,
            (channels,) if not odd(draw) else shape(draw),
            x.dtype.name if not odd(draw) else None,
        )
        return Call(op, lambda m, t, v: m.nn.functional.prelu(t, v), [x, w])
    kwargs = {}
    if op == "elu" and draw(st.booleans()):
        kwargs["alpha"] = draw(st.sampled_from((0.7, -1.0, 0.0, "1")))
    if op == "hardtanh" and draw(st.booleans()):
        kwargs["min_val"], kwargs["max_val"] = draw(
            st.sampled_from(((-0.5, 0.8), (1.0, -1.0), (0.0, 0.0), ("0", 1.0)))
        )
    return Call(op, lambda m, t: _attr(m, F + op)(t, **kwargs), [x], kwargs)


def remaining_activation(draw) -> Call:
    names = ("selu", "celu", "hardswish", "hardsigmoid", "softsign", "tanhshrink", "threshold",
             "hardshrink", "softshrink", "softmin", "glu")
    op = draw(st.sampled_from(names))
    x = array(draw, shape(draw))
    numbers = (0.4, -0.5, 0.0, 2, float("inf"), "1")
    kwargs = {}
    if op == "celu" and draw(st.booleans()):
        kwargs["alpha"] = draw(st.sampled_from(numbers))
    if op == "threshold":
        kwargs["threshold"], kwargs["value"] = (draw(st.sampled_from(numbers)) for _ in "tv")
    if op in ("hardshrink", "softshrink") and draw(st.booleans()):
        kwargs["lambd"] = draw(st.sampled_from(numbers))
    if op in ("softmin", "glu"):
        kwargs["dim"] = dim_arg(draw, x.ndim)
        if kwargs["dim"] is None:  # torch's guess, with its warning: tests/test_nn_modules.py
            kwargs["dim"] = -1
    if op == "softmin" and odd(draw):
        kwargs["dtype"] = draw(st.sampled_from(("float64", "float32")))

    def fn(m, t):
        options = dict(kwargs, dtype=getattr(m, kwargs["dtype"])) if "dtype" in kwargs else kwargs
        return _attr(m, F + op)(t, **options)

    return Call(op, fn, [x], kwargs)


def normalization(draw) -> Call:
    op = draw(st.sampled_from(("layer_norm", "batch_norm", "normalize", "embedding")))
    dtype = draw(st.sampled_from(("int64", "float32"))) if odd(draw, 6) else "float64"
    if op == "embedding":
        n = draw(st.integers(0, 4))
        index = array(
            draw,
            shape(draw),
            "int64" if not odd(draw, 6) else "float32",
            low=-1,
            high=n + 1 if odd(draw) else max(n, 1),
        )
        weight = array(draw, (n, 3) if not odd(draw) else shape(draw), dtype)
        pad = draw(st.sampled_from((None, 0, 1, -1, 5))) if draw(st.booleans()) else None
        return Call(
            op,
            lambda m, i, w: m.nn.functional.embedding(i, w, padding_idx=pad),
            [index, weight],
            {"padding_idx": pad},
        )
    x = array(draw, shape(draw, 1 if not odd(draw) else 0, 3), dtype)
    if op == "normalize":
        p, dim = draw(st.sampled_from((2.0, 1, float("inf"), 0.5))), dim_arg(draw, x.ndim)
        return Call(
            op, lambda m, t: m.nn.functional.normalize(t, p, dim), [x], {"p": p, "dim": dim}
        )
    if op == "layer_norm":
        tail = x.shape[len(x.shape) - draw(st.integers(0, x.ndim)) :]
        normalized = list(tail) if not odd(draw) else list(shape(draw, 1, 2))
        arrays = [x]
        if draw(st.booleans()):
            arrays += [
                array(draw, tuple(normalized) if not odd(draw) else shape(draw), dtype)
                for _ in range(2)
            ]
        return Call(
            op,
            lambda m, t, *wb: m.nn.functional.layer_norm(t, normalized, *wb),
            arrays,
            {"normalized_shape": normalized},
        )
    channels = x.shape[1] if x.ndim > 1 else 1
    training = draw(st.booleans())
    arrays = [x]
    stats = draw(st.booleans()) or not training
    if stats:
        arrays += [
            array(draw, (channels,), dtype),
            array(draw, (channels,), dtype, low=0.5, high=2),
        ]
    affine = draw(st.booleans())
    if affine:
        arrays += [array(draw, (channels,) if not odd(draw) else shape(draw), dtype)]

    def fn(m, t, *rest):
        mean, var = (rest[0], rest[1]) if stats else (None, None)
        weight = rest[-1] if affine else None
        return m.nn.functional.batch_norm(t, mean, var, weight, None, training=training)

    return Call(op, fn, arrays, {"training": training, "stats": stats, "affine": affine})


def more_loss(draw) -> Call:
    op = draw(st.sampled_from(("smooth_l1_loss", "huber_loss", "kl_div")))
    dtype = "int64" if odd(draw, 6) else draw(st.sampled_from(FLOATS))
    shp = shape(draw)
    x = array(draw, shp, dtype)
    y = array(
        draw,
        related_shape(draw, shp) if odd(draw) else shp,
        draw(st.sampled_from(FLOATS + ("int64",))) if odd(draw) else dtype,
    )
    kwargs = {
        "reduction": reduction_arg(draw)
        if op != "kl_div"
        else draw(st.sampled_from(("mean", "sum", "none", "batchmean", "max")))
    }
    if op == "smooth_l1_loss" and draw(st.booleans()):
        kwargs["beta"] = draw(st.sampled_from((0.5, 0.0, -1.0, 2.0)))
    if op == "huber_loss" and draw(st.booleans()):
        kwargs["delta"] = draw(st.sampled_from((0.7, 0.0, -1.0, 2.0)))
    if op == "kl_div" and draw(st.booleans()):
        kwargs["log_target"] = draw(st.booleans())
    return Call(op, lambda m, a, b: _attr(m, F + op)(a, b, **kwargs), [x, y], kwargs)


FAMILIES = {
    "binary": (binary, ("where",) + sum(BINARY.values(), ())),
    "unary": (unary, tuple(UNARY)),
    "clamp": (
        clamp,
        ("clamp", "clamp_min", "clamp_tensors", "clamp_tensor_min", "clamp_tensor_max"),
    ),
    "softmax": (softmax, ("softmax", "log_softmax")),
    "reduction": (
        reduction,
        (
            "sum",
            "sum_dim_keepdim",
            "sum_dims",
            "mean",
            "mean_dim",
            "max_all",
            "max_dim",
            "min_dim_keepdim",
            "amax",
            "amin",
            "logsumexp",
            "var",
            "var_all_biased",
            "std",
        ),
    ),
    "shape": (
        shape_op,
        (
            "reshape",
            "view",
            "transpose",
            "permute",
            "T",
            "unsqueeze",
            "squeeze",
            "squeeze_all",
            "expand",
            "flatten",
            "cat",
            "stack",
        ),
    ),
    "index": (
        index_op,
        (
            "index_basic",
            "index_int_none",
            "index_array_repeated",
            "index_mask",
            "index_two_arrays",
            "gather",
            "index_put",
        ),
    ),
    "matmul": (
        matmul,
        (
            "matmul",
            "matmul_batched",
            "matmul_vec",
            "matmul_vecvec",
            "linear",
            "linear_act_relu",
            "linear_act_sigmoid",
            "linear_act_tanh",
        ),
    ),
    "class_loss": (
        class_loss,
        (
            "cross_entropy",
            "cross_entropy_weight",
            "cross_entropy_none",
            "cross_entropy_ignore",
            "cross_entropy_smoothing",
            "cross_entropy_probs",
            "cross_entropy_nd",
            "nll_loss",
            "multi_margin_loss",
            "multi_margin_loss_p2",
        ),
    ),
    "pointwise_loss": (
        pointwise_loss,
        (
            "mse_loss",
            "l1_loss",
            "bce_with_logits",
            "bce_with_logits_pos_weight",
            "bce_with_logits_weight",
            "binary_cross_entropy",
            "binary_cross_entropy_weight",
        ),
    ),
    "more_shape": (
        more_shape,
        (
            "view_as",
            "reshape_as",
            "masked_fill",
            "masked_fill_tensor",
            "split",
            "chunk",
            "unbind",
            "narrow",
            "index_select",
            "repeat",
            "tile",
            "flip",
            "roll",
            "roll_flat",
            "tril",
            "triu",
            "diag",
            "diag_embed",
        ),
    ),
    "more_linalg": (
        more_linalg,
        (
            "addmm",
            "bmm",
            "einsum_linear",
            "einsum_bmm",
            "einsum_three",
            "einsum_trace_ellipsis",
            "outer",
            "dot",
            "mv",
        ),
    ),
    "sorting": (
        sorting,
        (
            "topk",
            "topk_smallest",
            "sort",
            "sort_descending",
            "cumsum",
            "norm",
            "norm_dim",
            "norm_1",
            "norm_inf",
            "norm_3",
        ),
    ),
    "more_activation": (
        more_activation,
        ("elu", "elu_alpha", "mish", "hardtanh", "relu6", "prelu", "prelu_shared", "logsigmoid"),
    ),
    "remaining_activation": (
        remaining_activation,
        ("selu", "celu", "hardswish", "hardsigmoid", "softsign", "tanhshrink", "threshold",
         "hardshrink", "softshrink", "softmin", "glu"),
    ),
    "normalization": (
        normalization,
        (
            "layer_norm",
            "layer_norm_2d",
            "batch_norm_train",
            "batch_norm_train_3d",
            "batch_norm_eval",
            "normalize",
            "embedding",
            "embedding_padding",
        ),
    ),
    "more_loss": (more_loss, ("smooth_l1_loss", "huber_loss", "kl_div", "kl_div_log_target")),
}
EXAMPLES = {  # ~4.5 ms a case: about 22 s in all on this project's 2-core CI machine
    "binary": 500,
    "unary": 300,
    "clamp": 150,
    "softmax": 120,
    "reduction": 400,
    "shape": 400,
    "index": 300,
    "matmul": 300,
    "class_loss": 450,
    "pointwise_loss": 300,
    "more_shape": 350,
    "more_linalg": 250,
    "sorting": 250,
    "more_activation": 250,
    "remaining_activation": 200,
    "normalization": 250,
    "more_loss": 200,
}


# ---- where gpugrad differs on purpose --------------------------------------------------------
@dataclass
class Difference:
    reason: str
    applies: Callable  # applies(call, gpugrad_outcome, torch_outcome) -> bool


def _empty(call: Call, want) -> bool:
    return any(a.size == 0 for a in call.arrays) or any(out[2].size == 0 for out in want)


DIFFERENCES: list[Difference] = [
    Difference(
        "batch_norm in eval mode on an empty input (no rows or no channels): gpugrad checks "
        "weight, bias and the statistics against the channels as always; torch checks nothing "
        "there (any sizes give an empty result) or fails inside (select() on a 0-dim tensor, "
        "index 0 out of range)",
        lambda call, got, want: (
            call.op == "batch_norm"
            and call.arrays[0].size == 0
            and not call.args["training"]
            and (isinstance(want, IndexError) or isinstance(got, RuntimeError))
        ),
    ),
    Difference(
        "norm(p='nuc') is not supported (it needs an SVD, which gpugrad has not yet): a "
        "ValueError naming p; torch gives the nuclear norm",
        lambda call, got, want: (
            call.op == "norm" and call.args.get("p") == "nuc" and isinstance(got, ValueError)
        ),
    ),
    Difference(
        "addmm with alpha = 0 computes 0 * (mat1 @ mat2): NaN where the product is inf or NaN, "
        "-0.0 where it is negative; torch's BLAS skips the product and gives 0",
        lambda call, got, want: call.op == "addmm" and call.args.get("alpha") == 0,
    ),
    Difference(
        "softmax / log_softmax want an explicit dim; torch's dim=None guesses one (0 for 0-, "
        "1- and 3-d inputs, else 1) with a deprecation warning",
        lambda call, got, want: call.op in ("softmax", "log_softmax") and call.args["dim"] is None,
    ),
    Difference(
        "gelu(+inf) in float32 is +inf (x Phi(x)) in gpugrad; torch's float32 kernel gives NaN "
        "(its float64 kernel gives +inf)",
        lambda call, got, want: (
            call.op == "gelu"
            and call.arrays[0].dtype == np.float32
            and not isinstance(want, Exception)
            and bool(np.isposinf(call.arrays[0]).any())
        ),
    ),
    Difference(
        "clamp with one tensor bound and one number: gpugrad takes the mix; torch's overloads "
        "take two numbers or two tensors (a TypeError; a 0-d tensor passes as a number)",
        lambda call, got, want: (
            call.op == "clamp" and call.args["tensor bounds"] and len(call.args) > 1
        ),
    ),
    Difference(
        "x ** -0.5 at x = -0.0 and -inf is IEEE pow's +inf and +0 in gpugrad; torch's rsqrt "
        "shortcut gives -inf and NaN",
        lambda call, got, want: (
            call.op == "pow"
            and call.args.get("scalar") == -0.5
            and not call.args.get("reflected")
            and not isinstance(got, Exception)
            and not isinstance(want, Exception)
            and bool(np.isin(call.arrays[0][np.signbit(call.arrays[0])], (0, -np.inf)).any())
        ),
    ),
    Difference(
        "several faults in one call: gpugrad reports a wrong dtype first, then shapes, then "
        "values (a target out of range); torch's order varies by op",
        lambda call, got, want: (
            (type(got), _kind(want))
            in ((TypeError, ValueError), (TypeError, IndexError), (ValueError, IndexError))
        ),
    ),
    Difference(
        "pointwise losses (mse, l1, smooth_l1, huber, kl_div) of input and target shapes that "
        "differ: gpugrad refuses them; torch broadcasts (mostly warning that the result is "
        "likely wrong)",
        lambda call, got, want: (
            call.op in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div")
            and isinstance(got, ValueError)
            and "differ in shape" in str(got)
            and not isinstance(want, Exception)
        ),
    ),
    Difference(
        "multi_margin_loss's mean and sum over an empty batch are NaN (0 / 0) and 0 in gpugrad; "
        "torch returns uninitialized memory there",
        lambda call, got, want: (
            call.op == "multi_margin_loss"
            and call.arrays[0].size == 0
            and call.args.get("reduction") != "none"
        ),
    ),
    Difference(
        "cross_entropy with no classes (C = 0) and label smoothing: gpugrad's rows (all ignored) "
        "are 0; torch's are 0 * (label_smoothing / 0) = NaN",
        lambda call, got, want: (
            call.op == "cross_entropy"
            and call.args.get("label_smoothing")
            and (call.arrays[0].shape[1:2] or call.arrays[0].shape) == (0,)
        ),
    ),
    Difference(
        "cross_entropy refuses a negative (or NaN) label_smoothing; torch skips its range check "
        "for those and smooths by nothing",
        lambda call, got, want: (
            call.op == "cross_entropy"
            and isinstance(got, ValueError)
            and not 0 <= call.args.get("label_smoothing", 0) <= 1
        ),
    ),
    Difference(
        "class indices of any integer dtype (uint8, int32, ...) are taken; torch wants int64 (and "
        "uint8 in cross_entropy)",
        lambda call, got, want: (
            call.op in ("cross_entropy", "nll_loss", "multi_margin_loss")
            and call.arrays[1].dtype.kind in "iu"
            and call.arrays[1].dtype != np.int64
            and not isinstance(got, Exception)
        ),
    ),
    Difference(
        "binary_cross_entropy_with_logits (a float64 input, a float32 target) and huber_loss "
        "(float32 and float64) promote to float64 in gpugrad; torch's kernels write the loss in "
        "one operand's float32",
        lambda call, got, want: (
            call.op in ("binary_cross_entropy_with_logits", "huber_loss")
            and {call.arrays[0].dtype, call.arrays[1].dtype}
            == {np.dtype("float32"), np.dtype("float64")}
            and not isinstance(got, Exception)
        ),
    ),
    Difference(
        "matmul and its kin (linear, addmm, bmm, dot, mv, einsum) promote operands of two "
        "dtypes, as gpugrad's other mixed ops (the design's rule; tests/test_engine.py); torch "
        "requires one dtype",
        lambda call, got, want: (
            call.op in ("matmul", "linear", "addmm", "bmm", "dot", "mv", "einsum")
            and not isinstance(got, Exception)
            and len({a.dtype for a in call.arrays}) > 1
        ),
    ),
    Difference(
        "torch skips some dtype, shape and bounds checks when a tensor or the result is empty "
        "(a float gather index, an index out of range of an empty result, a (0, 1) weight for "
        "no classes); gpugrad checks regardless",
        lambda call, got, want: (
            isinstance(got, (TypeError, IndexError, ValueError))
            and not isinstance(want, Exception)
            and _empty(call, want)
        ),
    ),
    Difference(
        "an index with two Ellipses: NumPy's rule (an IndexError); torch accepts it",
        lambda call, got, want: (
            call.op == "index"
            and isinstance(got, IndexError)
            and str(call.args.get("index")).count("Ellipsis") > 1
        ),
    ),
    Difference(
        "reshape / view / permute / expand with no sizes at all read them as the empty shape "
        "(), which gpugrad's own rules pass for 0-d tensors; torch's Python binding raises a "
        "TypeError for the missing argument",
        lambda call, got, want: (
            call.op in ("reshape", "view", "permute", "expand")
            and () in call.args.values()
            and isinstance(want, TypeError)
        ),
    ),
    Difference(
        "logsumexp over dim=() reduces every dim, as gpugrad's other reductions and torch's "
        "keepdim=True do; torch's keepdim=False fails there with an internal shape error",
        lambda call, got, want: (
            call.op == "logsumexp" and call.args["dim"] == () and isinstance(want, RuntimeError)
        ),
    ),
]


# ---- running and comparing -------------------------------------------------------------------
ALLOWED = {  # torch's exception -> what gpugrad may raise for it
    IndexError: (IndexError,),
    TypeError: (TypeError,),
    ValueError: (ValueError,),
    RuntimeError: (RuntimeError, ValueError, TypeError, IndexError),
}
STATS: collections.Counter = collections.Counter()


def _tensor(m, a):
    return gg.tensor(a) if m is gg else torch.from_numpy(np.array(a))


def run(m, call: Call):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = call.fn(m, *[_tensor(m, a) for a in call.arrays])
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            return exc
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [(tuple(o.shape), str(o.dtype).rsplit(".", 1)[-1], _host(o)) for o in outs]


def _host(t):
    if isinstance(t, gg.Tensor):  # a result must be a whole tensor: an array on its device
        assert isinstance(t.array, np.ndarray), f"a gpugrad result holds a {type(t.array)}"
        return t.numpy()
    return t.detach().numpy()


def _kind(exc):
    return (
        next(k for k in ALLOWED if isinstance(exc, k)) if isinstance(exc, tuple(ALLOWED)) else None
    )


def compare(call: Call, family: str):
    got, want = run(gg, call), run(torch, call)
    if isinstance(got, Exception):
        assert isinstance(got, tuple(ALLOWED)), (
            f"{call}: gpugrad raised {type(got).__name__}({got})"
        )
        assert call.op in str(got), f"{call}: gpugrad's error does not name {call.op}: {got!r}"
    problem = _disagreement(call, got, want)
    if problem is None:
        STATS[family, "both fail" if isinstance(got, Exception) else "both succeed"] += 1
        return
    for difference in DIFFERENCES:
        if difference.applies(call, got, want):
            STATS[family, f"deliberate: {difference.reason}"] += 1
            return
    raise AssertionError(problem)


def _disagreement(call: Call, got, want) -> str | None:
    """None when gpugrad's outcome matches torch's, else what differs."""
    if isinstance(got, Exception) and isinstance(want, Exception):
        if isinstance(got, ALLOWED[_kind(want)] if _kind(want) else tuple(ALLOWED)):
            return None
        return (
            f"{call}: torch raised {type(want).__name__}({want}), gpugrad "
            f"{type(got).__name__}({got})"
        )
    if isinstance(got, Exception):
        return f"{call}: gpugrad raised {type(got).__name__}({got}), torch gives a result"
    if isinstance(want, Exception):
        return f"{call}: torch raised {type(want).__name__}({want}), gpugrad gives a result"
    return _same_result(call, got, want)


def _same_result(call, got, want) -> str | None:
    if len(got) != len(want):
        return f"{call}: {len(got)} results vs torch's {len(want)}"
    # a float32 operand makes a float64 result only float32-exact (in both libraries)
    single = any(a.dtype == np.float32 for a in call.arrays)
    for (shape_g, dtype_g, g), (shape_t, dtype_t, t) in zip(got, want):
        if shape_g != shape_t:
            return f"{call}: shape {shape_g} vs torch's {shape_t}"
        if dtype_g != dtype_t:
            return f"{call}: dtype {dtype_g} vs torch's {dtype_t}"
        rtol, atol = (2e-5, 1e-5) if single or dtype_g == "float32" else (1e-10, 1e-12)
        try:
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError as exc:
            return f"{call}: values differ from torch's{exc}"
    return None


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """After the module: how many cases ran, by family and outcome (shown even under -q)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not STATS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nerror fuzz: {sum(STATS.values())} cases")
        for (family, outcome), count in sorted(STATS.items()):
            reporter.write_line(f"  {family:15} {count:5}  {outcome[:90]}")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_gpugrad_and_torch_agree(family):
    draw_call = FAMILIES[family][0]

    @settings(FUZZ, max_examples=EXAMPLES[family])
    @given(st.data())
    def check(data):
        compare(draw_call(data.draw), family)

    check()


def test_every_op_of_the_table_is_fuzzed():
    covered = {name for _, names in FAMILIES.values() for name in names}
    assert {op.name for op in OPS} <= covered, sorted({op.name for op in OPS} - covered)
