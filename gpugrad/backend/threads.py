"""How many CPU threads gpugrad uses: its own kernels (gpugrad._C's pool, whose workers sleep
between kernels; each instruction-set build of _C has one) and numpy's BLAS (the GEMMs), set
together as torch.set_num_threads sets its own pool and MKL. BLAS threads are set through
threadpoolctl."""

from __future__ import annotations

import numbers
import warnings

from gpugrad.backend import kernels


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
