"""A NumPy-backed stand-in for CuPy, for running gpugrad's `cuda` tests on a machine with no GPU.

Not a GPU emulator: arrays live in host memory and every operation is NumPy's. What it keeps of
CuPy is what gpugrad's CUDA path can get wrong without a GPU at hand:

- its arrays are not NumPy arrays: `isinstance(a, numpy.ndarray)` is False, implicit conversion
  (`numpy.asarray(a)`, `float(a)` aside) raises TypeError as CuPy does, and NumPy ufuncs mixing
  host and device arrays raise TypeError, so a host/device mix-up fails as it would on the GPU;
- reductions and element indexing return 0-d arrays, not scalars;
- only names that CuPy 14 has exist (cupy_api.json is the snapshot taken from cupy-cuda13x
  14.2.0), so calling a NumPy function CuPy lacks fails here too;
- `.data.ptr`, `.device.id`, `cupy.cuda.Device`, streams and the memory pool answer as CuPy's;
- with GG_FAKE_GPUS=N (default 1) there are N devices: an array belongs to the device current
  when it was made, and an operation that launches work refuses arrays of another device, as
  CuPy does where GPUs have no peer access (copies with cupy.asarray / .get() are fine).

Kernels: gpugrad._cuda is the CUDA simulator's build of csrc/cuda (tests/fake_cupy/plugin.py
installs it); ElementwiseKernel, RawKernel and RawModule sources are compiled by g++ for the
simulator (_kernels.py). ReductionKernel is not there.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import json
import os
import threading
import types
from pathlib import Path

import numpy as _np

_API = json.loads((Path(__file__).resolve().parent.parent / "cupy_api.json").read_text())
__version__ = _API["version"] + "+fake"
_NDARRAY_NAMES = frozenset(_API["ndarray"])
_DEVICE_COUNT = int(os.environ.get("GG_FAKE_GPUS", "1"))
_CURRENT = [0]  # the current device, as cupy.cuda.Device sets it
# methods that launch nothing on the device (metadata, views, host copies): any device may call
_NO_LAUNCH = frozenset({"get", "item", "tolist", "reshape", "view", "transpose", "swapaxes",
                        "squeeze", "__cuda_array_interface__"})
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
             "construct a NumPy array explicitly.")


# ---- wrapping ------------------------------------------------------------------------------------
def _unwrap(value):
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, _np.ndarray):
        return ndarray._of(value)
    if isinstance(value, _np.generic) and not isinstance(value, (_np.str_, _np.bytes_)):
        return ndarray._of(_np.asarray(value))  # CuPy gives 0-d arrays, not scalars
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _on_current_device(values, what: str):
    """CuPy's check when it launches a kernel: every array on the current device."""
    for v in values:
        if isinstance(v, ndarray) and v._dev != _CURRENT[0]:
            raise ValueError(f"{what}: Array device must be same as the current device: array "
                             f"device = {v._dev} while current = {_CURRENT[0]}")
        if isinstance(v, (tuple, list)):
            _on_current_device(v, what)


def _refuse_host_arrays(values, what: str):
    for v in values:
        if isinstance(v, _np.ndarray):
            raise TypeError(f"Unsupported type {type(v)} in {what}: a NumPy array mixed with "
                            "CuPy arrays (move it with cupy.asarray first)")
        if isinstance(v, (tuple, list)):
            _refuse_host_arrays(v, what)


def _device_function(fn, name: str, host_arrays_ok: bool = False):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not host_arrays_ok:
            _refuse_host_arrays(args, f"cupy.{name}")
            _refuse_host_arrays(kwargs.values(), f"cupy.{name}")
        _on_current_device(args, f"cupy.{name}")
        _on_current_device(kwargs.values(), f"cupy.{name}")
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))

    return call


