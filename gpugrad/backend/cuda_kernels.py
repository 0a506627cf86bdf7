"""CUDA kernel level for CuPy arrays: gpugrad._cuda when built and a GPU is visible, else
CuPy RawKernels with the same math. (Filled in by the GPU work; see kernels.py for the API.)"""
from __future__ import annotations


def native():
    try:
        from gpugrad import _cuda
    except ImportError:
        return None
    return _cuda
