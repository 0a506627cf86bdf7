"""The fused kernels on CuPy arrays, one level below kernels.py's dispatch table.

gpugrad._cuda (the compiled extension) runs them when it was built and sees a GPU; otherwise
CuPy ElementwiseKernel / RawKernel versions of the same math run, each compiled on first use and
cached. `level`: None takes the best available, "native" requires the extension, "cupy" skips it.
"""
from __future__ import annotations

import math

import numpy as np

from gpugrad.backend.kernels import ACTIVATIONS

_HALF_OK = ("float16", "float32", "float64")  # the extension's elementwise kernels
_FLOAT_OK = ("float32", "float64")  # its row and optimizer kernels
_RAW_BLOCK = 256  # threads per block of the raw kernels; a multiple of 32, a power of two
_RAW_MAX_BLOCKS = 1 << 16  # grid-stride loops cover the rest
_extension = {"loaded": False, "module": None, "reason": ""}
_compiled: dict = {}  # name (raw kernels: (name, dtype)) -> CuPy kernel object, built on first use


# ---- gpugrad._cuda ------------------------------------------------------------------------------
def native():
    """gpugrad._cuda when it imports and sees at least one GPU, else None."""
    if not _extension["loaded"]:
        module, reason = None, ""
        try:
            from gpugrad import _cuda as module

            if module.device_count() < 1:
                module, reason = None, "gpugrad._cuda sees no CUDA device"
        except ImportError as exc:
            reason = (f"gpugrad._cuda is not built ({exc}); reinstall gpugrad with nvcc on PATH "
                      "and GPUGRAD_CUDA=ON")
        except Exception as exc:  # noqa: BLE001 - a broken driver must not break the fallback
            module, reason = None, f"gpugrad._cuda failed to start: {type(exc).__name__}: {exc}"
        _extension.update(loaded=True, module=module, reason=reason)
    return _extension["module"]


def native_unavailable_reason() -> str:
    """Why native() is None ('' when it is not)."""
    native()
    return _extension["reason"]


def _ext(name: str, level, dtype, supported=_FLOAT_OK):
    """gpugrad._cuda when kernel `name` should run there for this level and dtype, else None."""
    if level == "cupy":
        return None
    module = native()
    if module is None:
        if level == "native":
            raise RuntimeError(f"{name}: kernel level 'native' forced but {_extension['reason']}")
        return None
    return module if dtype.name in supported else None


def _launch(function, *args) -> bool:
    """Run an extension kernel on CuPy's current stream; False when it rejects the dtype."""
    try:
        function(*args, _cupy().cuda.get_current_stream().ptr)
    except ValueError:  # "unsupported dtype": the CuPy kernel takes over
        return False
    return True


def _cupy():
    import cupy

    return cupy


def _contiguous(a):
    return a if a.flags.c_contiguous else _cupy().ascontiguousarray(a)


def _write_back(original, worked_on):
    """Copy an in-place result made on a contiguous copy back into the caller's array."""
    if worked_on is not original:
        original[...] = worked_on


# ---- CuPy kernels: the same math, compiled by CuPy (NVRTC) the first time each one runs ---------
# Element code computes in W: float for float16 / float32 storage, double for float64.
PREAMBLE = r"""
template <typename S> struct gg_wide { typedef float type; };
template <> struct gg_wide<double> { typedef double type; };

template <typename W> __device__ __forceinline__ W gg_sigmoid(W x) {
  // stable: exp only ever sees -|x|, so it cannot overflow
  const W e = exp(-fabs(x));
  return x >= (W)0 ? (W)1 / ((W)1 + e) : e / ((W)1 + e);
}
"""

_W = "typedef gg_wide<T>::type W;\n"
_ACT_FORWARD = {  # y from the pre-activation z
    "identity": "z",
    "relu": "(z < (W)0 ? (W)0 : z)",  # as torch: NaN and -0.0 pass through
    "sigmoid": "gg_sigmoid(z)",
    "tanh": "tanh(z)",
}
_ACT_BACKWARD = {  # gx from the output y and the upstream gradient g, both already in W
    "identity": "gw",
    "relu": "(yw <= (W)0 ? (W)0 : gw)",  # NaN passes the gradient, as torch
    "sigmoid": "gw * yw * ((W)1 - yw)",
    "tanh": "gw * ((W)1 - yw * yw)",
}