class _Pointer:
    """cupy.cuda.MemoryPointer: an address, and the raw copies gpugrad's benchmarks make."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr

    def copy_from_device(self, src: _Pointer, size: int, stream=None):
        ctypes.memmove(self.ptr, src.ptr, size)

    copy_from_device_async = copy_from_device

    def memset(self, value: int, size: int, stream=None):
        ctypes.memset(self.ptr, value, size)

    memset_async = memset


# ---- the array -------------------------------------------------------------------------------
class ndarray:  # CuPy's name
    __slots__ = ("_a", "_dev")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("fake cupy: ndarray(memptr=, strides=)")
        self._a = _np.empty(shape, dtype=dtype, order=order)
        self._dev = _CURRENT[0]

    @classmethod
    def _of(cls, array: _np.ndarray, device: int | None = None) -> ndarray:
        """A device array over `array`, on `device` (default: the current one)."""
        out = object.__new__(cls)
        out._a = array
        out._dev = _CURRENT[0] if device is None else device
        return out

    def _view(self, array: _np.ndarray) -> ndarray:
        return ndarray._of(array, self._dev)  # a view lives where its base does

    # what CuPy's array answers about itself
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: self._view(self._a.T))
    mT = property(lambda self: self._view(_np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: self._view(self._a.real))
    imag = property(lambda self: self._view(self._a.imag))
    base = property(lambda self: None if self._a.base is None else self._view(self._a.base))
    data = property(lambda self: _Pointer(self._a.__array_interface__["data"][0]))
    device = property(lambda self: cuda.Device(self._dev))

    @property
    def __cuda_array_interface__(self):
        interface = dict(self._a.__array_interface__)
        interface.update(version=3, stream=1)
        return interface

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    def get(self, stream=None, order="C", out=None, blocking=True):
        host = _np.array(self._a, order=order)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None):
        self._a[...] = arr

    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host_arrays(inputs, f"numpy.{ufunc.__name__}")
        _refuse_host_arrays(kwargs.get("out", ()), f"numpy.{ufunc.__name__}")
        _on_current_device([*inputs, *kwargs.get("out", ())], f"numpy.{ufunc.__name__}")
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)))

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        if name not in _API["cupy"]:
            return NotImplemented
        return getattr(_module, name)(*args, **kwargs)

    def __getattr__(self, name):
        if name not in _NDARRAY_NAMES:
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        if name in _NO_LAUNCH:  # views and host copies: no kernel, any device

            def view(*args, **kwargs):
                out = attr(*_unwrap(args), **_unwrap(kwargs))
                return self._view(out) if isinstance(out, _np.ndarray) else out

            return view
        method = _device_function(attr, f"ndarray.{name}")

        def call(*args, **kwargs):
            if not (name == "astype" and kwargs.get("copy") is False and args
                    and _np.dtype(args[0]) == self.dtype):  # a no-op astype launches nothing
                _on_current_device([self], f"cupy.ndarray.{name}")
            out = method(*args, **kwargs)
            return self if isinstance(out, ndarray) and out._a is self._a else out  # astype(copy=False)

        return call

    def __getitem__(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        if any(isinstance(i, (ndarray, list, _np.ndarray)) for i in parts):  # a gather kernel
            _on_current_device([self, *parts], "cupy.ndarray.__getitem__")
            return _wrap(self._a[_unwrap(index)])
        return self._view(self._a[index])  # basic indexing: a view, no kernel

    def __setitem__(self, index, value):
        parts = index if isinstance(index, tuple) else (index,)
        _on_current_device([self, value, *parts], "cupy.ndarray.__setitem__")
        self._a[_unwrap(index)] = _unwrap(value)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __bool__(self):
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __index__(self):
        return self._a.__index__()

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    def __reduce__(self):
        raise TypeError("fake cupy: pickling a device array")

    __hash__ = None


def _operator(name):
    def op(self, *args):
        _refuse_host_arrays(args, f"cupy.ndarray.{name}")
        _on_current_device([self, *args], f"cupy.ndarray.{name}")
        result = getattr(self._a, name)(*_unwrap(args))
        if result is NotImplemented:
            return NotImplemented
        if name in _IN_PLACE:  # the same device array, updated
            return self
        return _wrap(result)

    op.__name__ = name
    return op


_IN_PLACE = set()
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift", "divmod"):
    for _form in (f"__{_name}__", f"__r{_name}__", f"__i{_name}__"):
        if hasattr(_np.ndarray, _form):
            setattr(ndarray, _form, _operator(_form))
    _IN_PLACE.add(f"__i{_name}__")
for _form in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__neg__", "__pos__",
              "__abs__", "__invert__"):
    setattr(ndarray, _form, _operator(_form))


# ---- module functions ----------------------------------------------------------------------------
def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray):
        if a._dev != _CURRENT[0]:  # a copy between GPUs, onto the current one
            a = ndarray._of(a._a.copy())
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray._of(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    host = obj._a if isinstance(obj, ndarray) else obj
    return ndarray._of(_np.array(host, dtype=dtype, copy=True if copy else None, order=order,
                                 ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _module if any(isinstance(a, ndarray) for a in args) else _np


def _no_kernel(kind):
    def refuse(*args, **kwargs):
        raise RuntimeError(f"fake cupy: {kind} is not emulated (the fake runs gpugrad._cuda, "
                           "the CUDA simulator's build, instead)")

    return refuse


from cupy._kernels import ElementwiseKernel, RawKernel, RawModule  # noqa: F401 - g++ + the sim

ReductionKernel = _no_kernel("ReductionKernel")


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def set_limit(self, size=None, fraction=None):
        pass

    def get_limit(self):
        return 0


_memory_pool = _MemoryPool()
_pinned_pool = _MemoryPool()


def get_default_memory_pool():
    return _memory_pool


def get_default_pinned_memory_pool():
    return _pinned_pool


# ---- cupy.cuda ----------------------------------------------------------------------------------
class _Device:
    """cupy.cuda.Device: one fake GPU, number 0; a context manager like CuPy's."""

    def __init__(self, device=None):
        self.id = _CURRENT[0] if device is None else int(device)
        if not 0 <= self.id < _DEVICE_COUNT:
            raise _CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        self._previous = []

    def __enter__(self):
        self._previous.append(_CURRENT[0])
        _CURRENT[0] = self.id
        return self

    def __exit__(self, *exc):
        _CURRENT[0] = self._previous.pop()

    def use(self):
        _CURRENT[0] = self.id

    def synchronize(self):
        pass

    compute_capability = property(lambda self: "90")

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _CUDARuntimeError(RuntimeError):
    pass


