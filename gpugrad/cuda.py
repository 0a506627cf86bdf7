"""gg.cuda: is a GPU usable, which one, and waiting for it."""
from __future__ import annotations

from gpugrad import backend
from gpugrad.backend import cupy_backend


def is_available() -> bool:
    """True when CuPy imports and a CUDA device is visible; never raises."""
    try:
        return cupy_backend.available()
    except Exception:  # noqa: BLE001 - availability must never raise
        return False


def device_count() -> int:
    return cupy_backend.module().cuda.runtime.getDeviceCount() if is_available() else 0


def synchronize(device=None):
    """Wait for all queued GPU work (no-op without a GPU)."""
    if is_available():
        cp = cupy_backend.module()
        index = cp.cuda.Device().id if device is None else _index(device)
        cp.cuda.Device(index).synchronize()
    backend.raise_deferred()  # what a kernel reported meanwhile (a bad cross-entropy target)


def _index(device) -> int:
    from gpugrad.backend import as_device

    return device if isinstance(device, int) else as_device(device).index


def get_device_name(device=None) -> str:
    """The name of a GPU: device None (the current one), an index or 'cuda:N'."""
    return cupy_backend.device_name(None if device is None else _index(device))


def __getattr__(name):
    # torch's names for capturing GPU work into a CUDA graph (gpugrad/cuda_graph.py), imported
    # on first use so that `import gpugrad` never reaches for CuPy
    if name in ("CUDAGraph", "graph"):
        from gpugrad import cuda_graph

        return getattr(cuda_graph, name)
    raise AttributeError(f"module 'gpugrad.cuda' has no attribute '{name}'")
