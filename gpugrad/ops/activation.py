"""Activations. Sigmoid, tanh, SiLU and GELU run fused kernels in forward and backward, through
one Function pair: FusedActivation saves the output (sigmoid, tanh: torch's "result" formulas) or
the input (silu, gelu), and its backward is ActivationBackward, itself a Function whose own
backward is written in primitives, so the fused path stays twice differentiable. The derivative
formulas live in the two tables below, which bias + activation (ops/linalg.py) reads too. ReLU
saves 1 bit per element. Softplus is a Function too: as a composition its gradient at 0 came out
0 (the subgradients of relu and abs), where it is sigmoid(0) = 1/2."""
from __future__ import annotations

import math
import warnings

import numpy as np

from gpugrad import replay
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import device_guard, kernels, xp_of
from gpugrad.ops import elementwise as E
from gpugrad.ops._operands import promote
from gpugrad.tensor import Tensor

# act -> (act'(z), d act'(z) / dy), both in Tensor ops of the output y = act(z); None: 1 and 0
FROM_OUTPUT = {
    "identity": (None, None),
    "relu": (lambda y: (~(y <= 0)).to(y.dtype), None),  # 1 at NaN: torch passes the gradient
    "sigmoid": (lambda y: y * (1 - y), lambda y: 1 - 2 * y),
    "tanh": (lambda y: 1 - y * y, lambda y: -2 * y),
}


def _silu_curvature(x):
    s = sigmoid(x)
    return s * (1 - s) * (2 + x * (1 - 2 * s))


def _gelu_curvature(x):
    return E.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi)) * (2 - x * x)


# act -> act''(x), for the fused activations whose backward reads the input x
FROM_INPUT = {"silu": _silu_curvature, "gelu": _gelu_curvature}


def _curvature(act: str):
    return FROM_INPUT[act] if act in FROM_INPUT else FROM_OUTPUT[act][1]


class ActivationBackward(ArrayFunction):
    """gx = g * act'(saved) in one pass by kernel `<act>_bwd`: linear in g, so its gradient in g
    is itself; in the saved tensor it is g * act''(saved), from the tables above. Subclasses
    name `act`."""

    act = ""

    @staticmethod
    def forward(ctx, saved, g):
        ctx.save_for_backward(saved, g)
        return getattr(kernels, ctx.fn.act + "_bwd")(saved, g)

    @staticmethod
    def backward(ctx, u):
        saved, g = ctx.saved_tensors
        grad_saved = u * g * _curvature(ctx.fn.act)(saved) if ctx.needs_input_grad[0] else None
        grad_g = ctx.fn.apply(saved, u) if ctx.needs_input_grad[1] else None
        return grad_saved, grad_g

    @staticmethod
    def jvp(ctx, t_saved, t_g):
        saved, g = ctx.saved_tensors
        return t_saved * g * _curvature(ctx.fn.act)(saved) + ctx.fn.apply(saved, t_g)


class FusedActivation(ArrayFunction):
    """y = act(x) by kernel `<act>_fwd`, saving y for FROM_OUTPUT activations and x for
    FROM_INPUT ones; its backward is the `gradient` Function. Subclasses name both."""

    act = ""
    gradient = ActivationBackward

    @staticmethod
    def forward(ctx, x):
        act = ctx.fn.act
        y = getattr(kernels, act + "_fwd")(x)
        ctx.save_for_backward(x if act in FROM_INPUT else y)
        return y

    @staticmethod
    def backward(ctx, g):
        (saved,) = ctx.saved_tensors
        return ctx.fn.gradient.apply(saved, g)

    @staticmethod
    def jvp(ctx, t):
        (saved,) = ctx.saved_tensors
        return ctx.fn.gradient.apply(saved, t)


class SigmoidBackward(ActivationBackward):
    act = "sigmoid"


class Sigmoid(FusedActivation):
    act, gradient = "sigmoid", SigmoidBackward


