"""Matrix products. dX = dY·Wᵀ and dW = Xᵀ·dY are themselves matmuls of transposed views
(no Jacobian, no transposed copy); batch broadcasting is summed away by the engine."""
from __future__ import annotations

from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import kernels
from gpugrad.ops import shape as S
from gpugrad.ops._operands import promote
from gpugrad.ops.activation import FROM_OUTPUT
from gpugrad.tensor import Tensor


class MatMul(ArrayFunction):
    """a @ b for a, b with >= 2 dimensions (leading dimensions broadcast)."""

    @staticmethod
    def forward(ctx, a, b):
        # dA needs B and dB needs A: keep only what a requested gradient (or jvp) will read
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b or ctx.forward_ad else None, b if need_a or ctx.forward_ad else None)
        # b = Wᵀ (Linear's weight seen through a transpose): dB is then best made as (gᵀ·a)ᵀ,
        # so that dW = gᵀ·a comes out in W's own row-major layout (no strided copy later)
        ctx.b_transposed = b.ndim == 2 and b.flags.f_contiguous and not b.flags.c_contiguous
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = matmul(g, S.transpose(b, -1, -2)) if ctx.needs_input_grad[0] else None
        grad_b = None
        if ctx.needs_input_grad[1]:
            if ctx.b_transposed and g.ndim == 2 and a.ndim == 2:
                grad_b = S.transpose(matmul(S.transpose(g, 0, 1), a), 0, 1)
            else:
                grad_b = matmul(S.transpose(a, -1, -2), g)
        return grad_a, grad_b

    jvp_none_ok = True

    @staticmethod
    def jvp(ctx, ta, tb):
        a, b = ctx.saved_tensors
        if tb is None:
            return matmul(ta, b)
        return matmul(a, tb) if ta is None else matmul(ta, b) + matmul(a, tb)


class BiasAct(ArrayFunction):
    """y = act(z + bias) for a 2-D z: Linear's epilogue in one fused pass."""

    @staticmethod
    def forward(ctx, z, bias, act):
        y = kernels.bias_act_fwd(z, bias, act)
        ctx.act = act
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        grad_z, grad_bias = BiasActBackward.apply(y, g, ctx.act)
        return grad_z, grad_bias, None

    @staticmethod
    def jvp(ctx, tz, tb, _act):
        (y,) = ctx.saved_tensors
        return BiasActBackward.apply(y, tz + tb, ctx.act)[0]


class BiasActBackward(ArrayFunction):
    """(gz, gbias) = (g * act'(y), sum_rows(g * act'(y))) in one pass."""

    @staticmethod
    def forward(ctx, y, g, act):
        ctx.act = act
        ctx.save_for_backward(y, g)
        return kernels.bias_act_bwd(y, g, act)

    @staticmethod
    def _slopes(act, y):
        """act'(z) and d act'(z) / dy in terms of y, from the activations' table (None: 1, 0)."""
        slope, curvature = FROM_OUTPUT[act]
        return (None if slope is None else slope(y)), (None if curvature is None else curvature(y))

    @staticmethod
    def backward(ctx, u_z, u_bias):
        y, g = ctx.saved_tensors
        upstream = u_z + u_bias  # gbias = sum over rows of gz: its gradient broadcasts back
        slope, curvature = BiasActBackward._slopes(ctx.act, y)
        grad_y = upstream * g * curvature if curvature is not None and ctx.needs_input_grad[0] else None
        grad_g = upstream * slope if slope is not None else upstream
        return grad_y, grad_g, None

    @staticmethod
    def jvp(ctx, ty, tg, _act):
        y, g = ctx.saved_tensors
        slope, curvature = BiasActBackward._slopes(ctx.act, y)
        tz = tg * slope if slope is not None else tg
        if curvature is not None:
            tz = tz + ty * g * curvature
        from gpugrad.ops.reduce import sum as reduce_sum

        return tz, reduce_sum(tz, 0)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics (1-D operands, batch broadcasting)."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both arguments need at least 1 dimension, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.array.dtype != b.array.dtype:
        a, b = promote("matmul", a, b, broadcast=False)
    inner_a = a.shape[-1]
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align: {inner_a} != {inner_b}"
        )
    if a.ndim == 1 or b.ndim == 1:
        a2 = S.unsqueeze(a, 0) if a.ndim == 1 else a
        b2 = S.unsqueeze(b, -1) if b.ndim == 1 else b
        out = matmul(a2, b2)
        if b.ndim == 1:
            out = S.squeeze(out, -1)
        if a.ndim == 1:
            out = S.squeeze(out, -2 if b.ndim > 1 else -1)
        return out
    if a.ndim > 2 or b.ndim > 2:
        import numpy as np

        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast"
            ) from None
    from gpugrad.ops._operands import same_device

    same_device("matmul", a, b)
    return MatMul.apply(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """2-D matrix product."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects 2-D tensors, got {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, weight of shape (out_features, in_features)."""
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input of shape {tuple(x.shape)} has {x.shape[-1]} features but weight "
            f"{tuple(weight.shape)} expects {weight.shape[-1]}"
        )
    out = matmul(x, S.transpose(weight, 0, 1))
    return out if bias is None else out + bias


def linear_act(x: Tensor, weight: Tensor, bias: Tensor, activation: str = "identity") -> Tensor:
    """act(x @ weightᵀ + bias) with the bias and activation fused into one pass (2-D x)."""
    if activation not in kernels.ACTIVATIONS:
        raise ValueError(f"linear_act: activation must be one of {sorted(kernels.ACTIVATIONS)}")
    z = linear(x, weight)
    if x.ndim != 2 or bias is None or bias.array.dtype != z.array.dtype:
        from gpugrad.ops import activation as A

        out = z if bias is None else z + bias
        return {"identity": lambda t: t, "relu": A.relu, "sigmoid": A.sigmoid, "tanh": A.tanh}[activation](out)
    return BiasAct.apply(z, bias, activation)
