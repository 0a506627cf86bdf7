"""gg.func: composable function transforms with torch.func's conventions — grad, vjp, jvp,
hvp (forward-over-reverse), jacrev, jacfwd, hessian. Built on the same graph: reverse
transforms keep create_graph on, so they nest with each other and with forward mode."""
from __future__ import annotations

from gpugrad import backend
from gpugrad.autograd import engine, forward_ad
from gpugrad.autograd.forward_ad import _alias
from gpugrad.autograd.mode import enable_grad
from gpugrad.tensor import Tensor


def _argnums_tuple(argnums, n):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"argnums {a} out of range for {n} positional arguments")
    return tuple(a % n for a in nums)


def _track(x: Tensor) -> Tensor:
    """A differentiable stand-in for x: keeps x's graph and tangent when it has them."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected Tensor arguments to differentiate, got {type(x).__name__}")
    if x.requires_grad:
        with enable_grad():
            return _alias(x)
    leaf = Tensor._make(x.array, True, vbox=x._vbox)
    if x._tangent is not None:
        leaf._tangent = x._tangent
    return leaf


def _outer(xs) -> bool:
    return any(isinstance(x, Tensor) and (x.requires_grad or x._tangent is not None) for x in xs)


def _finish(t, keep):
    if t is None or keep:
        return t
    return t.detach()


def vjp(f, *primals, has_aux=False):
    """(f(*primals), vjp_fn) where vjp_fn(v) returns v·J for each primal."""
    tracked = [_track(p) for p in primals]
    keep = _outer(primals)
    with enable_grad():
        result = f(*tracked)
    out, aux = result if has_aux else (result, None)

    def vjp_fn(*cotangents):
        outs = out if isinstance(out, (tuple, list)) else (out,)
        cots = cotangents if len(cotangents) == len(outs) else cotangents[0]
        with enable_grad():
            grads = engine.grad(list(outs), tracked, list(cots) if isinstance(cots, (tuple, list)) else [cots],
                                retain_graph=True, create_graph=True, allow_unused=True, materialize_grads=True)
        return tuple(_finish(g, keep) for g in grads)

    shown = out if keep else (tuple(o.detach() for o in out) if isinstance(out, (tuple, list)) else out.detach())
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def grad_and_value(f, argnums=0, has_aux=False):
    """Function returning (d f / d args[argnums], f(args)) for a scalar f."""

    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        keep = _outer(args)
        args = list(args)
        tracked = {i: _track(args[i]) for i in nums}
        for i, t in tracked.items():
            args[i] = t
        with enable_grad():
            result = f(*args)
            out, aux = result if has_aux else (result, None)
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise RuntimeError("grad: f must return a scalar (one-element) tensor")
            grads = engine.grad([out], [tracked[i] for i in nums], create_graph=True, allow_unused=True,
                                materialize_grads=True)
        grads = tuple(_finish(g, keep) for g in grads)
        g = grads[0] if isinstance(argnums, int) else grads
        value = out if keep else out.detach()
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(f, argnums=0, has_aux=False):
    """Function returning d f / d args[argnums] for a scalar-valued f."""
    inner = grad_and_value(f, argnums, has_aux)

    def wrapper(*args):
        g, value = inner(*args)
        return (g, value[1]) if has_aux else g

    return wrapper


def jvp(f, primals, tangents, has_aux=False):
    """(f(*primals), J·tangents) by forward mode."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in zip(primals, tangents)]
        result = f(*duals)
        out, aux = result if has_aux else (result, None)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        pairs = [forward_ad.unpack_dual(o) for o in outs]
    from gpugrad import creation

    keep = any(isinstance(t, Tensor) and t.requires_grad for t in primals + tangents)
    primal_out = tuple(_finish(p.primal, keep) for p in pairs)
    tangent_out = tuple(
        _finish(p.tangent, keep) if p.tangent is not None else creation.zeros_like(p.primal) for p in pairs
    )
    if not isinstance(out, (tuple, list)):
        primal_out, tangent_out = primal_out[0], tangent_out[0]
    return (primal_out, tangent_out, aux) if has_aux else (primal_out, tangent_out)


def hvp(f, primals, v):
    """(f(*primals), H·v), forward-over-reverse, as torch.autograd.functional.hvp returns."""
    primals = tuple(primals) if isinstance(primals, (tuple, list)) else (primals,)
    vs = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    argnums = tuple(range(len(primals)))
    value, tangent = jvp(lambda *xs: grad(f, argnums)(*xs), primals, vs)
    out = f(*primals)
    out = out.detach() if isinstance(out, Tensor) else out
    tangent = tangent[0] if len(primals) == 1 and isinstance(tangent, tuple) else tangent
    return out, tangent


def _basis(x: Tensor):
    from gpugrad import creation

    flat = creation.zeros(x.numel(), dtype=x.dtype, device=x.device)
    for k in range(x.numel()):
        with backend.device_guard(flat.array):
            e = flat.array.copy()
            e[k] = 1
        yield Tensor._make(e.reshape(x.shape))


def jacrev(f, argnums=0):
    """Jacobian by reverse mode: one vector-Jacobian product per output element.
    Shape: out.shape + arg.shape (a tuple over argnums when argnums is a tuple)."""
    from gpugrad.ops import reshape, stack

    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        out, vjp_fn = vjp(lambda *xs: f(*xs), *args)
        rows = [vjp_fn(e) for e in _basis(out)]
        jacs = []
        for i in nums:
            stacked = stack([r[i] for r in rows]) if rows else None
            jacs.append(reshape(stacked, tuple(out.shape) + tuple(args[i].shape)))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapper


def jacfwd(f, argnums=0):
    """Jacobian by forward mode: one Jacobian-vector product per input element."""
    from gpugrad import creation
    from gpugrad.ops import reshape, stack

    def wrapper(*args):
        nums = _argnums_tuple(argnums, len(args))
        jacs = []
        for i in nums:
            cols = []
            for e in _basis(args[i]):
                tangents = [e if j == i else creation.zeros_like(a) for j, a in enumerate(args)]
                out, col = jvp(f, args, tangents)
                cols.append(reshape(col, -1))
            stacked = stack(cols, dim=1)  # (out.numel(), arg.numel())
            jacs.append(reshape(stacked, tuple(out.shape) + tuple(args[i].shape)))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return wrapper


def hessian(f, argnums=0):
    """Hessian of a scalar f: jacfwd(jacrev(f))."""
    return jacfwd(jacrev(f, argnums), argnums)