class TanhBackward(ActivationBackward):
    act = "tanh"


class Tanh(FusedActivation):
    act, gradient = "tanh", TanhBackward


class SiluBackward(ActivationBackward):
    act = "silu"


class Silu(FusedActivation):
    act, gradient = "silu", SiluBackward


class GeluBackward(ActivationBackward):
    act = "gelu"


class Gelu(FusedActivation):
    act, gradient = "gelu", GeluBackward


class Relu(ArrayFunction):
    @staticmethod
    def forward(ctx, x):
        y, mask = kernels.relu_fwd(x)
        ctx.save_for_backward(mask)  # 1 bit per element, not x
        return y

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return ReluBackward.apply(g, mask)

    @staticmethod
    def jvp(ctx, t):
        (mask,) = ctx.saved_tensors
        return ReluBackward.apply(t, mask)


class ReluBackward(ArrayFunction):
    """gx = g where the saved bit is set: linear in g, so its backward is itself."""

    @staticmethod
    def forward(ctx, g, mask):
        ctx.save_for_backward(mask)
        return kernels.relu_bwd(g, mask)

    @staticmethod
    def backward(ctx, u):
        (mask,) = ctx.saved_tensors
        return ReluBackward.apply(u, mask), None

    @staticmethod
    def jvp(ctx, t, _mask):
        (mask,) = ctx.saved_tensors
        return ReluBackward.apply(t, mask)


