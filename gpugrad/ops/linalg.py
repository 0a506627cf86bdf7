"""Matrix products. dX = dY·Wᵀ and dW = Xᵀ·dY are themselves matmuls of transposed views
(no Jacobian, no transposed copy); batch broadcasting is summed away by the engine."""
from __future__ import annotations

import numpy as np

from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import kernels, threads
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
        return threads.matmul(a, b) if type(a) is np.ndarray else a @ b  # small: one BLAS thread

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
    _check_linear("linear", x, weight, bias)
    out = matmul(x, S.transpose(weight, 0, -1))
    return out if bias is None else out + bias


def _check_linear(name: str, x: Tensor, weight: Tensor, bias) -> None:
    if x.ndim == 0 or weight.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected an input of at least 1 dimension and a 1-D or 2-D weight, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"{name}: input of shape {tuple(x.shape)} has {x.shape[-1]} features but weight "
            f"{tuple(weight.shape)} expects {weight.shape[-1]}"
        )
    out_features = weight.shape[:1] if weight.ndim == 2 else ()
    if bias is not None and not S.expandable(tuple(bias.shape), out_features):
        raise ValueError(
            f"{name}: bias of shape {tuple(bias.shape)} does not fit the weight's "
            f"{out_features[0] if out_features else 'scalar'} output features"
        )


def linear_act(x: Tensor, weight: Tensor, bias: Tensor, activation: str = "identity") -> Tensor:
    """act(x @ weightᵀ + bias) with the bias and activation fused into one pass (2-D x)."""
    if activation not in kernels.ACTIVATIONS:
        raise ValueError(f"linear_act: activation must be one of {sorted(kernels.ACTIVATIONS)}")
    _check_linear("linear_act", x, weight, bias)
    z = linear(x, weight)
    if x.ndim != 2 or bias is None or bias.array.dtype != z.array.dtype:
        from gpugrad.ops import activation as A

        out = z if bias is None else z + bias
        return {"identity": lambda t: t, "relu": A.relu, "sigmoid": A.sigmoid, "tanh": A.tanh}[activation](out)
    return BiasAct.apply(z, bias, activation)


