"""gradcheck / gradgradcheck: analytic derivatives (reverse, optionally forward mode) against
float64 central differences; a failure names the input and its worst element."""
from __future__ import annotations

import numpy as np

from gpugrad.autograd import engine, forward_ad
from gpugrad.autograd.mode import enable_grad, no_grad
from gpugrad.backend import device_guard
from gpugrad.tensor import Tensor


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _flat_outputs(fn, inputs):
    outs = _as_tuple(fn(*inputs))
    return [o for o in outs if isinstance(o, Tensor) and o.array.dtype.kind == "f"]


def _host(t: Tensor) -> np.ndarray:
    return np.array(t.detach().cpu().array, dtype=np.float64)  # a copy: outputs may alias inputs


def _numerical(fn, inputs, i, eps):
    """d outputs / d inputs[i] by central differences: a list (per output) of (out.size, in.size)."""
    x = inputs[i]
    array = x.array
    flat = array.reshape(-1)  # a view: perturb in place, restore after
    with no_grad(), device_guard(array):
        base = _flat_outputs(fn, inputs)
        cols = [np.zeros((o.array.size, array.size)) for o in base]
        for k in range(array.size):
            orig = flat[k].item()
            flat[k] = orig + eps
            plus = [_host(o).ravel() for o in _flat_outputs(fn, inputs)]
            flat[k] = orig - eps
            minus = [_host(o).ravel() for o in _flat_outputs(fn, inputs)]
            flat[k] = orig
            for c, p, m in zip(cols, plus, minus):
                c[:, k] = (p - m) / (2 * eps)
    return cols


def _analytical(fn, inputs, diff_idx):
    """Reverse mode: one vector-Jacobian product per output element."""
    with enable_grad():
        outs = _flat_outputs(fn, inputs)
    jac = {(o, i): np.zeros((out.array.size, inputs[i].array.size)) for o, out in enumerate(outs) for i in diff_idx}
    for o, out in enumerate(outs):
        if not out.requires_grad:
            continue
        for j in range(out.array.size):
            seed = np.zeros(out.array.size, dtype=out.array.dtype)
            seed[j] = 1
            seed_t = Tensor._make(_to_device_like(seed.reshape(out.shape), out))
            grads = engine.grad([out], [inputs[i] for i in diff_idx], [seed_t], retain_graph=True, allow_unused=True)
            for i, g in zip(diff_idx, grads):
                if g is not None:
                    jac[(o, i)][j, :] = _host(g).ravel()
    return outs, jac


def _forward_mode(fn, inputs, i):
    """Forward mode: one jvp per element of inputs[i]; returns per-output (out.size, in.size)."""
    x = inputs[i]
    cols = None
    for k in range(x.array.size):
        tangent = np.zeros(x.array.size, dtype=x.array.dtype)
        tangent[k] = 1
        with forward_ad.dual_level():
            dual = forward_ad.make_dual(x, Tensor._make(_to_device_like(tangent.reshape(x.shape), x)))
            args = list(inputs)
            args[i] = dual
            outs = _flat_outputs(fn, args)
            tangents = [forward_ad.unpack_dual(o).tangent for o in outs]
        if cols is None:
            cols = [np.zeros((o.array.size, x.array.size)) for o in outs]
        for c, t in zip(cols, tangents):
            if t is not None:
                c[:, k] = _host(t).ravel()
    return cols or []


def _to_device_like(array, like: Tensor):
    from gpugrad import backend

    return backend.to_device(array, like.device)


def _compare(what, i, o, analytic, numeric, atol, rtol, shape):
    err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if err.size and err.max() > 0:
        row, col = np.unravel_index(int(np.argmax(err)), err.shape)
        elem = tuple(int(v) for v in np.unravel_index(col, shape)) if shape else ()
        raise GradcheckError(
            f"{what} mismatch for input {i}, output {o}: worst at output element {row}, input "
            f"element {elem}: analytic {analytic[row, col]:.8g} vs numeric {numeric[row, col]:.8g} "
            f"(atol={atol}, rtol={rtol})"
        )


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              check_forward_ad=False, check_backward_ad=True) -> bool:
    """Check reverse-mode (and optionally forward-mode) derivatives of fn against finite differences."""
    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    coarse = [i for i in diff_idx if inputs[i].array.dtype != np.float64]
    for i in coarse:
        import warnings

        warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}, not float64: expect false failures", stacklevel=2)
    try:
        numeric = {i: _numerical(fn, inputs, i, eps) for i in diff_idx}
        if check_backward_ad:
            outs, jac = _analytical(fn, inputs, diff_idx)
            for i in diff_idx:
                for o in range(len(outs)):
                    _compare("backward", i, o, jac[(o, i)], numeric[i][o], atol, rtol, inputs[i].shape)
        if check_forward_ad:
            for i in diff_idx:
                for o, col in enumerate(_forward_mode(fn, inputs, i)):
                    _compare("forward (jvp)", i, o, col, numeric[i][o], atol, rtol, inputs[i].shape)
    except GradcheckError as exc:
        if not raise_exception:
            return False
        if coarse:
            names = ", ".join(f"input {i} is {inputs[i].dtype}" for i in coarse)
            raise GradcheckError(
                f"{exc}\n({names}, not float64: finite differences in low precision are often "
                "too inexact for these tolerances; check in float64)"
            ) from None
        raise
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, check_fwd_over_rev=False) -> bool:
    """gradcheck of the vector-Jacobian product of fn (double backward), w.r.t. inputs and
    the upstream gradients (random when grad_outputs is None)."""
    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad():
        outs = _flat_outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [
            Tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device, requires_grad=True) for o in outs
        ]
    grad_outputs = list(_as_tuple(grad_outputs))
    n_in = len(inputs)

    def vjp(*args):
        xs, vs = args[:n_in], args[n_in:]
        with enable_grad():
            ys = [y for y in _flat_outputs(fn, xs) if y.requires_grad]
            grads = engine.grad(ys, [xs[i] for i in diff_idx], list(vs)[: len(ys)], create_graph=True,
                                allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(vjp, tuple(inputs) + tuple(grad_outputs), eps, atol, rtol, raise_exception,
                     check_forward_ad=check_fwd_over_rev)
