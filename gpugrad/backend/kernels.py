"""Every fused kernel, declared once, and the one dispatcher that runs it.

A kernel is a function here whose body says which arrays, sizes and scalars the native kernel
of the same name takes (in the order of csrc/common/kernel_list.h) and what it returns; the
@kernel decorator adds its array reference (written with `xp`, NumPy or CuPy: the fallback and
the test oracle) and the dispatch, best level first:

  "native"     gpugrad._cuda for CuPy arrays; gpugrad._C (its AVX2 or AVX-512 build where the
               CPU has them) for NumPy arrays big enough to pay;
  "cupy"       for CuPy arrays when _cuda is not built: the same CUDA kernels, compiled from the
               shipped header by NVRTC through CuPy (cuda_kernels.py);
  "reference"  the xp code.

`use(level)` forces one (the tests run every level against the reference). A body returns None
when the native kernels cannot take these arguments (mixed dtypes, broadcasting, a strided
in-place target...): the reference runs then.
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable

import numpy as np

from gpugrad import replay
from gpugrad.backend import device_guard, optim_updates, xp_of

LEVELS = ("native", "cupy", "reference")
_state = {"forced": os.environ.get("GPUGRAD_KERNELS") or None, "C": None, "C_loaded": False}
KERNELS: dict[str, "Kernel"] = {}
_replaying = replay.state


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


CPU_ISAS = ("avx512", "avx2", "baseline")  # gpugrad._C_<isa> (baseline: gpugrad._C), widest first


def cpu_modules() -> dict:
    """isa -> module: every build of gpugrad._C that is installed and that this CPU runs."""
    if "cpu_modules" not in _state:
        import importlib

        found = {}
        for isa in CPU_ISAS:
            name = "gpugrad._C" if isa == "baseline" else f"gpugrad._C_{isa}"
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            if module.cpu_supports(isa):
                found[isa] = module
        _state["cpu_modules"] = found
    return _state["cpu_modules"]


def native_cpu():
    """The widest build of gpugrad._C this CPU runs (None when none was built)."""
    if not _state["C_loaded"]:
        modules = cpu_modules()
        _state["C"] = next(iter(modules.values()), None)
        _state["C_loaded"] = True
    return _state["C"]


def native_cuda():
    from gpugrad.backend import cuda_kernels

    return cuda_kernels.native()


def kernel_names() -> list[str]:
    """The fused kernels, as the native modules name them."""
    return list(KERNELS)


class Launch:
    """One native call: `arrays` in the kernel's parameter order (None: a null pointer), then
    `sizes` and `scalars`; `result` is what the Python function returns."""

    __slots__ = ("arrays", "sizes", "scalars", "result")

    def __init__(self, arrays, sizes, result=None, scalars=()):
        self.arrays, self.sizes, self.scalars, self.result = arrays, sizes, scalars, result


class Kernel:
    """A fused kernel: its name, Launch builder, reference, float16 support (CUDA) and, for an
    elementwise map, its number of inputs."""

    def __init__(self, name: str, build: Callable, reference: Callable, half: bool, inputs=0):
        self.name, self.build, self.reference = name, build, reference
        self.half, self.inputs = half, inputs

    def __call__(self, *args):
        if _replaying.recorder is not None and not _replaying.depth:  # a kernel called by a step
            return replay.op(self._run, *args)            # being recorded (gg.capture)
        return self._run(*args)

    def _run(self, *args):
        first = args[0]
        forced = _state["forced"]
        if isinstance(first, np.ndarray):
            if forced == "reference":
                return self.reference(*args)
            C = _state["C"] if _state["C_loaded"] else native_cpu()
            if C is None:
                if forced == "native":
                    raise RuntimeError(f"{self.name}: kernel level 'native' forced but gpugrad._C "
                                       "is not built")
                return self.reference(*args)
            # every size: a call into _C costs ~2-3 µs, under NumPy's own for the same work
            # from 10 elements up (softmax_xent_fwd: 3.4 µs vs 27 µs for 1 row of 10)
            if first.dtype.kind != "f" or first.dtype.itemsize < 4:
                return self.reference(*args)
            launch = self.build(np, *args)
            if launch is None:
                return self.reference(*args)
            # gpugrad._C takes the NumPy arrays themselves (None: a null pointer)
            getattr(C, self.name)(*launch.arrays, *launch.sizes, *launch.scalars,
                                  _dtype_name(first.dtype))
            return launch.result
        with device_guard(first):  # a CuPy array: run on its GPU
            return self._on_gpu(args, forced)

    def _on_gpu(self, args, forced):
        from gpugrad.backend import cuda_kernels

        dtype = args[0].dtype
        if forced == "reference" or dtype.kind != "f" or (dtype.itemsize == 2 and not self.half):
            return self._reference_on_gpu(args)
        launch = self.build(xp_of(args[0]), *args)
        if launch is None:
            return self._reference_on_gpu(args)
        stream = cuda_kernels.current_stream()
        extension = cuda_kernels.extension(self.name, forced)
        if extension is not None:
            extension(*map(_device_pointer, launch.arrays), *launch.sizes, *launch.scalars,
                      _dtype_name(dtype), stream)
        else:
            cuda_kernels.launch_nvrtc(self, launch, dtype)
        return launch.result

    def _reference_on_gpu(self, args):
        """The reference, computing float16 (CUDA only) in float32 as the kernels and torch do."""
        if not self.half or not any(getattr(a, "dtype", None) == np.float16 for a in args):
            return self.reference(*args)
        wide = [a.astype(np.float32) if getattr(a, "dtype", None) == np.float16 else a for a in args]
        result = self.reference(*wide)
        if result is None:  # in place: the widened arguments' new values, back in float16
            for original, widened in zip(args, wide):
                if widened is not original:
                    original[...] = widened
            return None
        narrow = lambda r: r.astype(np.float16) if r.dtype == np.float32 else r  # noqa: E731
        return tuple(map(narrow, result)) if isinstance(result, tuple) else narrow(result)


_DTYPE_NAMES = {np.dtype(name): name for name in ("float16", "float32", "float64")}


def _dtype_name(dtype) -> str:
    """dtype.name without its cost (NumPy computes the name in Python: ~1 µs a call)."""
    return _DTYPE_NAMES.get(dtype) or dtype.name


def _device_pointer(a) -> int:
    return 0 if a is None else a.data.ptr


def kernel(reference: Callable, half: bool = False):
    """Declare the fused kernel named like the decorated Launch builder (see the module doc);
    half: the native kernel also takes float16 (CUDA)."""

    def declare(build):
        entry = Kernel(build.__name__, build, reference, half)
        KERNELS[entry.name] = entry
        functools.update_wrapper(entry, build)
        return entry

    return declare


def _c_order(xp, a):
    """a itself when C-contiguous (ascontiguousarray would also turn a 0-d array into 1-d)."""
    return a if a.flags.c_contiguous else xp.ascontiguousarray(a)


def _contiguous(xp, *arrays):
    return [_c_order(xp, a) for a in arrays]


def _same(first, *others) -> bool:
    """The others have first's shape and dtype (the native kernels neither broadcast nor cast)."""
    for other in others:
        if other.shape != first.shape or other.dtype != first.dtype:
            return False
    return True