# ---- more products: compositions of matmul, so their rules come from MatMul's ----------------
def _matrix(name: str, arg: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: {arg} must be a Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise RuntimeError(f"{name}: {arg} must be a matrix, got {x.ndim}-D tensor")
    return x


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (mat1 @ mat2); with beta = 0, input is ignored (NaN included)."""
    for what, number in (("beta", beta), ("alpha", alpha)):
        if not isinstance(number, (int, float, np.number)):
            raise TypeError(f"addmm: {what} must be a number, got {number!r}")
    _matrix("addmm", "mat1", mat1), _matrix("addmm", "mat2", mat2)
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(
            f"addmm: mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} "
            f"and {mat2.shape[0]}x{mat2.shape[1]})"
        )
    if not S.expandable(tuple(input.shape), (mat1.shape[0], mat2.shape[1])):  # even with beta 0
        raise RuntimeError(
            f"addmm: input of shape {tuple(input.shape)} cannot be broadcast to the product's "
            f"shape {(mat1.shape[0], mat2.shape[1])}"
        )
    product = matmul(mat1, mat2)
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return (input if beta == 1 else input * beta) + product


def bmm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """Batched matrix product of (b, n, m) and (b, m, p) tensors (no broadcasting)."""
    for arg, x in (("batch1", input), ("batch2", mat2)):
        if not isinstance(x, Tensor) or x.ndim != 3:
            raise RuntimeError(f"bmm: {arg} must be a 3D tensor")
    expected = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != expected:
        raise RuntimeError(
            f"bmm: Expected size for first two dimensions of batch2 tensor to be: {expected} but "
            f"got: {list(mat2.shape[:2])}."
        )
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Inner product of two 1-D tensors of the same size."""
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(
            f"dot: 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors"
        )
    if input.shape != other.shape:
        raise RuntimeError(
            f"dot: inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
            f"[{other.shape[0]}] to have the same number of elements, but got {input.shape[0]} "
            f"and {other.shape[0]} elements respectively"
        )
    return matmul(input, other)


def mv(input: Tensor, vec: Tensor) -> Tensor:  # noqa: A002
    """Matrix (n, m) times vector (m,)."""
    if isinstance(input, Tensor) and input.ndim == 0:  # torch's message for it
        raise IndexError("mv: dimension 0 specified, but the input has no dimensions")
    _matrix("mv", "input", input)
    if vec.ndim != 1:
        raise RuntimeError(f"mv: vec must be a vector, got {vec.ndim}-D tensor")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(
            f"mv: size mismatch, input {tuple(input.shape)}, vec {tuple(vec.shape)}"
        )
    return matmul(input, vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    """out[i, j] = input[i] * vec2[j] for 1-D tensors."""
    for arg, x in (("self", input), ("vec2", vec2)):
        if x.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {arg}, but got {x.ndim}-D")
    return S.unsqueeze(input, 1) * S.unsqueeze(vec2, 0)


def _einsum_labels(equation: str, operands) -> tuple[list[list[str]], list[str]]:
    """Each operand's labels (one letter per dimension, '...' expanded to reserved symbols,
    right-aligned) and the output's labels."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError(
            "einsum(): more operands were provided than specified in the equation"
            if len(operands) > len(terms)
            else "einsum(): fewer operands were provided than specified in the equation"
        )
    ellipsis_ndim = 0
    for term, x in zip(terms, operands):
        letters = term.replace("...", "")
        if any(not c.isalpha() for c in letters):
            raise RuntimeError(f"einsum(): invalid subscript given in the equation: {term!r}")
        if "..." in term:
            ellipsis_ndim = max(ellipsis_ndim, x.ndim - len(letters))
        elif len(letters) != x.ndim:
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({len(letters)}) does not "
                f"match the number of dimensions ({x.ndim}) for operand {terms.index(term)} and "
                "no ellipsis was given"
            )
    reserved = [chr(0x100 + i) for i in range(ellipsis_ndim)]  # not letters a user can write
    labels = []
    for term, x in zip(terms, operands):
        head, _, tail = term.partition("...")
        covered = x.ndim - len(head) - len(tail)  # dimensions the ellipsis stands for
        middle = reserved[ellipsis_ndim - covered :] if "..." in term else []
        labels.append(list(head) + middle + list(tail))
    if arrow:
        head, _, tail = output.partition("...")
        out = list(head) + (reserved if "..." in output else []) + list(tail)
        for label in out:
            if out.count(label) > 1:
                raise RuntimeError(
                    f"einsum(): output subscript {label} appears more than once in the output"
                )
            if not any(label in ls for ls in labels):
                raise RuntimeError(
                    f"einsum(): output subscript {label} does not appear in the equation for "
                    "any input operand"
                )
    else:
        counts = {}
        for ls in labels:
            for label in ls:
                counts[label] = counts.get(label, 0) + 1
        once = (label for label, n in counts.items() if n == 1 and label not in reserved)
        out = reserved + sorted(once)
    return labels, out


def _einsum_diagonal(x: Tensor, labels: list[str]) -> tuple[Tensor, list[str]]:
    """Take the diagonal over each label that repeats within one operand ('ii' -> 'i')."""
    import numpy as np

    while len(set(labels)) != len(labels):
        label = next(c for c in labels if labels.count(c) > 1)
        first, second = [i for i, c in enumerate(labels) if c == label][:2]
        rest = [i for i in range(x.ndim) if i not in (first, second)]
        moved = _permuted(x, [*rest, first, second])
        n = x.shape[first]
        x = S.getitem(moved, (Ellipsis, np.arange(n), np.arange(n)))
        labels = [labels[i] for i in rest] + [label]
    return x, labels


def _einsum_sum_out(x: Tensor, labels: list[str], keep: set) -> tuple[Tensor, list[str]]:
    from gpugrad.ops.reduce import sum as reduce_sum

    drop = tuple(i for i, c in enumerate(labels) if c not in keep)
    if not drop:
        return x, labels
    return reduce_sum(x, drop), [c for c in labels if c in keep]


def _einsum_pair(a, la, b, lb, keep: set):
    """Contract two operands with one matmul: (batch, left, summed) @ (batch, summed, right)."""
    a, la = _einsum_sum_out(a, la, keep | set(lb))
    b, lb = _einsum_sum_out(b, lb, keep | set(la))
    size = {}
    for x, ls in ((a, la), (b, lb)):
        for c, s in zip(ls, x.shape):
            size[c] = s if size.get(c, 1) == 1 else size[c]
    a = S.expand(a, *[size[c] for c in la])  # size-1 dimensions broadcast against the other's
    b = S.expand(b, *[size[c] for c in lb])
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]

    def prod(labels):
        n = 1
        for c in labels:
            n *= size[c]
        return n

    a = _permuted(a, [la.index(c) for c in batch + left + summed])
    b = _permuted(b, [lb.index(c) for c in batch + summed + right])
    lead = (prod(batch),) if batch else ()
    a = S.reshape(a, lead + (prod(left), prod(summed)))
    b = S.reshape(b, lead + (prod(summed), prod(right)))
    out = S.reshape(matmul(a, b), tuple(size[c] for c in batch + left + right))
    return out, batch + left + right


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. 'bi,oi->bo', 'bij,bjk->bik', 'i,i->', 'ii->i', '...ij->...ji'.
    Operands are contracted left to right, each pair by one matmul; no Jacobian, no big product."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:  # torch's Python wrapper raises a ValueError here
        raise ValueError("einsum(): must provide at least one operand")
    for i, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, got {type(x).__name__}")
    if len(operands) > 1:
        operands = promote("einsum", *operands, broadcast=False)
    labels, out = _einsum_labels(equation, operands)
    size = {}
    for index, (x, ls) in enumerate(zip(operands, labels)):
        for c, s in zip(ls, x.shape):
            if size.get(c, 1) != 1 and s != 1 and s != size[c]:
                raise RuntimeError(
                    f"einsum(): subscript {c} has size {s} for operand {index} which does not "
                    f"broadcast with previously seen size {size[c]}"
                )
            size[c] = s if size.get(c, 1) == 1 else size[c]
    items = [_einsum_diagonal(x, list(ls)) for x, ls in zip(operands, labels)]
    result, result_labels = items[0]
    for k in range(1, len(items)):
        later = {c for _, ls in items[k + 1 :] for c in ls}
        result, result_labels = _einsum_pair(result, result_labels, *items[k], set(out) | later)
    result, result_labels = _einsum_sum_out(result, result_labels, set(out))
    result = S.expand(result, *[size[c] for c in result_labels])
    return _permuted(result, [result_labels.index(c) for c in out])


def _permuted(x: Tensor, order: list) -> Tensor:
    return x if order == list(range(x.ndim)) else S.permute(x, *order)
