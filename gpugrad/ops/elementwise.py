"""Elementwise arithmetic and math: each Function's forward (arrays), backward (Tensor ops,
so it is itself differentiable) and jvp stand together. Broadcast gradients are reduced to
each input's shape by the engine."""
from __future__ import annotations

import operator

import numpy as np

from gpugrad import dtypes, replay
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import device_guard, kernels, xp_of
from gpugrad.ops._operands import promote, same_device
from gpugrad.tensor import Tensor


def _add_tangents(*terms):
    present = [t for t in terms if t is not None]
    out = present[0]
    for t in present[1:]:
        out = out + t
    return out


class Add(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        return tb if ta is None else ta if tb is None else ta + tb


class Sub(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        return -tb if ta is None else ta if tb is None else ta - tb


class Mul(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        # each gradient reads the other input: keep only what backward (or jvp) will read
        need_a, need_b = ctx.needs_input_grad
        keep_all = ctx.forward_ad
        ctx.save_for_backward(a if need_b or keep_all else None, b if need_a or keep_all else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (
            g * b if ctx.needs_input_grad[0] else None,
            g * a if ctx.needs_input_grad[1] else None,
        )

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        if tb is None:
            return ta * b
        return a * tb if ta is None else ta * b + a * tb


class Div(ArrayFunction):
    @staticmethod
    def forward(ctx, a, b):
        # a is read only by b's gradient (and jvp)
        ctx.save_for_backward(a if ctx.needs_input_grad[1] or ctx.forward_ad else None, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = g / b if ctx.needs_input_grad[0] else None
        # torch's form: (a / b) / b neither overflows b * b nor gives NaN second derivatives
        # at b = 0 or +-inf
        grad_b = -g * ((a / b) / b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        if tb is None:
            return ta / b
        return -tb * ((a / b) / b) if ta is None else (ta - a * tb / b) / b


class Neg(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g

    @staticmethod
    def jvp(ctx, t):
        return -t


class PowScalar(ArrayFunction):
    """x ** p for a Python number p."""

    @staticmethod
    def forward(ctx, x, p):
        ctx.p = p
        ctx.save_for_backward(x)
        return x**p

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return g * 0, None
        return g * p * x ** (p - 1) if p != 1 else g, None

    @staticmethod
    def jvp(ctx, t, _p):
        (x,) = ctx.saved_tensors
        p = ctx.p
        return t * 0 if p == 0 else t * p * x ** (p - 1)


class Pow(ArrayFunction):
    """a ** b for tensors a and b."""

    @staticmethod
    def forward(ctx, a, b):
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = where(b == 0, 0.0, g * b * a ** (b - 1))
        if ctx.needs_input_grad[1]:
            # d/db a**b = a**b log a; PyTorch's convention: 0 where a == 0 and b >= 0
            grad_b = where((a == 0) & (b >= 0), 0.0, g * y * log(a))
        return grad_a, grad_b

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b, y = ctx.saved_tensors
        da = None if ta is None else where(b == 0, 0.0, ta * b * a ** (b - 1))
        db = None if tb is None else where((a == 0) & (b >= 0), 0.0, tb * y * log(a))
        return db if da is None else da if db is None else da + db


class Unary(ArrayFunction):
    """An elementwise op declared in one line (unary() below): `compute`, its forward on arrays,
    and `derivative`, dy/dx in Tensor ops of the input x and the output y. Backward is g * d and
    jvp t * d, so both stay differentiable through the derivative's own ops."""

    compute = derivative = None
    saves = "x"  # what the derivative reads: "x", "y" or "xy"

    @staticmethod
    def forward(ctx, x):
        fn = ctx.fn
        y = fn.compute(xp_of(x), x)
        ctx.save_for_backward(x if "x" in fn.saves else None, y if "y" in fn.saves else None)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.fn.derivative(*ctx.saved_tensors)

    @staticmethod
    def jvp(ctx, t):
        return t * ctx.fn.derivative(*ctx.saved_tensors)


def unary(name: str, compute, derivative, doc: str, saves: str = "x", floating: bool = True,
          module: str = __name__):
    """Op `name` as (its Unary subclass, its public function): compute(xp, x) -> y and
    derivative(x, y) -> dy/dx; floating: integer input is promoted to float32 first; module:
    the family file the class is declared in."""
    cls = type(name[0].upper() + name[1:], (Unary,), {
        "compute": staticmethod(compute), "derivative": staticmethod(derivative), "saves": saves,
        "__doc__": doc, "__module__": module})

    def op(x: Tensor) -> Tensor:
        if floating and x.array.dtype.kind != "f":
            (x,) = promote(name, x, floating=True)
        elif x.array.dtype == np.bool_:  # as torch: abs has no bool kernel
            raise TypeError(f"{name}: not implemented for bool tensors")
        return cls.apply(x)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return cls, op


Exp, exp = unary("exp", lambda xp, x: xp.exp(x), lambda x, y: y, "e ** x, elementwise.", saves="y")
Log, log = unary("log", lambda xp, x: xp.log(x), lambda x, y: 1 / x, "Natural logarithm, elementwise.")
Log1p, log1p = unary("log1p", lambda xp, x: xp.log1p(x), lambda x, y: 1 / (x + 1),
                     "log(1 + x), accurate for small x.")
Sqrt, sqrt = unary("sqrt", lambda xp, x: xp.sqrt(x), lambda x, y: 0.5 / y, "Square root, elementwise.",
                   saves="y")
Sin, sin = unary("sin", lambda xp, x: xp.sin(x), lambda x, y: cos(x), "Sine, elementwise.")
Cos, cos = unary("cos", lambda xp, x: xp.cos(x), lambda x, y: -sin(x), "Cosine, elementwise.")
Erf, erf = unary("erf", lambda xp, x: kernels.erf(x), lambda x, y: (2 / np.sqrt(np.pi)) * exp(-x * x),
                 "Gauss error function, elementwise.")
Abs, abs = unary("abs", lambda xp, x: xp.abs(x), lambda x, y: sign(x),  # noqa: A001
                 "|x|; gradient sign(x) (0 at 0 and at NaN).", floating=False)


class Maximum(ArrayFunction):
    """Elementwise max (NaN wins); on ties the gradient is split evenly, as in PyTorch."""

    pick = "maximum"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return getattr(xp_of(a), ctx.fn.pick)(a, b)

    @staticmethod
    def _share_a(ctx, a, b, dtype):
        """1 where a wins, 1/2 on ties, 0 where b wins (and where either is NaN: torch's jvp)."""
        wins = (a > b) if ctx.fn.pick == "maximum" else (a < b)
        return wins.to(dtype) + (a == b).to(dtype) * 0.5

    @staticmethod
    def backward(ctx, g):
        # torch's rule: each input's gradient is zeroed only where it loses, so where either
        # is NaN (no comparison holds) both take the whole gradient
        a, b = ctx.saved_tensors
        a_loses, b_loses = (a < b, a > b) if ctx.fn.pick == "maximum" else (a > b, a < b)
        tie = (a == b).to(g.dtype) * 0.5
        return g * (1 - a_loses.to(g.dtype) - tie), g * (1 - b_loses.to(g.dtype) - tie)

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        share_a = Maximum._share_a(ctx, a, b, (tb if ta is None else ta).dtype)
        da = None if ta is None else ta * share_a
        db = None if tb is None else tb * (1 - share_a)
        return db if da is None else da if db is None else da + db


class Minimum(Maximum):
    """Elementwise min; on ties the gradient is split evenly, as in PyTorch."""

    pick = "minimum"


class Clamp(ArrayFunction):
    """clamp(x, lo, hi) for numbers lo / hi; gradient passes where lo <= x <= hi."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        xp = xp_of(x)
        if x.dtype.kind != "f":
            return xp.clip(x, lo, hi).astype(x.dtype, copy=False)
        if (lo is not None and lo != lo) or (hi is not None and hi != hi):
            return xp.full_like(x, np.nan)  # a NaN bound: NaN everywhere, as torch
        # as torch: x itself unless a bound is crossed, so NaN stays NaN and clamp(-0.0, 0.0)
        # stays -0.0 (np.clip returns the bound on ties)
        y = x if lo is None else xp.where(x < lo, x.dtype.type(lo), x)
        return y if hi is None else xp.where(y > hi, x.dtype.type(hi), y)

    @staticmethod
    def _pass(ctx, x):
        keep = None
        if ctx.lo is not None:
            keep = x >= ctx.lo
        if ctx.hi is not None:
            keep = (x <= ctx.hi) if keep is None else keep & (x <= ctx.hi)
        return keep

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return where(Clamp._pass(ctx, x), g, 0.0), None, None

    @staticmethod
    def jvp(ctx, t, _lo, _hi):
        (x,) = ctx.saved_tensors
        return where(Clamp._pass(ctx, x), t, 0.0)


class ClampTensor(ArrayFunction):
    """clamp(x, lo, hi) with tensor bounds (either may be None), torch's rules: x keeps the
    gradient on ties, a bound takes it only where it clamps; NaN gives NaN and, to x, no
    gradient."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x, lo, hi)
        xp = xp_of(x)
        if hi is None:
            return xp.maximum(x, lo)
        if lo is None:
            return xp.minimum(x, hi)
        y = xp.where(x < lo, lo, x)
        y = xp.where(hi < y, hi, y)  # lo > hi gives hi
        return xp.where(lo != lo, lo, xp.where(hi != hi, hi, y))  # a NaN bound gives NaN

    @staticmethod
    def backward(ctx, g):
        x, lo, hi = ctx.saved_tensors
        if hi is None:
            return where(x >= lo, g, 0.0), where(x < lo, g, 0.0), None
        if lo is None:
            return where(x <= hi, g, 0.0), None, where(x > hi, g, 0.0)
        return (
            where((x >= lo) & (x <= hi), g, 0.0),
            where((x < lo) & (lo < hi), g, 0.0) if ctx.needs_input_grad[1] else None,
            where((x > hi) | (hi < lo), g, 0.0) if ctx.needs_input_grad[2] else None,
        )

    @staticmethod
    def jvp(ctx, tx, tlo, thi):
        x, lo, hi = ctx.saved_tensors
        if hi is None:
            return where(x > lo, tx, tlo)
        if lo is None:
            return where(x < hi, tx, thi)
        return where(lo > hi, thi, where(x < lo, tlo, where(x > hi, thi, tx)))


class Where(ArrayFunction):
    jvp_none_ok = True

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return xp_of(a).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        return (
            None,
            where(cond, g, 0.0) if ctx.needs_input_grad[1] else None,
            where(cond, 0.0, g) if ctx.needs_input_grad[2] else None,
        )

    @staticmethod
    def jvp(ctx, _tc, ta, tb):
        (cond,) = ctx.saved_tensors
        return where(cond, 0.0 if ta is None else ta, 0.0 if tb is None else tb)


# ---- public wrappers ------------------------------------------------------------------
def add(a, b, alpha=1) -> Tensor:
    """a + alpha * b, broadcasting."""
    if alpha != 1 or isinstance(alpha, (bool, float)):  # 1.0 and True are checked too
        _check_alpha("add", a, b, alpha)
        if dtypes.result_type(a, b) is dtypes.bool_:
            alpha = bool(alpha)  # a bool result: torch takes alpha as a bool too
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(*promote("add", a, b))


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha * b, broadcasting."""
    for operand in (a, b):
        if isinstance(operand, bool) or (isinstance(operand, Tensor) and operand.array.dtype == np.bool_):
            raise TypeError(
                "sub: subtraction with a bool tensor or True / False is not supported (as in torch);"
                " to invert a mask use ~ or logical_not()"
            )
    if alpha != 1 or isinstance(alpha, (bool, float)):
        _check_alpha("sub", a, b, alpha)
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(*promote("sub", a, b))


def _check_alpha(name: str, a, b, alpha) -> None:
    """torch's rules: a bool alpha only for a bool result, a float alpha only for a float one."""
    if not isinstance(alpha, (bool, int, float, np.number, np.bool_)):
        raise TypeError(f"{name}: alpha must be a number, got {alpha!r}")
    result = dtypes.result_type(a, b)
    if isinstance(alpha, (bool, np.bool_)) and result is not dtypes.bool_:
        raise TypeError(f"{name}: a bool alpha is only supported for a bool result, not {result}")
    if isinstance(alpha, (float, np.floating)) and not result.is_floating_point:
        raise TypeError(f"{name}: a float alpha ({alpha}) needs floating point operands, got {result}")


def mul(a, b) -> Tensor:
    """a * b, broadcasting."""
    return Mul.apply(*promote("mul", a, b))


def div(a, b) -> Tensor:
    """a / b (true division: integer inputs give float32)."""
    return Div.apply(*promote("div", a, b, floating=True))


def neg(x: Tensor) -> Tensor:
    """-x."""
    if x.array.dtype == np.bool_:
        raise TypeError("neg: negation of a bool tensor is not supported; to invert a mask use ~")
    return Neg.apply(x)


def pow(a, b) -> Tensor:  # noqa: A001
    """a ** b; b a number or a tensor."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if a.array.dtype.kind != "f":
            if isinstance(b, int) and b < 0:
                raise ValueError(f"pow: integers to negative integer powers are not allowed ({b})")
            from gpugrad.ops.shape import cast

            a = cast(a, dtypes.result_type(a, b))  # int ** 0.5 is float, bool ** 2 int64
        return PowScalar.apply(a, b)
    if all(isinstance(v, Tensor) and v.array.dtype == np.bool_ for v in (a, b)):
        raise TypeError("pow: not implemented for two bool tensors (as in torch)")
    a, b = promote("pow", a, b)
    if a.array.dtype.kind == "f":
        return Pow.apply(a, b)
    return _integer_pow(a, b)


def _integer_pow(a: Tensor, b: Tensor) -> Tensor:
    """Integer a ** b as torch: a negative exponent gives 1 for a = 1, +-1 for a = -1 and 0
    otherwise (NumPy raises instead). No gradient: the result is an integer."""
    with device_guard(a.array):
        xp = xp_of(a.array)
        base, exponent = (v.array.astype(np.int64) for v in (a, b))
        out = base ** xp.maximum(exponent, 0)
        odd = (exponent % 2).astype(bool)
        inverse = xp.where(base == 1, 1, xp.where(base == -1, xp.where(odd, -1, 1), 0))
        return Tensor._result(xp.where(exponent < 0, inverse, out).astype(a.array.dtype))


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1, and 0 at NaN as torch (no gradient: it is piecewise constant)."""
    with device_guard(x.array):
        return Tensor._result(replay.op(_sign, x.array))


def _sign(array):
    xp = xp_of(array)
    s = xp.sign(array)
    if s.dtype.kind == "f":  # NumPy's sign(NaN) is NaN; torch's 0 makes |x|' 0 there, not NaN
        s = xp.where(xp.isnan(s), s.dtype.type(0), s)
    return s


def rsqrt(x: Tensor) -> Tensor:
    return 1 / sqrt(x)


def square(x: Tensor) -> Tensor:
    return mul(x, x)


def maximum(a, b) -> Tensor:
    """Elementwise max of two tensors (ties split the gradient)."""
    return Maximum.apply(*promote("maximum", a, b))


def minimum(a, b) -> Tensor:
    """Elementwise min of two tensors (ties split the gradient)."""
    return Minimum.apply(*promote("minimum", a, b))


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit x to [min, max] (numbers or tensors)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    for bound in (min, max):
        if not (bound is None or isinstance(bound, (Tensor, bool, int, float, np.number))):
            raise TypeError(f"clamp: min and max must be numbers or tensors, got {bound!r}")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        bounds = [b for b in (min, max) if b is not None]
        x, *bounds = promote("clamp", x, *bounds)
        if x.array.dtype == np.bool_ and len(bounds) == 2:  # torch's clamp_min / max take it
            raise TypeError("clamp: not implemented for bool tensors with both bounds (as torch)")
        lo = bounds.pop(0) if min is not None else None
        hi = bounds.pop(0) if max is not None else None
        return ClampTensor.apply(x, lo, hi)
    result = dtypes.result_type(x, *(b for b in (min, max) if b is not None))
    if result.np != x.array.dtype:  # as torch: clamp(int tensor, max=0.5) is float
        from gpugrad.ops.shape import cast

        x = cast(x, result)
    return Clamp.apply(x, min, max)


clip = clamp


def where(condition, a, b) -> Tensor:
    """a where condition else b (broadcasting)."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(condition, Tensor):
        with device_guard(like.array):
            condition = Tensor._make(replay.op(xp_of(like.array).asarray, condition, bool))
    elif condition.array.dtype != np.bool_:
        raise TypeError(f"where: expected a bool condition tensor, got {condition.dtype}")
    a, b = promote("where", a, b)
    same_device("where", a, condition)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"where: shapes {tuple(condition.shape)} (condition), {tuple(a.shape)} and "
            f"{tuple(b.shape)} cannot be broadcast together"
        ) from None
    return Where.apply(condition, a, b)


def _compare(name, ufunc):
    def op(a, b) -> Tensor:
        a, b = promote(name, a, b)
        with device_guard(a.array):
            return Tensor._result(replay.op(ufunc, a.array, b.array))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise a {name} b as a bool tensor (no gradient)."
    return op


eq = _compare("eq", operator.eq)
ne = _compare("ne", operator.ne)
lt = _compare("lt", operator.lt)
le = _compare("le", operator.le)
gt = _compare("gt", operator.gt)
ge = _compare("ge", operator.ge)


def _bool_op(fn):
    return lambda *arrays: fn(*(a.astype(bool) for a in arrays))


_NOT, _AND, _OR = _bool_op(operator.invert), _bool_op(operator.and_), _bool_op(operator.or_)


def logical_not(x: Tensor) -> Tensor:
    with device_guard(x.array):
        return Tensor._result(replay.op(_NOT, x.array))


def logical_and(a: Tensor, b: Tensor) -> Tensor:
    same_device("logical_and", a, b)
    with device_guard(a.array):
        return Tensor._result(replay.op(_AND, a.array, b.array))


def logical_or(a: Tensor, b: Tensor) -> Tensor:
    same_device("logical_or", a, b)
    with device_guard(a.array):
        return Tensor._result(replay.op(_OR, a.array, b.array))


def _test(name):
    def op(x: Tensor) -> Tensor:
        with device_guard(x.array):
            return Tensor._result(replay.op(getattr(xp_of(x.array), name), x.array))

    op.__name__ = op.__qualname__ = name
    return op


isfinite, isnan, isinf = _test("isfinite"), _test("isnan"), _test("isinf")