_STREAM_LEGACY, _STREAM_PER_THREAD = 1, 2  # cudaStreamLegacy, cudaStreamPerThread handles
_new_stream_handles = itertools.count(0x5000, 0x100)  # a made stream's handle: never 0, 1 or 2
_threads = threading.local()


class _Stream:
    """cupy.cuda.Stream as CuPy keeps it: Stream.null is handle 0, Stream.ptds the per-thread
    default stream's (cudaStreamPerThread), a made stream gets its own handle on the current
    device; streams compare by handle; the current stream is per thread (`with stream:` pushes,
    use() replaces) and starts as Stream.null. Work runs at once here, so there is nothing to
    wait for: a race between streams cannot show on the fake (tests/test_cuda_conditions.py
    looks for one on a GPU)."""

    null = None
    ptds = None

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        if null or ptds:
            self.ptr, self.device_id = (0 if null else _STREAM_PER_THREAD), -1
        else:
            self.ptr, self.device_id = next(_new_stream_handles), _CURRENT[0]
        self.is_non_blocking = bool(non_blocking) and not (null or ptds)

    def __eq__(self, other):
        return isinstance(other, _Stream) and other.ptr == self.ptr

    def __hash__(self):
        return self.ptr

    def __repr__(self):
        return f"<Stream {self.ptr} (device {self.device_id})>"

    def _check_device(self):
        if self.device_id not in (-1, _CURRENT[0]):
            raise RuntimeError(f"The device that the stream is created on ({self.device_id}) "
                               f"does not match with the current device ({_CURRENT[0]})")

    def use(self):
        self._check_device()
        _thread_streams()["current"] = self
        return self

    def __enter__(self):
        self._check_device()
        streams = _thread_streams()
        streams["stack"].append(self)
        streams["current"] = self
        return self

    def __exit__(self, *exc):
        streams = _thread_streams()
        streams["stack"].pop()
        streams["current"] = streams["stack"][-1]

    def synchronize(self):
        pass

    done = property(lambda self: True)

    def record(self, event=None):
        event = _Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event):  # work runs in order here: nothing to wait for
        pass


_Stream.null = _Stream(null=True)
_Stream.ptds = _Stream(ptds=True)


def _thread_streams() -> dict:
    """This thread's current stream and `with` stack, made on its first use."""
    streams = getattr(_threads, "streams", None)
    if streams is None:
        streams = _threads.streams = {"current": _Stream.null, "stack": [_Stream.null]}
    return streams


class _Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        import time

        self._clock = time.perf_counter
        self._t = None

    def record(self, stream=None):
        self._t = self._clock()

    def synchronize(self):
        pass

    done = property(lambda self: True)