# ---- elementwise maps: y = f(x), or gx = f'(a, g) for a backward ------------------------------
def _map(xp, x, g=None):
    x = _c_order(xp, x)
    out = xp.empty_like(x)
    if g is None:
        return Launch((x, out), (out.size,), out)
    if g.shape != x.shape or g.dtype != x.dtype:
        return None
    return Launch((x, _c_order(xp, g), out), (out.size,), out)


def sigmoid_reference(x):
    """y = 1 / (1 + exp(-x)), never exponentiating a large positive number."""
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def silu_reference(x):
    return x * sigmoid_reference(x)


def silu_backward_reference(x, g):
    s = sigmoid_reference(x)
    return g * (s * (1 + x * (1 - s)))


def gelu_reference(x):
    return x * _normal_cdf(x)


def gelu_backward_reference(x, g):
    xp = xp_of(x)
    pdf = xp.exp(-0.5 * x * x) * x.dtype.type(0.3989422804014327)
    return g * (_normal_cdf(x) + x * pdf)


def _normal_cdf(x):
    return 0.5 * (1 + erf(x * x.dtype.type(0.7071067811865476)))


def map_kernel(name: str, inputs: int, reference: Callable, doc: str) -> Kernel:
    """Declare an elementwise map out = f(in...) of csrc/common/kernel_list.h's GG_MAP_KERNELS
    (its functor in functors.h is `name` in CamelCase: sigmoid_fwd -> SigmoidFwd)."""
    entry = KERNELS[name] = Kernel(name, _map, reference, half=True, inputs=inputs)
    entry.__doc__ = doc
    return entry


