"""Kernel dispatch: one name -> CUDA extension | CuPy kernel | C++ CPU kernel | array reference.

Every kernel has a reference written with the array module `xp` (NumPy or CuPy): it is the
fallback and the test oracle. CPU arrays go to gpugrad._C when it is built (and the array is
large enough to pay for the call), CuPy arrays to gpugrad.backend.cuda_kernels (which picks
gpugrad._cuda, else a CuPy RawKernel). `use("reference" | "native" | "cupy")` forces a level.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from gpugrad.backend import device_guard, xp_of

LEVELS = ("native", "cupy", "reference")
NATIVE_MIN_SIZE = 2048  # below this the C++ call costs more than NumPy's own loop
_state = {"forced": os.environ.get("GPUGRAD_KERNELS") or None, "C": None, "C_loaded": False}


@contextlib.contextmanager
def use(level: str):
    """Force a kernel level inside the block (tests use it to check every level)."""
    if level not in LEVELS:
        raise ValueError(f"kernel level must be one of {LEVELS}, got {level!r}")
    prev = _state["forced"]
    _state["forced"] = level
    try:
        yield
    finally:
        _state["forced"] = prev


def forced_level() -> str | None:
    return _state["forced"]


def native_cpu():
    """gpugrad._C, or None when it was not built."""
    if not _state["C_loaded"]:
        try:
            from gpugrad import _C
        except ImportError:
            _C = None
        _state["C"], _state["C_loaded"] = _C, True
    return _state["C"]


def native_cuda():
    from gpugrad.backend import cuda_kernels

    return cuda_kernels.native()


def _cpu_native(*arrays):
    """gpugrad._C when it should run these (float32/64) arrays, else None."""
    forced = _state["forced"]
    if forced == "reference":
        return None
    C = native_cpu()
    if C is None:
        if forced == "native":
            raise RuntimeError("kernel level 'native' forced but gpugrad._C is not built")
        return None
    if arrays[0].dtype not in (np.float32, np.float64):
        return None
    if forced != "native" and arrays[0].size < NATIVE_MIN_SIZE:
        return None
    return C


def _cuda(x):
    """The cuda_kernels module when x is a CuPy array and a GPU level applies, else None."""
    if isinstance(x, np.ndarray) or _state["forced"] == "reference":
        return None
    from gpugrad.backend import cuda_kernels

    return cuda_kernels


def _ptr(a) -> int:
    return a.__array_interface__["data"][0]


def _c(a):
    return np.ascontiguousarray(a)


# ---- sigmoid / tanh ---------------------------------------------------------------------
def sigmoid_fwd(x):
    """y = 1 / (1 + exp(-x)), never exponentiating a large positive number."""
    if (cu := _cuda(x)) is not None:
        return cu.sigmoid_fwd(x, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x = _c(x)
        y = np.empty_like(x)
        C.sigmoid_fwd(_ptr(x), _ptr(y), x.size, x.dtype.name)
        return y
    return sigmoid_fwd_reference(x)


def sigmoid_fwd_reference(x):
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_bwd(y, g):
    """gx = g * y * (1 - y), from the sigmoid's output y."""
    if (cu := _cuda(y)) is not None:
        return cu.sigmoid_bwd(y, g, _state["forced"])
    if (C := _cpu_native(y)) is not None and g.shape == y.shape and g.dtype == y.dtype:
        y, g = _c(y), _c(g)
        gx = np.empty_like(y)
        C.sigmoid_bwd(_ptr(y), _ptr(g), _ptr(gx), y.size, y.dtype.name)
        return gx
    return g * y * (1 - y)


