"""gpugrad/backend/cuda_kernels.py's calls into gpugrad._cuda, run without a GPU.

The fused-kernel checks of tests/test_cuda.py go through kernels.py and cuda_kernels.py exactly
as on a GPU, except that the arrays are host arrays posing as CuPy's (a `.data.ptr`, a stream of
0) and the extension is the CUDA simulator's build of the same kernels (tests/cuda_sim). So the
wrappers' argument order, dtype names, contiguous copies, write-backs of in-place updates and
broadcast gradients are checked here; CuPy itself is not (that needs the GPU run).
"""
from __future__ import annotations

import types

import numpy as np
import pytest

from gpugrad.backend import cuda_kernels, kernels
from tests.test_cuda import FUSED_CHECKS, check_relu, check_sigmoid_tanh, check_strided_inputs


class DeviceArray(np.ndarray):
    """A host array with CuPy's `.data.ptr`; results of NumPy operations stay DeviceArrays."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])

    def get(self) -> np.ndarray:
        return np.array(self)


def _device(a) -> DeviceArray:
    return np.asarray(a).view(DeviceArray)


class _NoCupyKernels(RuntimeError):
    pass


def _cupy_kernel(*_args, **_kwargs):
    raise _NoCupyKernels("a CuPy fallback kernel was asked for: the native wrapper declined")


FAKE_CUPY = types.SimpleNamespace(
    empty=lambda shape, dtype: _device(np.empty(shape, dtype)),
    ascontiguousarray=lambda a: _device(np.ascontiguousarray(a)),
    broadcast_to=lambda a, shape: _device(np.broadcast_to(a, shape)),
    ElementwiseKernel=_cupy_kernel,
    RawKernel=_cupy_kernel,
    cuda=types.SimpleNamespace(
        get_current_stream=lambda: types.SimpleNamespace(ptr=0),
        compiler=types.SimpleNamespace(CompileException=_NoCupyKernels),
    ),
)


class SimArrays:
    """The `A` of tests/test_cuda.py's checks: DeviceArrays in, NumPy arrays out."""

    @staticmethod
    def put(a: np.ndarray) -> DeviceArray:
        return _device(np.array(a, copy=True))

    @staticmethod
    def get(a) -> np.ndarray:
        return np.array(a)


@pytest.fixture
def simulated_gpu(monkeypatch, cuda_sim):
    monkeypatch.setattr(cuda_kernels, "_cupy", lambda: FAKE_CUPY)
    monkeypatch.setattr(cuda_kernels, "native", lambda: cuda_sim)
    monkeypatch.setattr(cuda_kernels, "_compiled", {})
    real_route = kernels._cuda
    monkeypatch.setattr(kernels, "_cuda", lambda x: cuda_kernels if isinstance(x, DeviceArray)
                        and kernels.forced_level() != "reference" else real_route(x))
    return cuda_sim


@pytest.mark.parametrize("n", [1, 33, 1000, 4097])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("check", FUSED_CHECKS, ids=lambda c: c.__name__[len("check_"):])
def test_fused_kernel_wrappers(simulated_gpu, check, dtype, n):
    check(SimArrays(), "native", n, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_wrappers_take_strided_inputs(simulated_gpu, dtype):
    check_strided_inputs(SimArrays(), "native", dtype)


@pytest.mark.parametrize("n", [1, 33, 4097])
def test_elementwise_wrappers_in_float16(simulated_gpu, n):
    check_sigmoid_tanh(SimArrays(), "native", n, np.float16)
    check_relu(SimArrays(), "native", n, np.float16)


def test_the_fake_cupy_refuses_fallback_kernels(simulated_gpu):
    """Proof that the checks above ran the extension: a dtype it lacks reaches for CuPy."""
    x = SimArrays.put(np.ones((2, 3), np.float16))
    with kernels.use("native"), pytest.raises(RuntimeError, match="CuPy fallback kernel"):
        kernels.bias_act_fwd(x, SimArrays.put(np.ones(3, np.float16)), "relu")