# name -> (in_params, out_params, operation) of a cupy.ElementwiseKernel
ELEMENTWISE = {
    "sigmoid_fwd": ("T x", "T y", _W + "y = (T)gg_sigmoid((W)x);"),
    "sigmoid_bwd": ("T y, T g", "T gx",
                    _W + "const W s = (W)y;\ngx = (T)((W)g * s * ((W)1 - s));"),
    "tanh_fwd": ("T x", "T y", _W + "y = (T)tanh((W)x);"),
    "tanh_bwd": ("T y, T g", "T gx",
                 _W + "const W t = (W)y;\ngx = (T)((W)g * ((W)1 - t * t));"),
    # i is the element's C-order index, the order in which relu_fwd packed the mask
    "relu_bwd": ("T g, raw uint32 mask", "T gx",
                 "gx = ((mask[i >> 5] >> (i & 31)) & 1u) ? g : (T)0;"),
    "softmax_xent_bwd": (
        "T x, raw int64 target, raw T lse, raw T scale, int64 cols", "T gx",
        _W + "const ptrdiff_t row = i / cols;\n"
        "const W p = exp((W)x - (W)lse[row]);\n"
        "const W onehot = (i - row * cols) == target[row] ? (W)1 : (W)0;\n"
        "gx = (T)((p - onehot) * (W)scale[row]);"),
    "sgd_plain": (
        "T g, float64 lr, float64 weight_decay", "T p",
        _W + "W d = (W)g;\n"
        "if (weight_decay != 0) d += (W)weight_decay * (W)p;\n"
        "p = (T)((W)p - (W)lr * d);"),
    "sgd_momentum": (
        ("T g, float64 lr, float64 momentum, float64 one_minus_dampening, float64 weight_decay, "
         "bool nesterov, bool first_step"), "T p, T buf",
        _W + "W d = (W)g;\n"
        "if (weight_decay != 0) d += (W)weight_decay * (W)p;\n"
        "const W b = first_step ? d : (W)momentum * (W)buf + (W)one_minus_dampening * d;\n"
        "buf = (T)b;\n"
        "d = nesterov ? d + (W)momentum * b : b;\n"
        "p = (T)((W)p - (W)lr * d);"),
    # torch's evaluation order: step_size = lr / bc1, denom = sqrt(v) / sqrt(bc2) + eps
    "adam_step": (
        ("T g, float64 beta1, float64 one_minus_beta1, float64 beta2, float64 one_minus_beta2, "
         "float64 eps, float64 weight_decay, float64 step_size, float64 bias_correction2_sqrt, "
         "float64 decay_factor, bool decoupled"), "T p, T m, T v",
        _W + "W grad = (W)g;\nW param = (W)p;\n"
        "if (weight_decay != 0) {\n"
        "  if (decoupled) param *= (W)decay_factor; else grad += (W)weight_decay * param;\n"
        "}\n"
        "const W m_new = (W)beta1 * (W)m + (W)one_minus_beta1 * grad;\n"
        "const W v_new = (W)beta2 * (W)v + (W)one_minus_beta2 * grad * grad;\n"
        "m = (T)m_new;\nv = (T)v_new;\n"
        "p = (T)(param - (W)step_size * (m_new / (sqrt(v_new) / (W)bias_correction2_sqrt"
        " + (W)eps)));"),
}
for _act in ACTIVATIONS:
    ELEMENTWISE[f"bias_act_fwd_{_act}"] = (
        "T x, T bias", "T y", _W + f"const W z = (W)x + (W)bias;\ny = (T){_ACT_FORWARD[_act]};")
    ELEMENTWISE[f"bias_act_bwd_{_act}"] = (
        "T y, T g", "T gx", _W + f"const W yw = (W)y;\nconst W gw = (W)g;\n"
        f"gx = (T)({_ACT_BACKWARD[_act]});")

