"""Creating tensors: gg.tensor, zeros/ones/full/arange/randn/..., the global RNG, dlpack."""
from __future__ import annotations

import itertools

import numpy as np

from gpugrad import backend, dtypes, replay
from gpugrad.tensor import Tensor, _check_can_require_grad

_rng = {"gen": np.random.default_rng(), "dropout": [int(np.random.SeedSequence().entropy % 2**53), 0]}


def manual_seed(seed: int):
    """Seed gpugrad's generator (random numbers are drawn on the CPU, so every device agrees)
    and dropout's counter-based stream (drawn by a kernel on the tensor's device)."""
    _rng["gen"] = np.random.default_rng(int(seed))
    _rng["dropout"] = [int(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0] % 2**53), 0]
    return _rng["gen"]


def dropout_stream(count: int) -> tuple[int, int]:
    """(seed, offset) of the next `count` numbers of dropout's random stream, advancing it."""
    state = _rng["dropout"]
    offset = state[1]
    state[1] += int(count)
    return state[0], offset


def generator() -> np.random.Generator:
    return _rng["gen"]


def _leaf_types(data) -> set:
    """The types of everything in a nested list or tuple, a level at a time (C speed)."""
    found: set = set()
    level = [data]
    while level:
        kinds = set(map(type, itertools.chain.from_iterable(level)))
        found |= kinds
        if not any(issubclass(k, (list, tuple)) for k in kinds):
            break
        level = [x for x in itertools.chain.from_iterable(level) if isinstance(x, (list, tuple))]
    return found


def _sequence_dtype(data):
    """The dtype torch infers for a (nested) list or tuple holding NumPy scalars: each element's
    own (a NumPy scalar's dtype, a Python float the default float, an int int64, a bool bool),
    joined by torch's promotion. None when it holds no NumPy scalar (the plain rules apply)."""
    found = _leaf_types(data)
    if not any(issubclass(k, np.generic) for k in found):
        return None
    result = None
    for kind in found:
        if issubclass(kind, (list, tuple)):
            continue
        if issubclass(kind, np.generic):
            if np.dtype(kind) not in dtypes._BY_NP:
                return None  # the plain rules name the unsupported dtype
            this = dtypes.from_numpy(np.dtype(kind))
        elif issubclass(kind, (bool, int, float)):
            this = dtypes.python_scalar_dtype(kind())  # the type's zero stands for its values
        else:
            return None
        result = this if result is None else dtypes._promote_pair(result, this)
    return None if result is None else result.np


def _infer_np_dtype(array: np.ndarray, data) -> np.dtype:
    kind = array.dtype.kind
    typed = isinstance(data, (np.ndarray, np.generic))  # NumPy's own types keep their dtype
    if isinstance(data, (list, tuple)) and kind in "biuf":
        inferred = _sequence_dtype(data)
        if inferred is not None:
            return inferred
    if kind == "f":
        return dtypes.DEFAULT_FLOAT.np if not typed else array.dtype
    if kind in "iu":
        if typed:
            if array.dtype not in dtypes._BY_NP:
                raise TypeError(
                    f"tensor: unsupported dtype {array.dtype} (gpugrad has uint8, int8 to int64, "
                    "bool and floats); pass dtype= to convert"
                )
            return array.dtype
        return np.dtype(np.int64)
    if kind == "b":
        return np.dtype(np.bool_)
    if kind == "c":
        raise TypeError("tensor: complex numbers are not supported")
    raise TypeError(
        f"tensor: data must be numbers, nested sequences of numbers or an array; "
        f"got {type(data).__name__} holding {array.dtype} values"
    )


def _as_array(data, dtype=None, device=None):
    """An array for gg.tensor(data, dtype, device): copies, infers dtype as torch does."""
    np_dtype = None
    if dtype is not None:
        dt = dtypes.as_dtype(dtype)
        if dt.np is None:
            dtypes._no_bfloat16()
        np_dtype = dt.np
    if isinstance(data, Tensor) or (
        not isinstance(data, np.ndarray) and hasattr(data, "__cuda_array_interface__")
    ):
        array = data.array if isinstance(data, Tensor) else _gpu_array(data)
        target = backend.as_device(device) if device is not None else backend.device_of(array)
        with _on(target):  # CuPy copies and casts onto the current GPU
            array = backend.to_device(array, target)
            return array.astype(np_dtype if np_dtype is not None else array.dtype, copy=True)
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"tensor: data must be numeric, got {type(data).__name__}")
    try:
        host = np.array(data)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"tensor: could not read data as a numeric array: {exc}") from None
    if np_dtype is None:
        np_dtype = _infer_np_dtype(host, data)
    elif host.dtype.kind not in "biuf":
        raise TypeError(f"tensor: data must be numeric, got {host.dtype} values")
    host = np.array(host, dtype=np_dtype, order="C")
    dev = backend.as_device(device)
    if dev.type == "cpu":
        return host
    return backend.to_device(host, dev)


