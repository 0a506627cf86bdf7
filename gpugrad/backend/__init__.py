"""The only place that knows NumPy from CuPy: devices, array modules and dtype rules.

Ops ask `xp_of(array)` / `xp_for(device)` for their array module and never import cupy.
"""
from __future__ import annotations

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
    if isinstance(array, np.ndarray):
        return Device("cpu")
    return Device("cuda", int(array.device.id))


def to_device(array, device: Device):
    """Copy `array` to `device` (no copy when it is already there)."""
    if device.type == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    cp = cupy_backend.require(device)
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


def backend_info() -> dict:
    """Which array modules and kernel sets are in use, and why a GPU is not."""
    from gpugrad.backend import kernels

    info = {
        "cpu": "numpy " + np.__version__,
        "cpu_kernels": "gpugrad._C" if kernels.native_cpu() is not None else "numpy only",
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