def tanh_fwd(x):
    if (cu := _cuda(x)) is not None:
        return cu.tanh_fwd(x, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x = _c(x)
        y = np.empty_like(x)
        C.tanh_fwd(_ptr(x), _ptr(y), x.size, x.dtype.name)
        return y
    return xp_of(x).tanh(x)


def tanh_bwd(y, g):
    """gx = g * (1 - y**2), from tanh's output y."""
    if (cu := _cuda(y)) is not None:
        return cu.tanh_bwd(y, g, _state["forced"])
    if (C := _cpu_native(y)) is not None and g.shape == y.shape and g.dtype == y.dtype:
        y, g = _c(y), _c(g)
        gx = np.empty_like(y)
        C.tanh_bwd(_ptr(y), _ptr(g), _ptr(gx), y.size, y.dtype.name)
        return gx
    return g * (1 - y * y)


# ---- relu with a bit-packed mask ------------------------------------------------------------
def mask_words(n: int) -> int:
    return (n + 31) // 32


def relu_fwd(x):
    """(y, mask): y = 0 where x < 0 else x (NaN and -0.0 pass through, as torch.relu); mask =
    uint32 words, bit j of word w set unless x[32w+j] <= 0 (so set for NaN: torch passes the
    gradient there)."""
    if (cu := _cuda(x)) is not None:
        return cu.relu_fwd(x, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x = _c(x)
        y = np.empty_like(x)
        mask = np.empty(mask_words(x.size), dtype=np.uint32)
        C.relu_fwd(_ptr(x), _ptr(y), _ptr(mask), x.size, x.dtype.name)
        return y, mask
    return relu_fwd_reference(x)


def relu_fwd_reference(x):
    xp = xp_of(x)
    active = ~(x <= 0)
    packed = xp.packbits(active.ravel(), bitorder="little")
    words = xp.zeros(mask_words(x.size) * 4, dtype=xp.uint8)
    words[: packed.size] = packed
    return relu_reference(x), words.view(xp.uint32)


def relu_reference(x):
    """0 where x < 0, else x itself: NaN stays NaN and -0.0 stays -0.0, as in torch."""
    return xp_of(x).where(x < 0, x.dtype.type(0), x)


def relu_mask_bits(mask, shape):
    """The boolean mask (not x <= 0) unpacked from its words."""
    xp = xp_of(mask)
    n = int(np.prod(shape))
    return xp.unpackbits(mask.view(xp.uint8), bitorder="little")[:n].reshape(shape).astype(bool)


def relu_bwd(g, mask):
    """gx = g where the saved bit is set, else 0."""
    if (cu := _cuda(g)) is not None:
        return cu.relu_bwd(g, mask, _state["forced"])
    if (C := _cpu_native(g)) is not None:
        g = _c(g)
        gx = np.empty_like(g)
        C.relu_bwd(_ptr(g), _ptr(mask), _ptr(gx), g.size, g.dtype.name)
        return gx
    return xp_of(g).where(relu_mask_bits(mask, g.shape), g, 0).astype(g.dtype, copy=False)


# ---- bias + activation (Linear's epilogue) ----------------------------------------------------
ACTIVATIONS = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def bias_act_fwd(x, bias, act: str):
    """y = act(x + bias) for a (rows, cols) x and a (cols,) bias."""
    if (cu := _cuda(x)) is not None:
        return cu.bias_act_fwd(x, bias, act, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x, bias = _c(x), _c(bias)
        y = np.empty_like(x)
        C.bias_act_fwd(_ptr(x), _ptr(bias), _ptr(y), x.shape[0], x.shape[1], ACTIVATIONS[act], x.dtype.name)
        return y
    z = x + bias
    if act == "relu":
        return relu_reference(z)
    if act == "sigmoid":
        return sigmoid_fwd_reference(z)
    if act == "tanh":
        return xp_of(x).tanh(z)
    return z


def bias_act_bwd(y, g, act: str):
    """(gx, gbias): gx = g * act'(from y), gbias = gx summed over rows."""
    if (cu := _cuda(y)) is not None:
        return cu.bias_act_bwd(y, g, act, _state["forced"])
    if (C := _cpu_native(y)) is not None:
        y, g = _c(y), _c(g)
        gx = np.empty_like(y)
        gbias = np.empty(y.shape[1], dtype=y.dtype)
        C.bias_act_bwd(_ptr(y), _ptr(g), _ptr(gx), _ptr(gbias), y.shape[0], y.shape[1], ACTIVATIONS[act], y.dtype.name)
        return gx, gbias
    if act == "relu":
        gx = xp_of(y).where(y <= 0, y.dtype.type(0), g)  # NaN passes g, as torch
    elif act == "sigmoid":
        gx = g * y * (1 - y)
    elif act == "tanh":
        gx = g * (1 - y * y)
    else:
        gx = g
    gx = gx.astype(y.dtype, copy=False)
    return gx, gx.sum(axis=0)


# ---- softmax cross-entropy rows -----------------------------------------------------------
def softmax_xent_fwd(x, target):
    """(loss, lse) per row of a (rows, cols) x with int64 targets: loss = lse - x[target]."""
    if (cu := _cuda(x)) is not None:
        return cu.softmax_xent_fwd(x, target, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x, target = _c(x), _c(target.astype(np.int64, copy=False))
        rows, cols = x.shape
        loss, lse = np.empty(rows, dtype=x.dtype), np.empty(rows, dtype=x.dtype)
        C.softmax_xent_fwd(_ptr(x), _ptr(target), _ptr(loss), _ptr(lse), rows, cols, x.dtype.name)
        return loss, lse
    xp = xp_of(x)
    m = x.max(axis=1, keepdims=True)
    lse = (m + xp.log(xp.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    picked = xp.take_along_axis(x, target[:, None].astype(xp.int64), axis=1)[:, 0]
    return lse - picked, lse


def softmax_xent_bwd(x, target, lse, scale):
    """gx = (softmax(x) - onehot(target)) * scale[:, None]."""
    if (cu := _cuda(x)) is not None:
        return cu.softmax_xent_bwd(x, target, lse, scale, _state["forced"])
    if (C := _cpu_native(x)) is not None:
        x, target = _c(x), _c(target.astype(np.int64, copy=False))
        lse, scale = _c(lse), _c(scale.astype(x.dtype, copy=False))
        gx = np.empty_like(x)
        rows, cols = x.shape
        C.softmax_xent_bwd(_ptr(x), _ptr(target), _ptr(lse), _ptr(scale), _ptr(gx), rows, cols, x.dtype.name)
        return gx
    xp = xp_of(x)
    p = xp.exp(x - lse[:, None])
    p[xp.arange(x.shape[0]), target] -= 1
    return (p * scale[:, None]).astype(x.dtype, copy=False)


# ---- fused optimizer steps (in place) ---------------------------------------------------------
def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first_step):
    """torch.optim.SGD's update of one parameter, in one pass."""
    if (cu := _cuda(p)) is not None:
        with device_guard(p):  # an optimizer step runs outside Function.apply: pick p's GPU
            return cu.sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first_step,
                               _state["forced"])
    if (C := _cpu_native(p)) is not None and p.flags.c_contiguous and g.flags.c_contiguous and g.dtype == p.dtype:
        C.sgd_step(_ptr(p), _ptr(g), 0 if buf is None else _ptr(buf), p.size, lr, momentum, dampening,
                   weight_decay, bool(nesterov), bool(first_step), p.dtype.name)
        return
    with device_guard(p):  # CuPy arrays at the reference level: on p's GPU
        d = g + weight_decay * p if weight_decay else g
        if momentum:
            if first_step:
                buf[...] = d
            else:
                buf *= momentum
                buf += (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p -= lr * d


def adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, decoupled,
              max_v=None):
    """torch.optim.Adam (decoupled=False) / AdamW (True) update of one parameter, in one pass;
    with max_v (amsgrad) the denominator uses max_v = max(max_v, v), updated in place."""
    # amsgrad has no fused kernel (CUDA, CuPy or C++): it always runs the array reference below
    if max_v is None and (cu := _cuda(p)) is not None:
        with device_guard(p):
            return cu.adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                                bias_correction2, decoupled, _state["forced"])
    if max_v is None and (C := _cpu_native(p)) is not None and p.flags.c_contiguous and g.flags.c_contiguous \
            and g.dtype == p.dtype:
        C.adam_step(_ptr(p), _ptr(g), _ptr(m), _ptr(v), p.size, lr, beta1, beta2, eps, weight_decay,
                    bias_correction1, bias_correction2, bool(decoupled), p.dtype.name)
        return
    with device_guard(p):  # CuPy arrays with amsgrad or at the reference level: on p's GPU
        _adam_reference(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                        bias_correction2, decoupled, max_v)


def _adam_reference(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1,
                    bias_correction2, decoupled, max_v):
    xp = xp_of(p)
    if weight_decay:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    # torch's single-tensor Adam in its order of operations: exp_avg.lerp_(g, 1 - beta1);
    # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2); amsgrad: torch.maximum(max, v);
    # denom = sqrt(v) / bias_correction2 ** 0.5 + eps; p.addcdiv_(m, denom, value=-step_size)
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    if max_v is not None:
        xp.maximum(max_v, v, out=max_v)
        v = max_v
    denom = xp.sqrt(v) / bias_correction2**0.5 + eps
    p += -(lr / bias_correction1) * m / denom


# ---- helpers with no fused kernel ---------------------------------------------------------------
def scatter_add(out, index, values):
    """out[index] += values, accumulating repeated indices."""
    if isinstance(out, np.ndarray):
        np.add.at(out, index, values)
    else:
        from gpugrad.backend import cuda_kernels

        cuda_kernels.scatter_add(out, index, values)


def erf(x):
    if isinstance(x, np.ndarray):
        from scipy import special

        return special.erf(x).astype(x.dtype, copy=False)
    from cupyx.scipy import special

    # cupyx's erf maps float16 to float64 ('e->d'): keep the input's dtype, as NumPy's path does
    return special.erf(x).astype(x.dtype, copy=False)
