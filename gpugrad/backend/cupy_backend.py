"""CuPy, imported lazily: importing gpugrad never fails for lack of a GPU, driver or CuPy."""
from __future__ import annotations

_state: dict = {}


def _probe():
    if "ok" in _state:
        return
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("CuPy found no CUDA device")
        _state.update(ok=True, module=cupy, count=count, reason="")
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


def device_name() -> str:
    cp = module()
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)
