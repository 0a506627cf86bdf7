"""pytest plugin: run gpugrad's `cuda` tests against the fake CuPy and the CUDA simulator.

    python -m pytest -p tests.fake_cupy.plugin -m cuda tests/

cupy / cupyx resolve to tests/fake_cupy (NumPy underneath, CuPy's API and refusals on top) and
gpugrad._cuda to the simulator's build of csrc/cuda (tests/cuda_sim), so the op table, the
engine, nn, optim, the kernel wrappers and the CuPy fallback kernels (ElementwiseKernel /
RawKernel sources, compiled by g++ for the simulator) run their device code paths without a GPU.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _install():
    for name in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
        del sys.modules[name]  # a real CuPy imported before us must not answer
    sys.path.insert(0, str(_HERE))
    import cupy

    assert cupy.__version__.endswith("+fake"), cupy.__file__
    from tests.cuda_sim import build

    sys.modules["gpugrad._cuda"] = _capturable(build.load(), cupy)


def _capturable(module, cupy):
    """gpugrad._cuda as the simulator builds it, its launches recorded instead of run while the
    current stream captures a CUDA graph (each kernel function takes the stream last)."""
    proxy = types.ModuleType(module.__name__)
    proxy.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    for name in module.kernel_names():
        proxy.__dict__[name] = _launcher(getattr(module, name), cupy)
    return proxy


def _launcher(kernel, cupy):
    def launch(*args):
        cupy._enqueue(lambda: kernel(*args))

    launch.__name__ = launch.__qualname__ = kernel.__name__
    launch.__doc__ = kernel.__doc__
    return launch


_install()