def _gpu_array(data):
    """A CuPy view of any GPU array (torch, Numba... through __cuda_array_interface__)."""
    from gpugrad.backend import cupy_backend

    cp = cupy_backend.module()
    return data if isinstance(data, cp.ndarray) else cp.asarray(data)


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of data (lists, scalars, arrays, tensors)."""
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"size must be non-negative integers, got {tuple(size)}")
    return tuple(int(s) for s in size)


def _finish(array, requires_grad) -> Tensor:
    t = Tensor._make(array, bool(requires_grad))
    if requires_grad:
        _check_can_require_grad(t)
    return t


def _np_dtype(dtype, default=None):
    dt = dtypes.as_dtype(dtype) if dtype is not None else (default or dtypes.DEFAULT_FLOAT)
    if dt.np is None:
        dtypes._no_bfloat16()
    return dt.np


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of the given size filled with fill_value."""
    if dtype is None:
        default = dtypes.result_type(fill_value)
        dtype = default
    xp = backend.xp_for(backend.as_device(device))
    shape = _size((size,) if isinstance(size, (int, np.integer)) else (tuple(size),))
    with _on(device):
        array = replay.op(xp.full, shape, fill_value, _np_dtype(dtype))
    return _finish(array, requires_grad)


def _filled(value, size, dtype, device, requires_grad):
    xp = backend.xp_for(backend.as_device(device))
    with _on(device):
        array = replay.op(xp.full, _size(size), value, _np_dtype(dtype))
    return _finish(array, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros."""
    return _filled(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones."""
    return _filled(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An uninitialised tensor (here: zeros)."""
    return _filled(0, size, dtype, device, requires_grad)


def _like(t: Tensor, value, dtype, device, requires_grad):
    return _filled(value, t.shape, dtype or t.dtype, device or t.device, requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(t, 0, dtype, device, requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(t, 1, dtype, device, requires_grad)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(t, 0, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(t, fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from start to end (exclusive) by step; int64 unless a bound is a float."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dtypes.result_type(start, end, step)
    host = np.arange(start, end, step, dtype=_np_dtype(dtype))
    return _finish(backend.to_device(host, backend.as_device(device)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    host = np.linspace(start, end, int(steps), dtype=_np_dtype(dtype))
    return _finish(backend.to_device(host, backend.as_device(device)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    host = np.eye(n, m, dtype=_np_dtype(dtype))
    return _finish(backend.to_device(host, backend.as_device(device)), requires_grad)


def _random(draw, size, dtype, device, requires_grad):
    np_dtype = _np_dtype(dtype)
    if np_dtype.kind != "f":
        raise TypeError(f"random floats need a floating dtype, got {np_dtype}")
    work = np_dtype if np_dtype in (np.float32, np.float64) else np.float32
    return _finish(replay.op(_draw, draw, _size(size), work, np_dtype, backend.as_device(device)),
                   requires_grad)


def _draw(draw, size, work, np_dtype, device):
    """Fresh samples from the global generator (drawn again at every replay of a captured step)."""
    if replay.state.gpu is not None:
        raise replay.CaptureError(
            "capture: random numbers from gpugrad's generator are drawn on the host, which a "
            "CUDA graph cannot repeat; pass them in as inputs of the step (dropout draws its own "
            "on the device)")
    return backend.to_device(draw(_rng["gen"], size, work).astype(np_dtype, copy=False), device)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    return _random(lambda g, s, d: g.standard_normal(s, dtype=d), size, dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random(lambda g, s, d: g.random(s, dtype=d), size, dtype, device, requires_grad)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return rand(*t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    """Integers in [low, high); randint(high, size) as torch's two-argument form."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    def draw(generator, shape, np_dtype, device):
        return backend.to_device(generator().integers(low, high, size=shape, dtype=np.int64)
                                 .astype(np_dtype), device)

    return _finish(replay.op(draw, generator, _size((tuple(size),)), _np_dtype(dtype, dtypes.int64),
                              backend.as_device(device)), False)


def randperm(n, dtype=None, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1 (from `generator` when given)."""
    def draw(rng, n, np_dtype, device):
        return backend.to_device(rng.permutation(n).astype(np_dtype), device)

    return _finish(replay.op(draw, _rng_of(generator), int(n), _np_dtype(dtype, dtypes.int64),
                             backend.as_device(device)), False)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (it keeps its dtype)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    dtypes.from_numpy(array.dtype)
    return Tensor._make(array)


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, torch, ...)."""
    device_type, _ = obj.__dlpack_device__()
    if device_type == 1:  # kDLCPU
        array = np.from_dlpack(obj)
    else:
        from gpugrad.backend import cupy_backend

        array = cupy_backend.module().from_dlpack(obj)
    dtypes.from_numpy(array.dtype)
    return Tensor._make(array)


def _on(device):
    """Make CuPy allocate on the requested GPU (it allocates on its current one)."""
    return backend.on_device(backend.as_device(device))



class Generator:
    """A random number generator of its own (torch.Generator): DataLoader(generator=...),
    random_split and randperm draw from it instead of gpugrad's global generator, so a seed
    set here reproduces them on its own."""

    def __init__(self, device="cpu"):
        self.device = backend.as_device(device)
        self._seed = int(np.random.SeedSequence().entropy % 2**63)
        self._rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed expected an int seed, got {type(seed).__name__}")
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy; returns the new seed."""
        return self.manual_seed(int(np.random.SeedSequence().entropy % 2**63))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self._rng.bit_generator.state = state
        return self


def _rng_of(generator) -> np.random.Generator:
    """The NumPy generator behind a gg.Generator, or gpugrad's global one for None."""
    if generator is None:
        return _rng["gen"]
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a gpugrad.Generator, got {type(generator).__name__}")
    return generator._rng