class Softplus(ArrayFunction):
    """log(1 + e**(beta x)) / beta, and x itself where beta x > threshold (torch's rule)."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = xp_of(x)
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x * beta
        # stable: max(z, 0) + log1p(e**-|z|) never exponentiates a large number
        smooth = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / beta
        return xp.where(bx > threshold, x, smooth)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return SoftplusBackward.apply(x, g, ctx.beta, ctx.threshold), None, None

    @staticmethod
    def jvp(ctx, t, _beta, _threshold):
        (x,) = ctx.saved_tensors
        return SoftplusBackward.apply(x, t, ctx.beta, ctx.threshold)


class SoftplusBackward(ArrayFunction):
    """gx = g * sigmoid(beta x), and g itself where beta x > threshold: linear in g."""

    @staticmethod
    def forward(ctx, x, g, beta, threshold):
        ctx.save_for_backward(x, g)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x * beta
        return xp_of(x).where(bx > threshold, g, g * kernels.sigmoid_fwd(bx))

    @staticmethod
    def _slope(ctx, x):
        """d sigmoid(beta x) / dx, zeroed from the threshold up as torch's double backward does
        (by a product, so NaN stays NaN)."""
        bx = x * ctx.beta
        s = sigmoid(bx)
        return s * (1 - s) * ctx.beta * (bx < ctx.threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, u):
        x, g = ctx.saved_tensors
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = u * g * SoftplusBackward._slope(ctx, x)
        if ctx.needs_input_grad[1]:
            grad_g = SoftplusBackward.apply(x, u, ctx.beta, ctx.threshold)
        return grad_x, grad_g, None, None

    @staticmethod
    def jvp(ctx, tx, tg, _beta, _threshold):
        x, g = ctx.saved_tensors
        linear = SoftplusBackward.apply(x, tg, ctx.beta, ctx.threshold)
        return tx * g * SoftplusBackward._slope(ctx, x) + linear


def _tensor(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    return x


def _floating(name, x):
    if _tensor(name, x).array.dtype.kind != "f":
        (x,) = promote(name, x, floating=True)
    return x


def _float_only(name, x):
    """torch's nn activations have no kernel for integer or bool tensors (sigmoid, tanh and
    the math functions promote them instead)."""
    if _tensor(name, x).array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating point tensor, got {x.dtype}")
    return x


def _number(name, what, value):
    if not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: {what} must be a number, got {value!r}")
    return value


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e**-x), numerically stable."""
    return Sigmoid.apply(_floating("sigmoid", x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(_floating("tanh", x))


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (swish), fused."""
    return Silu.apply(_float_only("silu", x))


def relu(x: Tensor) -> Tensor:
    """max(x, 0) as torch: NaN stays NaN, -0.0 stays -0.0; saves a bit-packed mask for backward."""
    if x.array.dtype.kind == "b":
        raise TypeError("relu: bool tensors are not supported (as in torch)")
    if x.array.dtype.kind == "f":
        return Relu.apply(x)
    return Tensor._result(replay.op(_int_relu, x.array))


def _int_relu(array):
    return array * (array > 0)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    x = _float_only("leaky_relu", x)
    return E.where(x > 0, x, x * _number("leaky_relu", "negative_slope", negative_slope))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (approximate='tanh': the tanh formula)."""
    x = _float_only("gelu", x)
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, linear where beta x > threshold; gradient sigmoid(beta x)."""
    x = _float_only("softplus", x)
    return Softplus.apply(x, _number("softplus", "beta", beta), _number("softplus", "threshold", threshold))


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x - logsumexp(x, dim): log-probabilities, stable."""
    return _log_softmax("log_softmax", x, dim)


def _log_softmax(name, x, dim):
    from gpugrad.ops import reduce as R
    from gpugrad.ops._operands import normalize_dims

    x = _float_only(name, x)
    if dim is None:  # torch guesses one, with a deprecation warning
        raise TypeError(f"{name}: dim must be given")
    normalize_dims(name, dim, x.ndim)  # an IndexError naming this op, not amax
    if x.array.size == 0:
        return x - R.logsumexp(x, dim, keepdim=True)
    # torch's formula, x - max - log(sum(exp(x - max))): unlike logsumexp, which treats an
    # infinite max as 0, a row holding +inf (inf - inf) is NaN throughout, and so is its gradient
    shifted = x - R.amax(x.detach(), dim, keepdim=True)
    return shifted - E.log(R.sum(E.exp(shifted), dim, keepdim=True))


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x), dim), stable."""
    return E.exp(_log_softmax("softmax", x, dim))


# ---- more activations --------------------------------------------------------------------------
class Elu(ArrayFunction):
    """scale x if x > 0 else scale alpha (e**(input_scale x) - 1): torch's elu, which selu and
    celu are too. torch's masks: the gradient takes its exponential branch where x <= 0 (at 0
    too), the second derivative only where x < 0 (0 at 0)."""

    @staticmethod
    def forward(ctx, x, alpha, scale, input_scale):
        xp = xp_of(x)
        ctx.save_for_backward(x)
        ctx.coefficients = alpha, scale, input_scale
        negative = x <= 0
        # expm1 of min(x, 0): no overflow for large x, and -0.0 stays -0.0 as in torch
        smooth = xp.expm1(xp.where(negative, x, 0) * input_scale) * (alpha * scale)
        return xp.where(negative, smooth, x * scale)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return EluBackward.apply(x, g, *ctx.coefficients), None, None, None

    @staticmethod
    def jvp(ctx, t, *_coefficients):
        (x,) = ctx.saved_tensors
        return EluBackward.apply(x, t, *ctx.coefficients)


class EluBackward(ArrayFunction):
    """gx = g scale alpha input_scale e**(input_scale x) where x <= 0, else g scale (NaN x
    takes g scale, as torch). Linear in g."""

    @staticmethod
    def forward(ctx, x, g, alpha, scale, input_scale):
        xp = xp_of(x)
        ctx.save_for_backward(x, g)
        ctx.coefficients = alpha, scale, input_scale
        negative = x <= 0
        slope = (input_scale * alpha * scale) * xp.exp(xp.where(negative, x, 0) * input_scale)
        return g * xp.where(negative, slope, scale)

    @staticmethod
    def _curvature(ctx, x):
        alpha, scale, input_scale = ctx.coefficients
        growth = E.exp(E.clamp(x, max=0.0) * input_scale)
        return E.where(x < 0, (alpha * scale * input_scale * input_scale) * growth, 0.0)

    @staticmethod
    def backward(ctx, u):
        x, g = ctx.saved_tensors
        grad_x = u * g * EluBackward._curvature(ctx, x) if ctx.needs_input_grad[0] else None
        grad_g = EluBackward.apply(x, u, *ctx.coefficients) if ctx.needs_input_grad[1] else None
        return grad_x, grad_g, None, None, None

    @staticmethod
    def jvp(ctx, tx, tg, *_coefficients):
        x, g = ctx.saved_tensors
        curved = tx * g * EluBackward._curvature(ctx, x)
        return curved + EluBackward.apply(x, tg, *ctx.coefficients)


class Prelu(ArrayFunction):
    """x if x > 0 else w x, with torch's masks: backward uses x > 0, jvp and double backward
    x >= 0 (they disagree at 0, as torch's formulas do)."""

    jvp_none_ok = True

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return xp_of(x).where(x > 0, x, w * x)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return PreluBackward.apply(g, x, w)

    @staticmethod
    def jvp(ctx, tx, tw):
        x, w = ctx.saved_tensors
        if tw is None:
            return E.where(x >= 0, tx, w * tx)
        through_w = tw * x
        if tx is None:
            return E.where(x >= 0, 0.0, through_w)
        return E.where(x >= 0, tx, w * tx + through_w)


class PreluBackward(ArrayFunction):
    """(gx, gw) = (g where x > 0 else w g, 0 where x > 0 else x g)."""

    jvp_none_ok = True

    @staticmethod
    def forward(ctx, g, x, w):
        ctx.save_for_backward(g, x, w)
        positive = x > 0
        xp = xp_of(x)
        return xp.where(positive, g, w * g), xp.where(positive, g.dtype.type(0), x * g)

    @staticmethod
    def backward(ctx, u_x, u_w):
        g, x, w = ctx.saved_tensors
        nonnegative = x >= 0
        return (
            E.where(nonnegative, u_x, u_x * w + u_w * x),
            E.where(nonnegative, 0.0, g * u_w),
            E.where(nonnegative, 0.0, g * u_x),
        )

    @staticmethod
    def jvp(ctx, tg, tx, tw):
        g, x, w = ctx.saved_tensors
        nonnegative = x >= 0
        out_x = out_w = None
        if tg is not None:
            out_x, out_w = E.where(nonnegative, tg, tg * w), E.where(nonnegative, 0.0, tg * x)
        if tw is not None:
            term = E.where(nonnegative, 0.0, g * tw)
            out_x = term if out_x is None else out_x + term
        if tx is not None:
            term = E.where(nonnegative, 0.0, g * tx)
            out_w = term if out_w is None else out_w + term
        return out_x, out_w


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e**x - 1)."""
    return Elu.apply(_float_only("elu", x), _number("elu", "alpha", alpha), 1.0, 1.0)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x))."""
    x = _float_only("mish", x)
    return x * tanh(softplus(x))


