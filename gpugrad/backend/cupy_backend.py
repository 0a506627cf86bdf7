"""CuPy, imported lazily: importing gpugrad never fails for lack of a GPU, driver or CuPy."""
from __future__ import annotations

_state: dict = {}
# True once CuPy sees more than one GPU. CuPy allocates and launches on its *current* GPU, not on
# the GPU its inputs live on, so ops must then make their inputs' GPU current (see
# backend.device_guard); with one GPU (or none) that GPU is always current and nothing switches.
multi_gpu = False


def _probe():
    global multi_gpu
    if "ok" in _state:
        return
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("CuPy found no CUDA device")
        _state.update(ok=True, module=cupy, count=count, reason="")
        multi_gpu = count > 1
    except Exception as exc:  # ImportError, CUDARuntimeError without driver, ...
        reason = f"{type(exc).__name__}: {exc}".strip()
        if isinstance(exc, ImportError):
            reason = (
                "CuPy is not installed (pip install 'gpugrad[cuda]', i.e. cupy-cuda13x; "
                "cupy-cuda12x for a CUDA 12 driver)"
            )
        _state.update(ok=False, module=None, count=0, reason=reason)


def available() -> bool:
    _probe()
    return _state["ok"]


def unavailable_reason() -> str:
    _probe()
    return _state["reason"]


def module():
    _probe()
    if not _state["ok"]:
        raise RuntimeError(f"CUDA is not available: {_state['reason']}")
    return _state["module"]


def require(device):
    """The cupy module, after checking that `device` exists."""
    cp = module()
    if device.index >= _state["count"]:
        raise RuntimeError(f"device {device} does not exist: {_state['count']} CUDA device(s) visible")
    return cp


def device_name(index: int | None = None) -> str:
    """The name of GPU `index` (default: the current one)."""
    cp = module()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id if index is None else index)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)