def _get_elapsed_time(start, end):
    return (end._t - start._t) * 1e3


# a small GPU: 16 GiB with 8 GiB free, so checks sized by free memory (2**31 elements) skip here
_PROPERTIES = {"name": b"fake GPU (tests/fake_cupy: NumPy + the CUDA simulator)",
               "totalGlobalMem": 1 << 34, "multiProcessorCount": 2, "major": 9, "minor": 0,
               "maxThreadsPerMultiProcessor": 512, "warpSize": 32}

cuda = types.ModuleType("cupy.cuda")
cuda.Device = _Device
cuda.Stream = _Stream
cuda.Event = _Event
cuda.get_elapsed_time = _get_elapsed_time
cuda.get_current_stream = lambda device_id=-1: _thread_streams()["current"]
cuda.is_available = lambda: True
cuda.runtime = types.SimpleNamespace(
    getDeviceCount=lambda: _DEVICE_COUNT,
    getDevice=lambda: _CURRENT[0],
    setDevice=lambda device: _Device(device).use(),
    getDeviceProperties=lambda device: dict(_PROPERTIES),
    deviceSynchronize=lambda: None,
    memGetInfo=lambda: (1 << 33, 1 << 34),
    runtimeGetVersion=lambda: 13000,
    streamLegacy=_STREAM_LEGACY,
    streamPerThread=_STREAM_PER_THREAD,
    driverGetVersion=lambda: 13000,
    CUDARuntimeError=_CUDARuntimeError,
)
cuda.compiler = types.SimpleNamespace(CompileException=type("CompileException", (Exception,), {}))
cuda.MemoryHook = type("MemoryHook", (), {"__enter__": lambda self: self,
                                          "__exit__": lambda self, *exc: None})
cuda.memory = types.SimpleNamespace(OutOfMemoryError=MemoryError)


# ---- random, linalg, fft --------------------------------------------------------------------------
def _submodule(name: str, host_module, names):
    module = types.ModuleType(f"cupy.{name}")
    for attr in names:
        if hasattr(host_module, attr):
            value = getattr(host_module, attr)
            setattr(module, attr, _device_function(value, f"{name}.{attr}")
                    if callable(value) and not isinstance(value, type) else value)
    return module


random = _submodule("random", _np.random, _API["random"])
_rng = [_np.random.RandomState(0)]


def _random_function(draw):
    """CuPy's random signatures: a dtype= argument (float64 unless given), device arrays out."""

    @functools.wraps(draw)
    def sample(*args, dtype=float, **kwargs):
        return ndarray._of(_np.asarray(draw(_rng[0], *args, **kwargs)).astype(dtype, copy=False))

    return sample


random.seed = lambda seed=None: _rng.__setitem__(0, _np.random.RandomState(seed))
random.standard_normal = _random_function(lambda r, size=None: r.standard_normal(size))
random.normal = _random_function(lambda r, loc=0.0, scale=1.0, size=None: r.normal(loc, scale, size))
random.uniform = _random_function(lambda r, low=0.0, high=1.0, size=None: r.uniform(low, high, size))
random.random = random.random_sample = _random_function(lambda r, size=None: r.random_sample(size))
random.rand = _random_function(lambda r, *size: r.random_sample(size))
random.randn = _random_function(lambda r, *size: r.standard_normal(size))
random.randint = lambda low, high=None, size=None, dtype=int: ndarray._of(
    _rng[0].randint(low, high, size).astype(dtype))
linalg = _submodule("linalg", _np.linalg, _API["linalg"])
fft = _submodule("fft", _np.fft, _API["fft"])


def __getattr__(name):
    if name not in _API["cupy"] or not hasattr(_np, name):
        raise AttributeError(f"module 'cupy' has no attribute '{name}'"
                             + ("" if name in _API["cupy"] else " (CuPy 14 has no such name)"))
    value = getattr(_np, name)
    if callable(value) and not isinstance(value, type):
        value = _device_function(value, name)
    globals()[name] = value  # cached: the next lookup skips this
    return value


import sys as _sys

_module = _sys.modules[__name__]
_sys.modules["cupy.cuda"] = cuda
_sys.modules["cupy.random"] = random
_sys.modules["cupy.linalg"] = linalg
_sys.modules["cupy.fft"] = fft
