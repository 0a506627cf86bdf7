"""The fused kernels on CuPy arrays, one level below kernels.py's dispatcher.

gpugrad._cuda (the compiled extension) runs them when it was built and sees a GPU. Otherwise the
same CUDA kernels, csrc/cuda/kernels.cuh as shipped with the package, are compiled at run time by
NVRTC through `cupy.RawModule`, one module per kernel and dtype, each template instantiated by
name; this file then plays the launchers' part (csrc/cuda/*.cu): vector width, grid and block.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

_THREADS = 256  # kThreads of the kernels
_ILP = 2  # kIlp of the kernels
_WARP_MAX_COLS = 1024  # softmax_xent_fwd: wider rows get a block each (as its launcher)
_COL_TILE, _ROW_LANES = 32, 8  # bias_act_bwd's block
_STORAGE = {"float16": "gg::cuda::half_t", "float32": "float", "float64": "double"}
_extension = {"loaded": False, "module": None, "reason": ""}


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


def extension(name: str, level):
    """The _cuda function of kernel `name` for this level, or None for the NVRTC kernels."""
    if level == "cupy":
        return None
    module = native()
    if module is None:
        if level == "native":
            raise RuntimeError(f"{name}: kernel level 'native' forced but {_extension['reason']}")
        return None
    return getattr(module, name)


def _cupy():
    import cupy

    return cupy


def current_stream() -> int:
    return _cupy().cuda.get_current_stream().ptr


@functools.lru_cache(maxsize=64)
def _hyper_cached(values: bytes, device: int):
    return _cupy().asarray(np.frombuffer(values, dtype=np.float64))


def device_hyper(hyper: np.ndarray):
    """An optimizer step's hyperparameters (a host float64 array) on the current GPU; repeated
    values (SGD's, step after step) reuse one upload."""
    return _hyper_cached(np.ascontiguousarray(hyper, dtype=np.float64).tobytes(),
                         _cupy().cuda.Device().id)


# ---- NVRTC: the shipped kernels compiled at run time -------------------------------------------
def include_dir() -> Path:
    """The folder holding cuda/kernels.cuh and common/*.h: gpugrad/include in an installed
    package (next to the compiled modules in an editable one), csrc/ in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    candidates = [package / "include", package.parent / "csrc"]
    try:
        from gpugrad import _C

        candidates.insert(1, Path(_C.__file__).resolve().parent / "include")
    except ImportError:
        pass
    for folder in candidates:
        if (folder / "cuda" / "kernels.cuh").is_file():
            return folder
    raise RuntimeError("gpugrad's CUDA kernel header (cuda/kernels.cuh) is not installed: looked "
                       "in " + ", ".join(map(str, candidates)))


@functools.cache
def _source() -> tuple[str, tuple[str, ...]]:
    """The program NVRTC compiles and its options. CuPy's cache keys on the code and options,
    not on included files, so the code carries a digest of the headers it includes."""
    folder = include_dir()
    digest = hashlib.sha256()
    for header in sorted([*folder.glob("common/*.h"), folder / "cuda" / "kernels.cuh"]):
        digest.update(header.read_bytes())
    code = f'// gpugrad kernels {digest.hexdigest()[:16]}\n#include "cuda/kernels.cuh"\n'
    return code, ("-std=c++17", f"-I{folder}")


@functools.cache
def _module():
    """Every instantiation the launchers below can ask for, compiled as one module on first use
    (one NVRTC run of a few seconds, then CuPy's on-disk cache)."""
    code, options = _source()
    expressions = tuple(e for names in name_expressions().values() for e in names)
    return _cupy().RawModule(code=code, options=options, name_expressions=expressions)


class _Templates:
    """The template instantiations one launcher chooses between: `pattern` with {s} (the storage
    type), {w} (a vector width: the dtype's 16-byte pack or 1) and the placeholders given as
    choices."""

    def __init__(self, pattern: str, **choices):
        self.pattern, self.choices = pattern, choices

    def expressions(self, storage: str, width: int) -> list[str]:
        combos = [{"s": storage}]
        for key, values in {**({"w": (width, 1)} if "{w}" in self.pattern else {}),
                            **self.choices}.items():
            combos = [{**c, key: v} for c in combos for v in values]
        return [self.pattern.format(**c) for c in combos]

    def __call__(self, storage: str, width: int, **picked):
        expression = self.pattern.format(s=storage, **picked)
        try:
            return _module().get_function(expression)
        except Exception as exc:
            compile_error = getattr(_cupy().cuda.compiler, "CompileException", ())
            if isinstance(exc, (compile_error, RuntimeError, OSError)):
                why = native_unavailable_reason() or "not used at this level"
                raise RuntimeError(
                    f"{expression}: the NVRTC build of gpugrad's kernels failed "
                    f"({type(exc).__name__}: {exc}); gpugrad._cuda: {why}") from exc
            raise


@functools.cache
def _resident_blocks(device: int) -> int:
    """Blocks of _THREADS that fit on the GPU at once (the launchers' grid-stride cap)."""
    props = _cupy().cuda.runtime.getDeviceProperties(device)
    return max(1, props["multiProcessorCount"] * (props["maxThreadsPerMultiProcessor"] // _THREADS))


def _limit() -> int:
    return _resident_blocks(_cupy().cuda.Device().id)


def _grid(units: int) -> tuple[int]:
    """Blocks of _THREADS for `units` thread work items, capped (grid-stride loops do the rest)."""
    return (max(1, min(-(-units // _THREADS), _limit())),)


def _aligned(*arrays) -> bool:
    return all(a.data.ptr % 16 == 0 for a in arrays)


def _n(value) -> np.int64:
    return np.int64(value)  # CuPy passes a Python int as 32 bits in some versions


def launch_nvrtc(kernel, launch, dtype) -> None:
    """Run `kernel` (kernels.Kernel) on its Launch (arrays, sizes and scalars in the native
    kernel's order) through the NVRTC-compiled templates, as its .cu launcher would."""
    storage, width = _STORAGE[dtype.name], 16 // dtype.itemsize
    if kernel.inputs:
        _map(kernel, launch, storage, width)
    else:
        _LAUNCHERS[kernel.name][0](launch, storage, width)


def _map_templates(kernel) -> _Templates:
    functor = "".join(part.capitalize() for part in kernel.name.split("_"))  # silu_bwd: SiluBwd
    return _Templates(f"gg::cuda::map{kernel.inputs}_kernel<{{w}}, {{s}}, gg::{functor}>")


def _map(kernel, launch, storage, width):
    (n,) = launch.sizes
    if n == 0:
        return
    w = width if _aligned(*launch.arrays) else 1
    function = _map_templates(kernel)(storage, width, w=w)
    function(_grid(-(-(n // w) // _ILP)), (_THREADS,), (*launch.arrays, _n(n)))


_RELU_FWD = _Templates("gg::cuda::relu_fwd_kernel<{w}, {s}>")
_RELU_BWD = _Templates("gg::cuda::relu_bwd_kernel<{w}, {s}>")
_BIAS_ACT_FWD = _Templates("gg::cuda::bias_act_fwd_kernel<{act}, {w}, {s}>", act=range(4))
_BIAS_ACT_BWD = _Templates("gg::cuda::bias_act_bwd_kernel<{act}, {s}>", act=range(4))
_XENT_FWD = _Templates("gg::cuda::softmax_xent_fwd_kernel<{warp}, {s}>", warp=("true", "false"))
_XENT_BWD = _Templates("gg::cuda::softmax_xent_bwd_kernel<{w}, {s}>")
_DROPOUT = _Templates("gg::cuda::dropout_scale_kernel<{s}>")
_SGD = _Templates("gg::cuda::sgd_kernel<{momentum}, {w}, {s}>", momentum=("true", "false"))
# The optimizer Steps of functors.h, all through one kernel (RMSprop's in four forms).
_STEP = "gg::cuda::optimizer_step_kernel<gg::{step}, {{w}}, {{s}}>"
_ADAM = _Templates(_STEP.format(step="AdamStep"))
_RMSPROP = _Templates(_STEP.format(step="RmspropStep<{centered}, {momentum}>"),
                      centered=("true", "false"), momentum=("true", "false"))


def _relu_fwd(launch, storage, width):
    x, y, mask = launch.arrays
    (n,) = launch.sizes
    if n:
        w = width if _aligned(x, y) else 1
        _RELU_FWD(storage, width, w=w)(_grid(n // w), (_THREADS,), (x, y, mask, _n(n)))


def _relu_bwd(launch, storage, width):
    g, mask, gx = launch.arrays
    (n,) = launch.sizes
    if n:
        w = width if _aligned(g, gx) else 1
        _RELU_BWD(storage, width, w=w)(_grid(-(-(n // w) // _ILP)), (_THREADS,),
                                       (g, mask, gx, _n(n)))


def _bias_act_fwd(launch, storage, width):
    x, bias, y = launch.arrays
    rows, cols = launch.sizes
    (act,) = launch.scalars
    total = rows * cols
    if total:
        w = width if cols % width == 0 and _aligned(x, bias, y) else 1
        _BIAS_ACT_FWD(storage, width, act=act, w=w)(
            _grid(-(-(total // w) // _ILP)), (_THREADS,), (x, bias, y, _n(total), _n(cols)))


def _bias_act_bwd(launch, storage, width):
    y, g, gx, gbias = launch.arrays
    rows, cols = launch.sizes
    (act,) = launch.scalars
    if cols == 0:
        return
    col_tiles = -(-cols // _COL_TILE)
    # as the launcher: more block rows only while the GPU has room and each lane gets a few rows
    row_blocks = max(1, min(_limit() // col_tiles, -(-rows // (_ROW_LANES * 4)), 65535))
    accumulate = row_blocks > 1
    if accumulate:
        gbias.fill(0)  # block rows add their shares into it
    _BIAS_ACT_BWD(storage, width, act=act)(
        (col_tiles, row_blocks), (_COL_TILE, _ROW_LANES),
        (y, g, gx, gbias, _n(rows), _n(cols), np.bool_(accumulate)))


def _softmax_xent_fwd(launch, storage, width):
    x, target, loss, lse, bad_target = launch.arrays
    rows, cols = launch.sizes
    (ignore_index,) = launch.scalars
    if rows:
        warp_per_row = cols <= _WARP_MAX_COLS
        blocks = min(-(-rows // (_THREADS // 32)) if warp_per_row else rows, _limit())
        _XENT_FWD(storage, width, warp="true" if warp_per_row else "false")(
            (blocks,), (_THREADS,),
            (x, target, loss, lse, bad_target, _n(rows), _n(cols), _n(ignore_index)))


def _softmax_xent_bwd(launch, storage, width):
    x, target, lse, scale, gx = launch.arrays
    rows, cols = launch.sizes
    total = rows * cols
    if total:
        w = width if cols % width == 0 and _aligned(x, gx) else 1
        _XENT_BWD(storage, width, w=w)(_grid(-(-(total // w) // _ILP)), (_THREADS,),
                                       (x, target, lse, scale, gx, _n(total), _n(cols)))


def _dropout_scale(launch, storage, width):
    out, rng = launch.arrays
    (n,) = launch.sizes
    if n:
        _DROPOUT(storage, width)(_grid(n), (_THREADS,), (out, rng, _n(n)))


def _sgd_step(launch, storage, width):
    p, g, buf, hyper = launch.arrays
    (n,) = launch.sizes
    if n:
        momentum = buf is not None
        buf = buf if momentum else p  # never read without momentum: a real pointer all the same
        w = width if _aligned(p, g, buf) else 1
        _SGD(storage, width, momentum=str(momentum).lower(), w=w)(
            _grid(-(-n // w)), (_THREADS,), (p, g, buf, hyper, _n(n)))


def _optimizer_step(templates):
    """The launcher of an optimizer Step: p, g, up to three state buffers (None: unused), hyper."""

    def launch_step(launch, storage, width):
        p, g, *buffers, hyper = launch.arrays
        (n,) = launch.sizes
        if not n:
            return
        picked = {}
        if "centered" in templates.choices:  # RMSprop: the form its buffers ask for
            picked = {"centered": str(buffers[1] is not None).lower(),
                      "momentum": str(buffers[2] is not None).lower()}
        # an unused buffer is never touched: any real pointer will do
        a, b, c = (p if buf is None else buf for buf in (*buffers, None, None)[:3])
        w = width if _aligned(p, g, a, b, c) else 1
        templates(storage, width, w=w, **picked)(_grid(-(-n // w)), (_THREADS,),
                                                 (p, g, a, b, c, hyper, _n(n)))

    return launch_step, templates


# The kernels with launchers of their own (csrc/cuda/*.cu) and the templates each picks from;
# every other kernel is a map.
_LAUNCHERS = {
    "relu_fwd": (_relu_fwd, _RELU_FWD),
    "relu_bwd": (_relu_bwd, _RELU_BWD),
    "bias_act_fwd": (_bias_act_fwd, _BIAS_ACT_FWD),
    "bias_act_bwd": (_bias_act_bwd, _BIAS_ACT_BWD),
    "softmax_xent_fwd": (_softmax_xent_fwd, _XENT_FWD),
    "softmax_xent_bwd": (_softmax_xent_bwd, _XENT_BWD),
    "dropout_scale": (_dropout_scale, _DROPOUT),
    "sgd_step": (_sgd_step, _SGD),
    "adam_step": _optimizer_step(_ADAM),
    "rmsprop_step": _optimizer_step(_RMSPROP),
    **{f"{name.lower()}_step": _optimizer_step(_Templates(_STEP.format(step=f"{name}Step")))
       for name in ("Adagrad", "Adadelta", "Adamax", "Nadam", "Radam")},
}


def name_expressions() -> dict[tuple[str, str], list[str]]:
    """(kernel, dtype) -> every template instantiation its launcher can compile; the tests hand
    them all to NVRTC, also on machines without a GPU."""
    from gpugrad.backend import kernels

    table = {}
    for name, entry in kernels.KERNELS.items():
        templates = _map_templates(entry) if entry.inputs else _LAUNCHERS[name][1]
        for dtype in ("float32", "float64") + (("float16",) if entry.half else ()):
            width = 16 // np.dtype(dtype).itemsize
            table[name, dtype] = templates.expressions(_STORAGE[dtype], width)
    return table


# ---- helpers with no fused kernel ----------------------------------------------------------------
def scatter_add(out, index, values):
    """out[index] += values, accumulating repeated indices (CuPy's atomic scatter-add)."""
    import cupyx

    if values.dtype != out.dtype:
        values = values.astype(out.dtype)
    cupyx.scatter_add(out, index, values)