# name -> CUDA source of a cupy.RawKernel (entry point gg_<name>); T / W are typedef'd in front.
RAW = {
    "relu_fwd": r"""
extern "C" __global__ void gg_relu_fwd(const T* __restrict__ x, T* __restrict__ y,
                                       unsigned int* __restrict__ mask, long long n) {
  // a warp owns one mask word: lane j takes element 32 w + j and __ballot_sync packs the bits
  const int lane = threadIdx.x & 31;
  const long long words = (n + 31) >> 5;
  const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
  for (long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < words;
       w += warps) {
    const long long i = (w << 5) + lane;
    bool active = false;
    if (i < n) {
      const T v = x[i];
      active = !(v <= (T)0);     // x > 0 or NaN, as csrc/common/functors.h relu_active
      y[i] = v < (T)0 ? (T)0 : v;  // NaN and -0.0 pass through, as torch.relu
    }
    const unsigned int bits = __ballot_sync(0xffffffffu, active);
    if (lane == 0) mask[w] = bits;
  }
}
""",
    "softmax_xent_fwd": r"""
__device__ __forceinline__ float gg_neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double gg_neg_inf(double) {
  return __longlong_as_double((long long)0xfff0000000000000ULL);
}
__device__ __forceinline__ float gg_nan(float) { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ double gg_nan(double) {
  return __longlong_as_double((long long)0x7ff8000000000000ULL);
}

// one block per row: each thread keeps an online (max, sum of exp(x - max)) over its columns,
// then the block merges the pairs; blockDim.x is a power of two <= 256
extern "C" __global__ void gg_softmax_xent_fwd(const T* __restrict__ x,
                                               const long long* __restrict__ target,
                                               T* __restrict__ loss, T* __restrict__ lse,
                                               long long rows, long long cols) {
  __shared__ W shared_max[256];
  __shared__ W shared_sum[256];
  const W neg_inf = gg_neg_inf((W)0);
  for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = x + r * cols;
    W row_max = neg_inf;
    W sum = 0;
    for (long long c = threadIdx.x; c < cols; c += blockDim.x) {
      const W v = (W)row[c];
      if (v > row_max) {
        sum = sum * exp(row_max - v) + (W)1;  // rescale the running sum to the new max
        row_max = v;
      } else if (v != neg_inf) {
        sum += exp(v - row_max);
      }
    }
    shared_max[threadIdx.x] = row_max;
    shared_sum[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned int half = blockDim.x >> 1; half > 0; half >>= 1) {
      if (threadIdx.x < half) {
        const W m1 = shared_max[threadIdx.x], s1 = shared_sum[threadIdx.x];
        const W m2 = shared_max[threadIdx.x + half], s2 = shared_sum[threadIdx.x + half];
        const W m = m1 > m2 ? m1 : m2;
        shared_max[threadIdx.x] = m;
        // stable: both exponents are <= 0; two empty (-inf) halves stay an empty sum
        shared_sum[threadIdx.x] = m == neg_inf ? s1 + s2 : s1 * exp(m1 - m) + s2 * exp(m2 - m);
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const W out = shared_max[0] + log(shared_sum[0]);
      const long long t = target[r];
      const W picked = (t >= 0 && t < cols) ? (W)row[t] : gg_nan((W)0);  // a bad target: NaN
      lse[r] = (T)out;
      loss[r] = (T)(out - picked);
    }
    __syncthreads();  // the next row reuses the shared arrays
  }
}
""",
}

_C_TYPES = {"float32": ("float", "float"), "float64": ("double", "double")}


def raw_source(name: str, dtype_name: str) -> str:
    """The full source of raw kernel `name` for float32 or float64 storage."""
    storage, wide = _C_TYPES[dtype_name]
    return f"typedef {storage} T;\ntypedef {wide} W;\n" + RAW[name]


def _elementwise_kernel(name: str):
    kernel = _compiled.get(name)
    if kernel is None:
        in_params, out_params, operation = ELEMENTWISE[name]
        kernel = _compiled[name] = _cupy().ElementwiseKernel(
            in_params, out_params, operation, name=f"gg_{name}", preamble=PREAMBLE)
    return kernel


def _raw_kernel(name: str, dtype_name: str):
    key = (name, dtype_name)
    kernel = _compiled.get(key)
    if kernel is None:
        kernel = _compiled[key] = _cupy().RawKernel(raw_source(name, dtype_name), f"gg_{name}")
    return kernel


