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

Stream capture (CUDA graphs), as CUDA does it: while a stream captures, work issued on it is
recorded, not run (a kernel's output buffer keeps its old contents; the fake computes pure
operations at once only to learn their results' shapes, and in-place work not at all); a
synchronizing call (a device-to-host read, a host-to-device copy from pageable memory, a
synchronize) raises CUDARuntimeError and invalidates the capture, so end_capture raises too;
Graph.launch replays the recorded work in order, on whatever stream. cupy.random's numbers are
fixed when captured (CuPy's generator offset is baked in). tests/test_cupy_semantics.py states
these and runs on a real GPU as well.
"""
from __future__ import annotations

import contextlib
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


def _device_function(fn, name: str, host_arrays_ok: bool = False, in_place: bool = False):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not host_arrays_ok:
            _refuse_host_arrays(args, f"cupy.{name}")
            _refuse_host_arrays(kwargs.values(), f"cupy.{name}")
        _on_current_device(args, f"cupy.{name}")
        _on_current_device(kwargs.values(), f"cupy.{name}")
        return _issue(lambda: fn(*_unwrap(args), **_unwrap(kwargs)),
                      in_place or kwargs.get("out") is not None,
                      kwargs.get("out"))

    return call


# ---- stream capture --------------------------------------------------------------------------------
_capture = {"stream": None, "graph": None, "error": None}


def _capturing() -> bool:
    """Work issued now would be captured: this thread's current stream is capturing."""
    stream = _capture["stream"]
    return stream is not None and _thread_streams()["current"].ptr == stream.ptr


def _refuse_sync(what: str):
    """A call that waits for the device or copies through pageable host memory: refused while
    the current stream captures (and the capture is invalidated), as CUDA does."""
    if _capturing():
        _capture["error"] = what
        raise _CUDARuntimeError("cudaErrorStreamCaptureUnsupported: operation not permitted "
                                f"when stream is capturing ({what})")


def _hold_for_graph(array: _np.ndarray) -> None:
    """Memory allocated while a stream captures comes from the capture's pool and stays the
    graph's after its array is dropped (a launch still writes there), as CUDA's graph pools do:
    the graph holds the NumPy buffer, so that nothing made later is given that memory."""
    if _capturing():
        _capture["graph"]._held.append(array)


def _enqueue(run):
    """In-place device work: run now, or recorded into the graph being captured."""
    if _capturing():
        _capture["graph"]._work.append(run)
    else:
        run()


def _issue(compute, in_place: bool, out=None):
    """Device work through NumPy: compute() now; while capturing, in-place work is only
    recorded and a pure result's buffers are refilled by compute() at each launch."""
    if not _capturing():
        return _wrap(compute())
    if in_place:
        _capture["graph"]._work.append(compute)
        return out
    with _np.errstate(all="ignore"):  # inputs may be garbage now (memory not yet written)
        result = compute()  # now only for the shapes: the launch refills these buffers
    if isinstance(result, _np.generic):
        result = _np.asarray(result)  # a 0-d device array, as CuPy returns: its own buffer
    buffers = [r for r in (result if isinstance(result, (tuple, list)) else [result])
               if isinstance(r, _np.ndarray)]

    def refill():
        fresh = compute()
        for buffer, value in zip(buffers, fresh if isinstance(fresh, (tuple, list)) else [fresh]):
            _np.copyto(buffer, value)

    _capture["graph"]._work.append(refill)
    return _wrap(result)


class _Graph:
    """cupy.cuda.Graph: the recorded work, replayed by launch()."""

    def __init__(self):
        self._work = []
        self._held = []  # buffers allocated during the capture (_hold_for_graph)

    def launch(self, stream=None):
        for run in self._work:
            run()

    def upload(self, stream=None):
        pass


class _Pointer:
    """cupy.cuda.MemoryPointer: an address, and the raw copies gpugrad's benchmarks make."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int):
        self.ptr = ptr

    def copy_from_device(self, src: _Pointer, size: int, stream=None):
        _enqueue(lambda: ctypes.memmove(self.ptr, src.ptr, size))

    copy_from_device_async = copy_from_device

    def memset(self, value: int, size: int, stream=None):
        _enqueue(lambda: ctypes.memset(self.ptr, value, size))

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
        _hold_for_graph(self._a)

    @classmethod
    def _of(cls, array: _np.ndarray, device: int | None = None) -> ndarray:
        """A device array over `array`, on `device` (default: the current one)."""
        out = object.__new__(cls)
        out._a = array
        out._dev = _CURRENT[0] if device is None else device
        _hold_for_graph(array)
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
        _refuse_sync("ndarray.get (a device-to-host copy)")
        host = _np.array(self._a, order=order)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None):
        _refuse_sync("ndarray.set (a host-to-device copy from pageable memory)")
        self._a[...] = arr

    def __array__(self, *args, **kwargs):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host_arrays(inputs, f"numpy.{ufunc.__name__}")
        _refuse_host_arrays(kwargs.get("out", ()), f"numpy.{ufunc.__name__}")
        _on_current_device([*inputs, *kwargs.get("out", ())], f"numpy.{ufunc.__name__}")
        out = kwargs.get("out")
        return _issue(lambda: getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs)),
                      out is not None, out[0] if out is not None and len(out) == 1 else out)

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
                if name in ("get", "item", "tolist"):
                    _refuse_sync(f"ndarray.{name} (a device-to-host read)")
                out = attr(*_unwrap(args), **_unwrap(kwargs))
                return self._view(out) if isinstance(out, _np.ndarray) else out

            return view
        method = _device_function(attr, f"ndarray.{name}", in_place=name in _IN_PLACE_METHODS)

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
            return _issue(lambda: self._a[_unwrap(index)], False)
        return self._view(self._a[index])  # basic indexing: a view, no kernel

    def __setitem__(self, index, value):
        parts = index if isinstance(index, tuple) else (index,)
        _on_current_device([self, value, *parts], "cupy.ndarray.__setitem__")

        def write():
            self._a[_unwrap(index)] = _unwrap(value)

        _enqueue(write)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __bool__(self):
        _refuse_sync("ndarray.__bool__ (a device-to-host read)")
        return bool(self._a)

    def __float__(self):
        _refuse_sync("ndarray.__float__ (a device-to-host read)")
        return float(self._a)

    def __int__(self):
        _refuse_sync("ndarray.__int__ (a device-to-host read)")
        return int(self._a)

    def __complex__(self):
        _refuse_sync("ndarray.__complex__ (a device-to-host read)")
        return complex(self._a)

    def __index__(self):
        _refuse_sync("ndarray.__index__ (a device-to-host read)")
        return self._a.__index__()

    def __repr__(self):
        _refuse_sync("ndarray.__repr__ (a device-to-host read)")
        return repr(self._a)

    def __str__(self):
        _refuse_sync("ndarray.__str__ (a device-to-host read)")
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
        method = getattr(self._a, name)
        if name in _IN_PLACE:  # the same device array, updated
            if _capturing():
                _enqueue(lambda: method(*_unwrap(args)))
            elif method(*_unwrap(args)) is NotImplemented:
                return NotImplemented
            return self
        result = method(*_unwrap(args))
        if result is NotImplemented:
            return NotImplemented
        return _issue(lambda: method(*_unwrap(args)), False) if _capturing() else _wrap(result)

    op.__name__ = name
    return op


_IN_PLACE = set()
_IN_PLACE_METHODS = frozenset({"fill", "sort", "partition", "put"})
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
    if not isinstance(a, ndarray):
        _refuse_sync("cupy.asarray of host data (a host-to-device copy)")
    if isinstance(a, ndarray):
        if a._dev != _CURRENT[0]:  # a copy between GPUs, onto the current one
            a = ndarray._of(a._a.copy())
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return ndarray._of(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if not isinstance(obj, ndarray):
        _refuse_sync("cupy.array of host data (a host-to-device copy)")
    elif _capturing():
        return _issue(lambda: _np.array(obj._a, dtype=dtype, copy=True, order=order, ndmin=ndmin),
                      False)
    host = obj._a if isinstance(obj, ndarray) else obj
    return ndarray._of(_np.array(host, dtype=dtype, copy=True if copy else None, order=order,
                                 ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    _refuse_sync("cupy.asnumpy (a device-to-host copy)")
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
        _refuse_sync("Device.synchronize")

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
        if _capture["stream"] is not None and _capture["stream"].ptr == self.ptr:
            _refuse_sync("Stream.synchronize")

    done = property(lambda self: True)

    def begin_capture(self, mode=None):
        if self.ptr in (0, _STREAM_LEGACY):
            raise RuntimeError("cannot capture on the default (legacy) stream")
        if _capture["stream"] is not None:
            raise _CUDARuntimeError("cudaErrorIllegalState: a stream is capturing already")
        _capture.update(stream=self, graph=_Graph(), error=None)

    def end_capture(self):
        if _capture["stream"] is None or _capture["stream"].ptr != self.ptr:
            raise _CUDARuntimeError("cudaErrorIllegalState: the stream is not capturing")
        graph, error = _capture["graph"], _capture["error"]
        _capture.update(stream=None, graph=None, error=None)
        if error is not None:
            raise _CUDARuntimeError("cudaErrorStreamCaptureInvalidated: operation failed due to "
                                    f"a previous error during capture ({error})")
        return graph

    def is_capturing(self):
        return _capture["stream"] is not None and _capture["stream"].ptr == self.ptr

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
    deviceSynchronize=lambda: _refuse_sync("cudaDeviceSynchronize"),
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
cuda.Graph = _Graph


class _PrivatePool(_MemoryPool):
    """cupy.cuda.MemoryPool: arrays here live in NumPy's memory, so malloc is never asked for."""

    def malloc(self, size):
        raise NotImplementedError("fake cupy: allocation goes through NumPy")


@contextlib.contextmanager
def _using_allocator(allocator=None):
    yield  # allocation goes through NumPy: nothing to route


cuda.MemoryPool = _PrivatePool
cuda.using_allocator = _using_allocator


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
        values = ndarray._of(_np.asarray(draw(_rng[0], *args, **kwargs)).astype(dtype, copy=False))
        if _capturing():  # CuPy's generator offset is fixed into the captured kernel
            fixed = values._a.copy()
            _capture["graph"]._work.append(lambda: _np.copyto(values._a, fixed))
        return values

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
    if name in _ALLOCATE_ONLY:  # memory, no kernel: nothing a captured graph would redo
        value = _allocator(value, name)
    elif callable(value) and not isinstance(value, type):
        value = _device_function(value, name)
    globals()[name] = value  # cached: the next lookup skips this
    return value


_ALLOCATE_ONLY = frozenset({"empty", "empty_like"})


def _allocator(fn, name: str):
    @functools.wraps(fn)
    def allocate(*args, **kwargs):
        _on_current_device(args, f"cupy.{name}")
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))

    return allocate


import sys as _sys

_module = _sys.modules[__name__]
_sys.modules["cupy.cuda"] = cuda
_sys.modules["cupy.random"] = random
_sys.modules["cupy.linalg"] = linalg
_sys.modules["cupy.fft"] = fft