sigmoid_fwd = map_kernel("sigmoid_fwd", 1, sigmoid_reference, "y = 1 / (1 + exp(-x)), stable.")
sigmoid_bwd = map_kernel("sigmoid_bwd", 2, lambda y, g: g * y * (1 - y),
                         "gx = g * y * (1 - y), from the sigmoid's output y.")
tanh_fwd = map_kernel("tanh_fwd", 1, lambda x: xp_of(x).tanh(x), "y = tanh(x).")
tanh_bwd = map_kernel("tanh_bwd", 2, lambda y, g: g * (1 - y * y),
                      "gx = g * (1 - y**2), from tanh's output y.")
silu_fwd = map_kernel("silu_fwd", 1, silu_reference, "y = x * sigmoid(x).")
silu_bwd = map_kernel("silu_bwd", 2, silu_backward_reference,
                      "gx = g * s * (1 + x (1 - s)), s = sigmoid(x), from SiLU's input x.")
gelu_fwd = map_kernel("gelu_fwd", 1, gelu_reference, "y = x * Phi(x), Phi the normal CDF.")
gelu_bwd = map_kernel("gelu_bwd", 2, gelu_backward_reference,
                      "gx = g * (Phi(x) + x phi(x)), from GELU's input x.")


# ---- relu with a bit-packed mask ------------------------------------------------------------
def mask_words(n: int) -> int:
    return (n + 31) // 32


def relu_reference(x):
    """0 where x < 0, else x itself: NaN stays NaN and -0.0 stays -0.0, as in torch."""
    return xp_of(x).where(x < 0, x.dtype.type(0), x)


def relu_fwd_reference(x):
    xp = xp_of(x)
    active = ~(x <= 0)
    packed = xp.packbits(active.ravel(), bitorder="little")
    words = xp.zeros(mask_words(x.size) * 4, dtype=xp.uint8)
    words[: packed.size] = packed
    return relu_reference(x), words.view(xp.uint32)


def relu_mask_bits(mask, shape):
    """The boolean mask (not x <= 0) unpacked from its words."""
    xp = xp_of(mask)
    n = int(np.prod(shape))
    return xp.unpackbits(mask.view(xp.uint8), bitorder="little")[:n].reshape(shape).astype(bool)


@kernel(relu_fwd_reference, half=True)
def relu_fwd(xp, x):
    """(y, mask): y = 0 where x < 0 else x (NaN and -0.0 pass through, as torch.relu); mask =
    uint32 words, bit j of word w set unless x[32w+j] <= 0 (so set for NaN: torch passes the
    gradient there)."""
    (x,) = _contiguous(xp, x)
    y = xp.empty_like(x)
    mask = xp.empty(mask_words(x.size), dtype=np.uint32)
    return Launch((x, y, mask), (x.size,), (y, mask))


@kernel(lambda g, mask: xp_of(g).where(relu_mask_bits(mask, g.shape), g, 0).astype(g.dtype, copy=False),
        half=True)
def relu_bwd(xp, g, mask):
    """gx = g where the saved bit is set, else 0."""
    (g,) = _contiguous(xp, g)
    gx = xp.empty_like(g)
    return Launch((g, mask, gx), (g.size,), gx)


