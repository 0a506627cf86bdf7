"""How many CPU threads gpugrad uses: its own kernels (gpugrad._C's pool, whose workers sleep
between kernels; each instruction-set build of _C has one) and numpy's BLAS (the GEMMs), set
together as torch.set_num_threads sets its own pool and MKL. BLAS threads are set through
threadpoolctl. A GEMM too small to gain from more threads runs on one (`matmul`)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from gpugrad.backend import kernels

# A GEMM of fewer multiply-adds than this runs on one BLAS thread whatever the setting. Measured
# on a 2-core VM (2026-12-03): a second thread gains at most 1.3x below it (15 µs), while a
# worker that another process has taken the core from stalls the whole product for a time
# slice: with 2 threads, a 64-128-128-10 MLP step took 64 ms instead of 1 ms in 1 step of 3.
SMALL_GEMM = 1 << 22
# Below this OpenBLAS runs on the calling thread by itself: no need to ask.
BLAS_SERIAL_GEMM = 1 << 18
# After a multi-threaded product the BLAS's threads keep spinning (OpenBLAS: 2^28 cycles, about
# 0.1 s); a kernel split across gpugrad's threads meanwhile ran slower than on one (a worker
# woken onto a core a BLAS thread spins on: 5.4 ms vs 3.0 ms for a 784-2048-2048-10 step's
# bias + relu and SGD, 2026-12-03), so the kernels stay on the calling thread that long.
BLAS_SPIN_S = 0.1


def get_num_threads() -> int:
    """Threads gpugrad's CPU kernels may use (default: the usable cores, or OMP_NUM_THREADS)."""
    native = kernels.native_cpu()
    if native is not None:
        return native.get_num_threads()
    return _blas_threads() or 1


def set_num_threads(threads: int) -> None:
    """Use `threads` CPU threads from now on, in gpugrad's kernels and in numpy's BLAS."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"set_num_threads: threads must be an int, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"set_num_threads: threads must be >= 1, got {threads}")
    for module in kernels.cpu_modules().values():  # the one in use, and any other build
        module.set_num_threads(int(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn(
            "set_num_threads: threadpoolctl is not installed, so numpy's BLAS keeps its own "
            "thread count (pip install threadpoolctl)",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    threadpool_limits(limits=int(threads), user_api="blas")


def _blas_threads() -> int | None:
    """numpy's BLAS threads, or None when threadpoolctl cannot tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for host arrays, on one BLAS thread when each product is too small to pay for more;
    after a multi-threaded one, gpugrad's kernels keep to the calling thread for BLAS_SPIN_S."""
    if a.ndim < 2 or b.ndim < 2:
        return a @ b
    macs = a.shape[-2] * a.shape[-1] * b.shape[-1]
    if macs < BLAS_SERIAL_GEMM:
        return a @ b
    libs = _blas_controllers()
    counts = [lib.get_num_threads() for lib in libs]
    if not counts or max(counts) <= 1:
        return a @ b
    if macs >= SMALL_GEMM:
        out = a @ b
        native = kernels.native_cpu()
        if native is not None:
            native.blas_busy_for(BLAS_SPIN_S)
        return out
    for lib in libs:
        lib.set_num_threads(1)
    try:
        return a @ b
    finally:
        for lib, count in zip(libs, counts):
            lib.set_num_threads(count)


_controllers: list = []


def _blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded (numpy's), found once."""
    if not _controllers:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controllers.append(())
        else:
            _controllers.append(
                tuple(ThreadpoolController().select(user_api="blas").lib_controllers)
            )
    return _controllers[0]
