"""Tests marked `cuda` run only where gg.cuda.is_available(); elsewhere they skip, saying why."""
from __future__ import annotations

import functools

import pytest


@functools.cache
def cuda_skip_reason() -> str | None:
    """None when a GPU is usable, else why not (never raises)."""
    try:
        import gpugrad as gg
        from gpugrad.backend import cuda_unavailable_reason

        return None if gg.cuda.is_available() else cuda_unavailable_reason() or "no usable GPU"
    except Exception as exc:  # noqa: BLE001 - a broken install must skip, not error, here
        return f"{type(exc).__name__}: {exc}"


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a usable NVIDIA GPU (CuPy and a device)")


def pytest_collection_modifyitems(config, items):
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if cuda_items and (reason := cuda_skip_reason()) is not None:
        skip = pytest.mark.skip(reason=f"CUDA not available: {reason}")
        for item in cuda_items:
            item.add_marker(skip)


@pytest.fixture
def cupy():
    """The cupy module, on a machine with a usable GPU."""
    if (reason := cuda_skip_reason()) is not None:
        pytest.skip(f"CUDA not available: {reason}")
    import cupy

    return cupy


@pytest.fixture(scope="session")
def cuda_sim():
    """gpugrad's CUDA kernels built for the CPU simulator (tests/cuda_sim), as a module with
    gpugrad._cuda's functions; a skip where it cannot be built (no CUDA headers, compiler or
    pybind11). A failed compile is a failure, not a skip."""
    from tests.cuda_sim import build

    try:
        return build.load()
    except build.Unavailable as exc:
        pytest.skip(f"CUDA simulator not buildable here: {exc}")