# ---- bias + activation (Linear's epilogue) -------------------------------------------------------
ACTIVATIONS = {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def bias_act_fwd_reference(x, bias, act):
    z = x + bias
    if act == "relu":
        return relu_reference(z)
    if act == "sigmoid":
        return sigmoid_reference(z)
    if act == "tanh":
        return xp_of(x).tanh(z)
    return z


def bias_act_bwd_reference(y, g, act):
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


@kernel(bias_act_fwd_reference)
def bias_act_fwd(xp, x, bias, act: str):
    """y = act(x + bias) for a (rows, cols) x and a (cols,) bias."""
    if x.ndim != 2 or bias.shape != x.shape[1:] or bias.dtype != x.dtype:
        return None
    x, bias = _contiguous(xp, x, bias)
    y = xp.empty_like(x)
    return Launch((x, bias, y), x.shape, y, (ACTIVATIONS[act],))


@kernel(bias_act_bwd_reference)
def bias_act_bwd(xp, y, g, act: str):
    """(gx, gbias): gx = g * act'(from y), gbias = gx summed over rows."""
    if y.ndim != 2 or not _same(y, g):
        return None
    y, g = _contiguous(xp, y, g)
    gx = xp.empty_like(y)
    gbias = xp.empty(y.shape[1], dtype=y.dtype)
    return Launch((y, g, gx, gbias), y.shape, (gx, gbias), (ACTIVATIONS[act],))


# ---- softmax cross-entropy rows -------------------------------------------------------------------
NO_BAD_TARGET = np.iinfo(np.int64).min  # a bad-target flag holding this has seen none
_bad_target_flags: dict = {}  # device -> its int64 flag (one element)


def bad_target_flag(like):
    """The bad-target flag of like's device: the cross-entropy kernels store a target out of
    range there, for the host to raise at its next read (on a GPU, without a sync now)."""
    key = "cpu" if isinstance(like, np.ndarray) else like.device.id
    flag = _bad_target_flags.get(key)
    if flag is None:
        flag = xp_of(like).full(1, NO_BAD_TARGET, dtype=np.int64)
        _bad_target_flags[key] = flag
    return flag


def take_bad_target(flag):
    """The bad target the flag holds (a host read), clearing it; None when there is none."""
    value = int(flag[0])
    if value == NO_BAD_TARGET:
        return None
    flag[...] = NO_BAD_TARGET
    return value


def flag_bad_targets(target, classes: int, ignore_index: int, flag):
    """Store in flag any target out of [0, classes) that is not ignore_index (no host read)."""
    if target.size == 0:
        return
    xp = xp_of(target)
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    flag[...] = xp.where(bad.any(), xp.where(bad, target, NO_BAD_TARGET).max(), flag)


def _targets(target, classes, ignore_index):
    """(picked: a real class, ignored) per row."""
    ignored = target == ignore_index
    return ~ignored & (target >= 0) & (target < classes), ignored


def softmax_xent_fwd_reference(x, target, ignore_index, bad_target):
    xp = xp_of(x)
    target = target.astype(np.int64, copy=False)
    m = x.max(axis=1, keepdims=True)
    lse = (m + xp.log(xp.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    picked, ignored = _targets(target, x.shape[1], ignore_index)
    at = xp.take_along_axis(x, xp.where(picked, target, 0)[:, None], axis=1)[:, 0]
    loss = xp.where(picked, lse - at, xp.where(ignored, x.dtype.type(0), x.dtype.type(np.nan)))
    flag_bad_targets(target, x.shape[1], ignore_index, bad_target)
    return loss.astype(x.dtype, copy=False), lse


def softmax_xent_bwd_reference(x, target, lse, scale):
    xp = xp_of(x)
    onehot = xp.arange(x.shape[1]) == target.astype(np.int64, copy=False)[:, None]
    return ((xp.exp(x - lse[:, None]) - onehot) * scale[:, None]).astype(x.dtype, copy=False)


def _rows(x) -> bool:
    return x.ndim == 2 and (x.shape[0] == 0 or x.shape[1] > 0)


@kernel(softmax_xent_fwd_reference)
def softmax_xent_fwd(xp, x, target, ignore_index, bad_target):
    """(loss, lse) per row of a (rows, cols) x with int64 targets: loss = lse - x[target], 0
    where the target is ignore_index; a target out of range gives NaN and goes to bad_target
    (bad_target_flag: one int64 on x's device)."""
    if not _rows(x):
        return None
    x, target = _contiguous(xp, x, target.astype(np.int64, copy=False))
    loss, lse = xp.empty(x.shape[0], dtype=x.dtype), xp.empty(x.shape[0], dtype=x.dtype)
    return Launch((x, target, loss, lse, bad_target), x.shape, (loss, lse), (int(ignore_index),))


@kernel(softmax_xent_bwd_reference)
def softmax_xent_bwd(xp, x, target, lse, scale):
    """gx = (softmax(x) - onehot(target)) * scale[:, None] (a target out of range picks no
    column: an ignored row's scale is 0)."""
    if not _rows(x):
        return None
    rows = x.shape[0]
    scale = xp.broadcast_to(scale.astype(x.dtype, copy=False), (rows,))
    x, target, lse, scale = _contiguous(
        xp, x, target.astype(np.int64, copy=False), lse.astype(x.dtype, copy=False), scale)
    gx = xp.empty_like(x)
    return Launch((x, target, lse, scale, gx), x.shape, gx)


# ---- dropout's random scale ----------------------------------------------------------------------
DROPOUT_SLOTS = ("seed", "offset", "p")  # DropoutSlot in functors.h


def _mix64(xp, z):
    z = (z ^ (z >> xp.uint64(30))) * xp.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> xp.uint64(27))) * xp.uint64(0x94D049BB133111EB)
    return z ^ (z >> xp.uint64(31))


def uniform_at(xp, seed: int, counters):
    """SplitMix64's output at `counters` of the stream `seed`, as doubles in [0, 1)."""
    z = xp.uint64(seed) + (counters + xp.uint64(1)) * xp.uint64(0x9E3779B97F4A7C15)
    return (_mix64(xp, z) >> xp.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def dropout_scale_reference(out, rng):
    xp = xp_of(out)
    seed, offset, p = (int(rng[0]), int(rng[1]), float(rng[2]))
    u = uniform_at(xp, seed, xp.arange(out.size, dtype=xp.uint64) + xp.uint64(offset))
    out[...] = xp.where(u >= p, 1.0 / (1.0 - p), 0.0).reshape(out.shape).astype(out.dtype)


@kernel(dropout_scale_reference, half=True)
def dropout_scale(xp, out, rng):
    """out = 1 / (1 - p) where element i of the random stream rng = (seed, offset, p) is >= p,
    else 0, in place: dropout's scale, the same numbers on the CPU and the GPU."""
    if not out.flags.c_contiguous:
        return None
    return Launch((out, _hyper_on(xp, rng)), (out.size,))


# ---- fused optimizer steps (in place) --------------------------------------------------------------
# `hyper`: the step's hyperparameters as a float64 array, in the order of SgdSlot / AdamSlot in
# csrc/common/functors.h: a NumPy array, or for CUDA also a device array (the kernels read them
# from memory, so that a recorded step replays with the values of its own step).
SGD_SLOTS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "first_step")
ADAM_SLOTS = ("lr", "beta1", "beta2", "eps", "weight_decay", "bias_correction1", "bias_correction2",
              "decoupled")


def sgd_hyper(lr, momentum, dampening, weight_decay, nesterov, first_step) -> np.ndarray:
    return np.array([lr, momentum, dampening, weight_decay, nesterov, first_step], np.float64)


def adam_hyper(lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2,
               decoupled) -> np.ndarray:
    return np.array([lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2,
                     decoupled], np.float64)


def _in_place_ok(p, *state) -> bool:
    return all(a is None or (a.flags.c_contiguous and _same(p, a)) for a in state) and \
        p.flags.c_contiguous


def sgd_step_reference(p, g, buf, hyper):
    lr, momentum, dampening, weight_decay, nesterov, first_step = (float(h) for h in hyper)
    d = g + weight_decay * p if weight_decay else g
    if buf is not None:
        if first_step:
            buf[...] = d
        else:
            buf *= momentum
            buf += (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    p -= lr * d


@kernel(sgd_step_reference)
def sgd_step(xp, p, g, buf, hyper):
    """torch.optim.SGD's update of one parameter, in one pass, in place (buf: the momentum
    buffer, None when momentum is 0)."""
    return _step_launch(xp, p, g, (buf,), hyper)


def adam_step_reference(p, g, m, v, hyper, max_v=None):
    """Also amsgrad (max_v: the running max of v, which then divides), which has no kernel."""
    xp = xp_of(p)
    lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2, decoupled = (
        float(h) for h in hyper)
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


@kernel(adam_step_reference)
def adam_step(xp, p, g, m, v, hyper, max_v=None):
    """torch.optim.Adam / AdamW update of one parameter, in one pass, in place."""
    return None if max_v is not None else _step_launch(xp, p, g, (m, v), hyper)


# The table-driven optimizers' steps (the Steps of functors.h), each a kernel over the parameter,
# its gradient and its state buffers, with the array update of optim_updates.py as reference.
# Their slots (RmspropSlot ... in functors.h): hyper_array(SLOTS, **values) builds one.
RMSPROP_SLOTS = ("lr", "alpha", "eps", "weight_decay", "momentum", "maximize")
ADAGRAD_SLOTS = ("clr", "eps", "weight_decay", "maximize")
ADADELTA_SLOTS = ("lr", "rho", "eps", "weight_decay", "maximize")
ADAMAX_SLOTS = ("clr", "beta1", "beta2", "eps", "weight_decay", "maximize")
NADAM_SLOTS = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled", "bias_correction2",
               "grad_coef", "avg_coef", "maximize")
RADAM_SLOTS = ("lr", "beta1", "beta2", "eps", "weight_decay", "decoupled", "bias_correction1",
               "bias_correction2_sqrt", "rect", "rectified", "maximize")


def hyper_array(slots: tuple, **values) -> np.ndarray:
    """The values named by `slots`, in their order, as the float64 array a kernel reads."""
    if values.keys() != set(slots):
        raise TypeError(f"hyper_array: expected the values {slots}, got {tuple(values)}")
    return np.array([values[name] for name in slots], np.float64)


def _step_launch(xp, p, g, buffers, hyper):
    """The Launch of an optimizer step over p, g and its state buffers (None: unused), or None
    when an array is strided or shaped or typed unlike p."""
    if g.shape != p.shape or not _in_place_ok(p, *buffers):
        return None
    (g,) = _contiguous(xp, g.astype(p.dtype, copy=False))
    return Launch((p, g, *buffers, _hyper_on(xp, hyper)), (p.size,))


@kernel(optim_updates.rmsprop_reference)
def rmsprop_step(xp, p, g, square_avg, grad_avg, momentum_buffer, hyper):
    """torch.optim.RMSprop's update of one parameter, in place (grad_avg: None unless centered;
    momentum_buffer: None unless momentum > 0); hyper: RMSPROP_SLOTS."""
    return _step_launch(xp, p, g, (square_avg, grad_avg, momentum_buffer), hyper)


@kernel(optim_updates.adagrad_reference)
def adagrad_step(xp, p, g, state_sum, hyper):
    """torch.optim.Adagrad's update of one parameter, in place; hyper: ADAGRAD_SLOTS."""
    return _step_launch(xp, p, g, (state_sum,), hyper)


@kernel(optim_updates.adadelta_reference)
def adadelta_step(xp, p, g, square_avg, acc_delta, hyper):
    """torch.optim.Adadelta's update of one parameter, in place; hyper: ADADELTA_SLOTS."""
    return _step_launch(xp, p, g, (square_avg, acc_delta), hyper)


@kernel(optim_updates.adamax_reference)
def adamax_step(xp, p, g, exp_avg, exp_inf, hyper):
    """torch.optim.Adamax's update of one parameter, in place; hyper: ADAMAX_SLOTS."""
    return _step_launch(xp, p, g, (exp_avg, exp_inf), hyper)


@kernel(optim_updates.nadam_reference)
def nadam_step(xp, p, g, exp_avg, exp_avg_sq, hyper):
    """torch.optim.NAdam's update of one parameter, in place; hyper: NADAM_SLOTS."""
    return _step_launch(xp, p, g, (exp_avg, exp_avg_sq), hyper)


@kernel(optim_updates.radam_reference)
def radam_step(xp, p, g, exp_avg, exp_avg_sq, hyper):
    """torch.optim.RAdam's update of one parameter, in place; hyper: RADAM_SLOTS."""
    return _step_launch(xp, p, g, (exp_avg, exp_avg_sq), hyper)


def _hyper_on(xp, hyper):
    """The hyperparameters where the kernel reads them: host memory for _C, the GPU for CUDA
    (a NumPy array is uploaded; a device array, such as a captured step's, is used as it is)."""
    if xp is np or not isinstance(hyper, np.ndarray):
        return hyper
    from gpugrad.backend import cuda_kernels

    return cuda_kernels.device_hyper(hyper)


# ---- helpers with no fused kernel ---------------------------------------------------------------
def scatter_add(out, index, values):
    """out[index] += values, accumulating repeated indices."""
    if isinstance(out, np.ndarray):
        np.add.at(out, index, values)
    else:
        from gpugrad.backend import cuda_kernels

        cuda_kernels.scatter_add(out, index, values)


def erf(x):
    if isinstance(x, (np.ndarray, np.generic)):  # NumPy makes 0-d results scalars
        from scipy import special

        return special.erf(x).astype(x.dtype, copy=False)
    from cupyx.scipy import special

    # cupyx's erf maps float16 to float64 ('e->d'): keep the input's dtype, as NumPy's path does
    return special.erf(x).astype(x.dtype, copy=False)