def hardtanh(
    x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """clamp(x, min_val, max_val); the gradient passes only strictly inside, as torch's."""
    _number("hardtanh", "min_val", min_val)
    _number("hardtanh", "max_val", max_val)
    if x.array.dtype.kind == "b":
        raise TypeError("hardtanh: bool tensors are not supported (as in torch)")
    if min_val > max_val:
        raise ValueError(
            f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})"
        )
    if x.array.dtype.kind != "f":  # as torch: an integer result, the bounds truncated to ints
        with device_guard(x.array):
            return Tensor._result(xp_of(x.array).clip(x.array, int(min_val), int(max_val)))
    inside = (x > min_val) & (x < max_val)
    return E.where(inside, x, E.clamp(x.detach(), min_val, max_val))


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    if x.array.dtype.kind == "b":
        raise TypeError("relu6: bool tensors are not supported (as in torch)")
    return hardtanh(x, 0.0, 6.0)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """x if x > 0 else weight * x; n > 1 weights scale channel dim 1 (a 1-d x has one)."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: weight must be a Tensor, got {type(weight).__name__}")
    x = _float_only("prelu", x)
    if weight.array.dtype != x.array.dtype:  # torch does not promote here
        raise TypeError(f"prelu: weight has dtype {weight.dtype} but input has {x.dtype}")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: weight must be a scalar or 1-D, got shape {tuple(weight.shape)}")
    n = weight.numel()
    if n != 1:
        channel = 1  # torch: a 0-d or 1-d input has one channel
        if weight.ndim != 1 or x.ndim < 2 or x.shape[channel] != n:
            raise RuntimeError(
                f"prelu: mismatch of parameter numbers and input channel size. Found parameter "
                f"numbers = {n} and channel size = {x.shape[channel] if x.ndim >= 2 else 1}."
            )
        shape = [1] * x.ndim
        shape[channel] = n
        weight = weight.reshape(shape)
    elif weight.ndim > x.ndim:
        weight = weight.reshape(())
    return Prelu.apply(x, weight)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable."""
    # 0.0 - ...: log sigmoid(inf) is +0.0, as torch's
    return 0.0 - Softplus.apply(-_float_only("logsigmoid", x), 1.0, float("inf"))


