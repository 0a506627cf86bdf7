"""Activations. Sigmoid, tanh and ReLU run fused kernels in forward and backward; each
backward is itself a Function (SigmoidBackward, ...) whose own backward is written in
primitives, so the fused path stays twice differentiable. ReLU saves 1 bit per element.
Softplus is a Function too: as a composition its gradient at 0 came out 0 (the subgradients of
relu and abs), where it is sigmoid(0) = 1/2."""
from __future__ import annotations

import math

from gpugrad.autograd.function import Function
from gpugrad.backend import kernels, xp_of
from gpugrad.ops import elementwise as E
from gpugrad.ops._operands import promote
from gpugrad.tensor import Tensor


class Sigmoid(Function):
    arrays = True

    @staticmethod
    def forward(ctx, x):
        y = kernels.sigmoid_fwd(x)
        ctx.save_for_backward(y)  # only the output: dy/dx = y (1 - y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return SigmoidBackward.apply(y, g)

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return SigmoidBackward.apply(y, t)


class SigmoidBackward(Function):
    """gx = g * y * (1 - y) in one pass."""

    arrays = True

    @staticmethod
    def forward(ctx, y, g):
        ctx.save_for_backward(y, g)
        return kernels.sigmoid_bwd(y, g)

    @staticmethod
    def backward(ctx, u):
        y, g = ctx.saved_tensors
        grad_y = u * g * (1 - 2 * y) if ctx.needs_input_grad[0] else None
        grad_g = u * y * (1 - y) if ctx.needs_input_grad[1] else None
        return grad_y, grad_g

    @staticmethod
    def jvp(ctx, ty, tg):
        y, g = ctx.saved_tensors
        return ty * g * (1 - 2 * y) + tg * y * (1 - y)


class Tanh(Function):
    arrays = True

    @staticmethod
    def forward(ctx, x):
        y = kernels.tanh_fwd(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return TanhBackward.apply(y, g)

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return TanhBackward.apply(y, t)


class TanhBackward(Function):
    """gx = g * (1 - y**2) in one pass."""

    arrays = True

    @staticmethod
    def forward(ctx, y, g):
        ctx.save_for_backward(y, g)
        return kernels.tanh_bwd(y, g)

    @staticmethod
    def backward(ctx, u):
        y, g = ctx.saved_tensors
        grad_y = -2 * u * g * y if ctx.needs_input_grad[0] else None
        grad_g = u * (1 - y * y) if ctx.needs_input_grad[1] else None
        return grad_y, grad_g

    @staticmethod
    def jvp(ctx, ty, tg):
        y, g = ctx.saved_tensors
        return -2 * ty * g * y + tg * (1 - y * y)


class Relu(Function):
    arrays = True

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


class ReluBackward(Function):
    """gx = g where the saved bit is set: linear in g, so its backward is itself."""

    arrays = True

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


class Softplus(Function):
    """log(1 + e**(beta x)) / beta, and x itself where beta x > threshold (torch's rule)."""

    arrays = True

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


class SoftplusBackward(Function):
    """gx = g * sigmoid(beta x), and g itself where beta x > threshold: linear in g."""

    arrays = True

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


def _floating(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "f":
        (x,) = promote(name, x, floating=True)
    return x


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e**-x), numerically stable."""
    return Sigmoid.apply(_floating("sigmoid", x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(_floating("tanh", x))


def relu(x: Tensor) -> Tensor:
    """max(x, 0) as torch: NaN stays NaN, -0.0 stays -0.0; saves a bit-packed mask for backward."""
    return Relu.apply(x) if x.array.dtype.kind == "f" else Tensor._make(x.array * (x.array > 0))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return E.where(x > 0, x, x * negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (approximate='tanh': the tanh formula)."""
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + E.erf(x * (1 / math.sqrt(2))))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, linear where beta x > threshold; gradient sigmoid(beta x)."""
    return Softplus.apply(_floating("softplus", x), beta, threshold)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return x * sigmoid(x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x - logsumexp(x, dim): log-probabilities, stable."""
    from gpugrad.ops import reduce as R

    x = _floating("log_softmax", x)
    if x.array.size == 0:
        return x - R.logsumexp(x, dim, keepdim=True)
    # torch's formula, x - max - log(sum(exp(x - max))): unlike logsumexp, which treats an
    # infinite max as 0, a row holding +inf (inf - inf) is NaN throughout, and so is its gradient
    shifted = x - R.amax(x.detach(), dim, keepdim=True)
    return shifted - E.log(R.sum(E.exp(shifted), dim, keepdim=True))


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x), dim), stable."""
    return E.exp(log_softmax(x, dim))
