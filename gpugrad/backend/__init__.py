"""The only place that knows NumPy from CuPy: devices, array modules and dtype rules.

Ops ask `xp_of(array)` / `xp_for(device)` for their array module and never import cupy.
"""
from __future__ import annotations

import contextlib

import numpy as np

from gpugrad.backend import cupy_backend
from gpugrad.backend.device import Device, as_device

__all__ = [
    "Device",
    "as_device",
    "xp_for",
    "xp_of",
    "device_of",
    "to_device",
    "on_device",
    "device_guard",
    "is_host",
    "to_host",
    "same_device",
    "cuda_available",
    "cuda_unavailable_reason",
    "backend_info",
]


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return cupy_backend.available()


def cuda_unavailable_reason() -> str:
    return cupy_backend.unavailable_reason()


def xp_for(device: Device):
    """Array module (numpy or cupy) that holds arrays for `device`."""
    if device.type == "cpu":
        return np
    return cupy_backend.require(device)


def xp_of(array):
    """Array module of an existing array."""
    if isinstance(array, np.ndarray) or np.isscalar(array):
        return np
    return cupy_backend.module()


def device_of(array) -> Device:
    if isinstance(array, (np.ndarray, np.generic)):
        return Device("cpu")
    return Device("cuda", int(array.device.id))


_deferred: dict = {}  # key -> check() to run at the next host read


def defer(key, check) -> None:
    """Run check() at the next host read (Tensor.item(), .numpy(), .cpu(), printing, ...): how a
    GPU kernel's finding (a bad cross-entropy target) becomes an error without a sync now."""
    _deferred[key] = check


def raise_deferred() -> None:
    """Run the deferred checks (each may raise), clearing them."""
    while _deferred:
        _deferred.pop(next(iter(_deferred)))()


def is_host(array) -> bool:
    """True for a NumPy array (host memory), False for a CuPy one."""
    return isinstance(array, np.ndarray)


def to_host(array) -> np.ndarray:
    """A NumPy array with the values of `array` (itself when it is one; a copy from a GPU)."""
    if _deferred:
        raise_deferred()
    return array if isinstance(array, np.ndarray) else array.get()


def same_device(name: str, *arrays) -> None:
    """RuntimeError naming op `name` and two of the devices when `arrays` are not all on one."""
    first = arrays[0]
    host = isinstance(first, (np.ndarray, np.generic))
    for other in arrays[1:]:
        if isinstance(other, (np.ndarray, np.generic)) is not host or (
            not host and first.device.id != other.device.id
        ):
            raise RuntimeError(f"{name}: expected all tensors on the same device, got "
                               f"{device_of(first)} and {device_of(other)}")


def to_device(array, device: Device):
    """Copy `array` to `device` (no copy when it is already there). `array`: a NumPy or CuPy
    array, a NumPy scalar, or any GPU array with __cuda_array_interface__ (torch, Numba...)."""
    if device.type == "cpu":
        if _deferred:
            raise_deferred()
        if isinstance(array, np.ndarray):
            return array
        if hasattr(array, "__cuda_array_interface__"):
            cp = cupy_backend.module()
            return (array if isinstance(array, cp.ndarray) else cp.asarray(array)).get()
        return np.asarray(array)  # a NumPy scalar or another host array-like
    cp = cupy_backend.require(device)
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


_NO_SWITCH = contextlib.nullcontext()


def on_device(device: Device):
    """A context in which CuPy allocates and launches on `device`: CuPy works on its *current*
    GPU, whatever GPU its inputs live on. A no-op for the CPU and with a single GPU."""
    if device.type == "cpu" or not cupy_backend.multi_gpu:
        return _NO_SWITCH
    return cupy_backend.require(device).cuda.Device(device.index)


def device_guard(array):
    """on_device for the GPU that holds `array`, for raw CuPy work on it outside Function.apply
    and the engine (which switch by themselves). A no-op for NumPy arrays and with one GPU."""
    if not cupy_backend.multi_gpu or isinstance(array, np.ndarray):
        return _NO_SWITCH
    index = getattr(getattr(array, "device", None), "id", None)
    if index is None:
        return _NO_SWITCH
    return cupy_backend.module().cuda.Device(index)


def backend_info() -> dict:
    """Which array modules and kernel sets are in use, and why a GPU is not."""
    from gpugrad.backend import kernels

    info = {
        "cpu": "numpy " + np.__version__,
        "cpu_kernels": _cpu_kernels(),
        "cuda_available": cuda_available(),
    }
    if cuda_available():
        cp = cupy_backend.module()
        info["cuda"] = "cupy " + cp.__version__
        info["cuda_kernels"] = "gpugrad._cuda" if kernels.native_cuda() is not None else "cupy"
        info["device_name"] = cupy_backend.device_name()
    else:
        info["cuda_reason"] = cuda_unavailable_reason()
    return info


def _cpu_kernels() -> str:
    from gpugrad.backend import kernels

    native = kernels.native_cpu()
    return "numpy only" if native is None else f"gpugrad._C ({native.isa})"