# ---- torch's remaining elementwise activations ---------------------------------------------------
# selu's constants, as torch's (Klambauer et al. 2017)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _in_place(name: str, fn, x: Tensor, *args) -> Tensor:
    """fn(x, *args) written into x's own buffer: torch's inplace=True and F.<name>_."""
    from gpugrad.ops import _inplace

    return _inplace(name + "_", fn)(x, *args)


def _hardswish_slope(x, y):
    """torch's masks: 0 up to -3, the ramp x / 3 + 1/2 strictly inside (-3, 3) (its own slope,
    1/3, there only), 1 from 3 up and at NaN."""
    return E.where(x <= -3, 0.0, E.where(x < 3, x / 3 + 0.5, 1.0))


Hardswish, _hardswish = E.unary(
    "hardswish", lambda xp, x: x * xp.clip(x + 3, 0, 6) / 6, _hardswish_slope,
    "x relu6(x + 3) / 6.", module=__name__)
# torch's mask: the gradient is 1/6 strictly inside (-3, 3), 0 at the corners and at NaN
Hardsigmoid, _hardsigmoid = E.unary(
    "hardsigmoid", lambda xp, x: xp.clip(x + 3, 0, 6) / 6,
    lambda x, y: ((x > -3) & (x < 3)).to(x.dtype) / 6, "relu6(x + 3) / 6.", module=__name__)


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """scale (x if x > 0 else alpha (e**x - 1)), with torch's fixed alpha and scale."""
    if inplace:
        return _in_place("selu", selu, x)
    return Elu.apply(_float_only("selu", x), SELU_ALPHA, SELU_SCALE, 1.0)


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha (e**(x / alpha) - 1)."""
    if inplace:
        return _in_place("celu", celu, x, alpha)
    x = _float_only("celu", x)
    if _number("celu", "alpha", alpha) == 0:
        raise RuntimeError("celu: alpha cannot be 0 (CELU divides x by it)")
    return Elu.apply(x, alpha, 1.0, 1.0 / alpha)


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """x relu6(x + 3) / 6."""
    if inplace:
        return _in_place("hardswish", hardswish, x)
    return _hardswish(_float_only("hardswish", x))


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    if inplace:
        return _in_place("hardsigmoid", hardsigmoid, x)
    return _hardsigmoid(_float_only("hardsigmoid", x))


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|) (integers give float32, as torch)."""
    if _tensor("softsign", x).array.dtype.kind == "b":
        raise TypeError("softsign: bool tensors are not supported (as in torch)")
    return x / (E.abs(x) + 1)