def _on_cupy(name: str, run):
    """Run a CuPy-kernel call; a kernel that fails to compile or load names itself."""
    try:
        return run()
    except Exception as exc:
        compile_error = getattr(_cupy().cuda.compiler, "CompileException", ())
        if isinstance(exc, (compile_error, RuntimeError, OSError)):
            why = native_unavailable_reason() or "not used at this level or dtype"
            raise RuntimeError(  # noqa: TRY004 - a failed kernel, not a wrong argument type
                f"{name}: the CuPy fallback kernel failed ({type(exc).__name__}: {exc}); "
                f"gpugrad._cuda: {why}"
            ) from exc
        raise


def _elementwise(name: str, *args):
    return _on_cupy(name, lambda: _elementwise_kernel(name)(*args))


def _work_dtype(dtype):
    """The storage the raw kernels run in: float32 / float64 as given, anything else in float32."""
    return dtype if dtype.name in _FLOAT_OK else np.dtype(np.float32)


def _blocks(threads: int) -> int:
    return max(1, min((threads + _RAW_BLOCK - 1) // _RAW_BLOCK, _RAW_MAX_BLOCKS))


# ---- sigmoid / tanh ------------------------------------------------------------------------------
def _map(name: str, level, *arrays):
    """out = f(arrays) elementwise by kernel `name`: the extension's when it takes this dtype,
    else the CuPy kernel of the same name. The arrays share one shape and dtype."""
    first = arrays[0]
    if (ext := _ext(name, level, first.dtype, _HALF_OK)) is not None:
        arrays = [_contiguous(a) for a in arrays]
        out = _cupy().empty(first.shape, dtype=first.dtype)
        if _launch(getattr(ext, name), *(a.data.ptr for a in arrays), out.data.ptr, first.size,
                   first.dtype.name):
            return out
    return _elementwise(name, *arrays)


def sigmoid_fwd(x, level=None):
    """y = 1 / (1 + exp(-x)), stable for any x."""
    return _map("sigmoid_fwd", level, x)


def sigmoid_bwd(y, g, level=None):
    """gx = g * y * (1 - y), from the sigmoid's output y."""
    if g.dtype != y.dtype:
        return g * y * (1 - y)  # mixed dtypes promote as the reference does
    if g.shape != y.shape:
        return _elementwise("sigmoid_bwd", y, g)  # broadcasting: the CuPy kernel does it
    return _map("sigmoid_bwd", level, y, g)


def tanh_fwd(x, level=None):
    """y = tanh(x)."""
    return _map("tanh_fwd", level, x)


def tanh_bwd(y, g, level=None):
    """gx = g * (1 - y**2), from tanh's output y."""
    if g.dtype != y.dtype:
        return g * (1 - y * y)
    if g.shape != y.shape:
        return _elementwise("tanh_bwd", y, g)
    return _map("tanh_bwd", level, y, g)


# ---- relu with a bit-packed mask -----------------------------------------------------------------
def relu_fwd(x, level=None):
    """(y, mask): y = 0 where x < 0 else x; mask: uint32 words, bit j of word w set unless
    x.ravel()[32w+j] <= 0 (NaN passes the gradient)."""
    cp = _cupy()
    x = _contiguous(x)
    n = x.size
    mask = cp.empty((n + 31) // 32, dtype=np.uint32)
    if (ext := _ext("relu_fwd", level, x.dtype, _HALF_OK)) is not None:
        y = cp.empty(x.shape, dtype=x.dtype)
        if _launch(ext.relu_fwd, x.data.ptr, y.data.ptr, mask.data.ptr, n, x.dtype.name):
            return y, mask
    work = _work_dtype(x.dtype)
    xw = x.astype(work, copy=False)
    yw = cp.empty(x.shape, dtype=work)
    if n:
        kernel = _raw_kernel("relu_fwd", work.name)
        threads = mask.size * 32
        _on_cupy("relu_fwd", lambda: kernel(
            (_blocks(threads),), (_RAW_BLOCK,), (xw, yw, mask, np.int64(n))))
    return yw.astype(x.dtype, copy=False), mask


def relu_bwd(g, mask, level=None):
    """gx = g where the saved bit is set, else 0."""
    g = _contiguous(g)
    mask = _contiguous(mask)
    if (ext := _ext("relu_bwd", level, g.dtype, _HALF_OK)) is not None:
        gx = _cupy().empty(g.shape, dtype=g.dtype)
        if _launch(ext.relu_bwd, g.data.ptr, mask.data.ptr, gx.data.ptr, g.size, g.dtype.name):
            return gx
    return _elementwise("relu_bwd", g, mask)


# ---- bias + activation ---------------------------------------------------------------------------
def _act_code(name: str, act: str) -> int:
    if act not in ACTIVATIONS:
        raise ValueError(f"{name}: activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    return ACTIVATIONS[act]


def bias_act_fwd(x, bias, act, level=None):
    """y = act(x + bias) for a (rows, cols) x and a (cols,) bias."""
    code = _act_code("bias_act_fwd", act)
    if bias.dtype != x.dtype:
        bias = bias.astype(x.dtype)
    fits = x.ndim == 2 and bias.shape == x.shape[1:]
    if fits and (ext := _ext("bias_act_fwd", level, x.dtype)) is not None:
        x, bias = _contiguous(x), _contiguous(bias)
        y = _cupy().empty(x.shape, dtype=x.dtype)
        rows, cols = x.shape
        if _launch(ext.bias_act_fwd, x.data.ptr, bias.data.ptr, y.data.ptr, rows, cols, code,
                   x.dtype.name):
            return y
    return _elementwise(f"bias_act_fwd_{act}", x, bias)


def bias_act_bwd(y, g, act, level=None):
    """(gx, gbias): gx = g * act'(from y), gbias = gx summed over rows."""
    code = _act_code("bias_act_bwd", act)
    if g.dtype != y.dtype:
        g = g.astype(y.dtype)
    fits = y.ndim == 2 and g.shape == y.shape
    if fits and (ext := _ext("bias_act_bwd", level, y.dtype)) is not None:
        cp = _cupy()
        y, g = _contiguous(y), _contiguous(g)
        rows, cols = y.shape
        gx = cp.empty(y.shape, dtype=y.dtype)
        gbias = cp.empty(cols, dtype=y.dtype)
        if _launch(ext.bias_act_bwd, y.data.ptr, g.data.ptr, gx.data.ptr, gbias.data.ptr, rows,
                   cols, code, y.dtype.name):
            return gx, gbias
    gx = _elementwise(f"bias_act_bwd_{act}", y, g)
    sum_dtype = np.float32 if gx.dtype == np.float16 else gx.dtype
    return gx, gx.sum(axis=0, dtype=sum_dtype).astype(gx.dtype, copy=False)


# ---- softmax cross-entropy rows ------------------------------------------------------------------
def _check_rows(name: str, x):
    if x.ndim != 2:
        raise ValueError(f"{name}: expected (rows, classes) logits, got shape {tuple(x.shape)}")
    if x.shape[0] > 0 and x.shape[1] == 0:
        raise ValueError(f"{name}: logits of shape {tuple(x.shape)} have no classes")


def softmax_xent_fwd(x, target, level=None):
    """(loss, lse) per row of a (rows, cols) x with int64 targets: loss = lse - x[target]."""
    _check_rows("softmax_xent_fwd", x)
    cp = _cupy()
    x = _contiguous(x)
    target = _contiguous(target.astype(np.int64, copy=False))
    rows, cols = x.shape
    if (ext := _ext("softmax_xent_fwd", level, x.dtype)) is not None:
        loss = cp.empty(rows, dtype=x.dtype)
        lse = cp.empty(rows, dtype=x.dtype)
        if _launch(ext.softmax_xent_fwd, x.data.ptr, target.data.ptr, loss.data.ptr, lse.data.ptr,
                   rows, cols, x.dtype.name):
            return loss, lse
    work = _work_dtype(x.dtype)
    xw = x.astype(work, copy=False)
    loss = cp.empty(rows, dtype=work)
    lse = cp.empty(rows, dtype=work)
    if rows:
        threads = 32
        while threads < min(cols, _RAW_BLOCK):
            threads *= 2
        kernel = _raw_kernel("softmax_xent_fwd", work.name)
        _on_cupy("softmax_xent_fwd", lambda: kernel(
            (min(rows, _RAW_MAX_BLOCKS),), (threads,),
            (xw, target, loss, lse, np.int64(rows), np.int64(cols))))
    return loss.astype(x.dtype, copy=False), lse.astype(x.dtype, copy=False)


def softmax_xent_bwd(x, target, lse, scale, level=None):
    """gx = (softmax(x) - onehot(target)) * scale[:, None]."""
    _check_rows("softmax_xent_bwd", x)
    cp = _cupy()
    rows, cols = x.shape
    target = target.astype(np.int64, copy=False)
    lse = lse.astype(x.dtype, copy=False)
    scale = cp.broadcast_to(scale.astype(x.dtype, copy=False), (rows,))
    if (ext := _ext("softmax_xent_bwd", level, x.dtype)) is not None:
        x, target, lse, scale = (_contiguous(a) for a in (x, target, lse, scale))
        gx = cp.empty(x.shape, dtype=x.dtype)
        if _launch(ext.softmax_xent_bwd, x.data.ptr, target.data.ptr, lse.data.ptr, scale.data.ptr,
                   gx.data.ptr, rows, cols, x.dtype.name):
            return gx
    return _elementwise("softmax_xent_bwd", x, target, lse, scale, cols)


# ---- fused optimizer steps (in place) ------------------------------------------------------------
def _grad_like(p, g):
    """g as p's dtype and shape (the kernels read one gradient element per parameter element)."""
    if g.dtype != p.dtype:
        g = g.astype(p.dtype)
    if g.shape != p.shape:
        g = _cupy().broadcast_to(g, p.shape)
    return g


def sgd_step(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first_step, level=None):
    """torch.optim.SGD's update of one parameter in one pass (buf: momentum buffer or None)."""
    if momentum and buf is None:
        raise ValueError("sgd_step: momentum != 0 needs a momentum buffer")
    g = _grad_like(p, g)
    if (ext := _ext("sgd_step", level, p.dtype)) is not None:
        p_c, g_c = _contiguous(p), _contiguous(g)
        buf_c = None if not momentum else _contiguous(buf)
        if _launch(ext.sgd_step, p_c.data.ptr, g_c.data.ptr, 0 if buf_c is None else buf_c.data.ptr,
                   p.size, float(lr), float(momentum), float(dampening), float(weight_decay),
                   bool(nesterov), bool(first_step), p.dtype.name):
            _write_back(p, p_c)
            if buf_c is not None:
                _write_back(buf, buf_c)
            return
    if not momentum:
        _elementwise("sgd_plain", g, float(lr), float(weight_decay), p)
    else:
        _elementwise("sgd_momentum", g, float(lr), float(momentum), 1.0 - float(dampening),
                     float(weight_decay), bool(nesterov), bool(first_step), p, buf)


def adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2,
              decoupled, level=None):
    """torch.optim.Adam (decoupled=False) / AdamW (True) update of one parameter in one pass."""
    g = _grad_like(p, g)
    if (ext := _ext("adam_step", level, p.dtype)) is not None:
        p_c, g_c, m_c, v_c = (_contiguous(a) for a in (p, g, m, v))
        if _launch(ext.adam_step, p_c.data.ptr, g_c.data.ptr, m_c.data.ptr, v_c.data.ptr, p.size,
                   float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
                   float(bias_correction1), float(bias_correction2), bool(decoupled),
                   p.dtype.name):
            for original, worked_on in ((p, p_c), (m, m_c), (v, v_c)):
                _write_back(original, worked_on)
            return
    _elementwise("adam_step", g, float(beta1), 1.0 - float(beta1), float(beta2),
                 1.0 - float(beta2), float(eps), float(weight_decay),
                 float(lr) / float(bias_correction1), math.sqrt(float(bias_correction2)),
                 1.0 - float(lr) * float(weight_decay), bool(decoupled), p, m, v)


# ---- helpers with no fused kernel ----------------------------------------------------------------
def scatter_add(out, index, values):
    """out[index] += values, accumulating repeated indices (CuPy's atomic scatter-add)."""
    import cupyx

    if values.dtype != out.dtype:
        values = values.astype(out.dtype)
    cupyx.scatter_add(out, index, values)