def tanhshrink(x: Tensor) -> Tensor:
    """x - tanh(x) (integers give float32, as torch)."""
    return _tensor("tanhshrink", x) - tanh(x)


def threshold(x: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value (NaN stays NaN); the gradient passes where x > threshold."""
    if inplace:
        return _in_place("threshold", _threshold, x, threshold, value)
    return _threshold(x, threshold, value)


def _threshold(x, limit, value):
    _number("threshold", "threshold", limit)
    _number("threshold", "value", value)
    if _tensor("threshold", x).array.dtype.kind == "b":
        raise TypeError("threshold: bool tensors are not supported (as in torch)")
    if x.array.dtype.kind != "f":  # as torch: an integer result, value truncated to the dtype
        with device_guard(x.array):
            return Tensor._result(replay.op(_int_threshold, x.array, limit, value))
    return E.where(x <= limit, value, x)


def _int_threshold(array, limit, value):
    return xp_of(array).where(array <= limit, array.dtype.type(value), array)


def _shrink(x, lambd, shrunk):
    """shrunk where x < -lambd or x > lambd, else 0; NaN stays NaN, without a gradient (torch's
    mask passes the gradient only outside the band, and NaN is outside nothing)."""
    outside = (x < -lambd) | (x > lambd)
    return E.where(outside, shrunk, E.where(E.isnan(x), x.detach(), 0.0))


def hardshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """0 where -lambd <= x <= lambd, else x; the gradient passes only outside that band."""
    x = _float_only("hardshrink", x)
    return _shrink(x, _number("hardshrink", "lambd", lambd), x)


def softshrink(x: Tensor, lambd: float = 0.5) -> Tensor:
    """0 where -lambd <= x <= lambd, else x moved lambd towards 0; the gradient passes outside."""
    x = _float_only("softshrink", x)
    limit = float(np.finfo(x.array.dtype).max)
    if not 0 <= _number("softshrink", "lambd", lambd) <= limit:
        raise RuntimeError(
            f"softshrink: lambd must be in range [0, {limit:g}] for input dtype {x.dtype}, "
            f"but found {lambd}"
        )
    return _shrink(x, lambd, x - E.sign(x.detach()) * lambd)


def implicit_softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's guess when softmax / log_softmax / softmin get no dim, with its warning."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
        "dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmin(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x, dim); dtype: x is cast to it first. No dim: torch's guess, with a warning."""
    x = _tensor("softmin", x)
    if dim is None:
        dim = implicit_softmax_dim("softmin", x.ndim, _stacklevel)
    if dtype is not None:
        x = x.to(dtype)
    return E.exp(_log_softmax("softmin", -_float_only("softmin", x), dim))


def glu(x: Tensor, dim: int = -1) -> Tensor:
    """a sigmoid(b), a and b the first and second halves of x along dim."""
    from gpugrad.ops._operands import normalize_dim
    from gpugrad.ops.shape import narrow

    x = _float_only("glu", x)
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = normalize_dim("glu", dim, x.ndim)
    if x.shape[d] % 2:
        raise RuntimeError(
            f"glu: halving dimension must be even, but dimension {d} is size {x.shape[d]}"
        )
    half = x.shape[d] // 2
    return narrow(x, d, 0, half) * sigmoid(narrow(x, d, half, half))


def selu_(x: Tensor) -> Tensor:
    """selu written into x."""
    return selu(x, inplace=True)


def celu_(x: Tensor, alpha: float = 1.0) -> Tensor:
    """celu written into x."""
    return celu(x, alpha, inplace=True)


def threshold_(x: Tensor, threshold: float, value: float) -> Tensor:
    """threshold written into x."""
    return _in_place("threshold", _threshold, x, threshold, value)
