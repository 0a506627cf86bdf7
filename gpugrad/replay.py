"""Whole-step capture: record a training step once, then replay it without Python per op.

`gg.capture(step)` returns a callable. Its first call(s) run `step` eagerly (warm-up: optimizer
state, kernel compiles), the next one records it, and every later call replays the record:

- on the CPU, as a flat list of the array-level calls the step made: each op's forward on
  arrays (the backward rules' ops included), the fused kernels, BLAS. No Tensor, Node or graph
  is made; each value is dropped after its last use, so memory stays at or below eager's;
- on a GPU, as one CUDA graph (cuda_graph.py).

What may change between replays is read at replay time: the step's inputs, the learning rate
and the other optimizer hyperparameters (optimizers register refreshers with on_replay), the
random stream of dropout. Everything the record reads is checked while it is made: an array
computed outside gpugrad's ops, or a value read to the host (`.item()`, `bool(t)`, printing),
stops the recording with a CaptureError naming the call, so a replay is never silently wrong.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from gpugrad import backend
from gpugrad import tensor as tensor_module
from gpugrad.tensor import Tensor


class CaptureError(RuntimeError):
    """What the step did cannot be recorded (or replayed) faithfully."""


class _State:
    recorder = None  # the _Recorder of the step being recorded on the CPU, else None
    depth = 0  # > 0 inside a recorded instruction: its own array work is not recorded again
    gpu = None  # the cuda_graph capture in progress, else None


state = _State()


def recording() -> bool:
    """True while a step is being recorded (CPU) or captured into a CUDA graph."""
    return state.recorder is not None or state.gpu is not None


def on_replay(hook) -> None:
    """Run hook() before every replay of the step being recorded (a no-op otherwise): how
    optimizers refresh the hyperparameters their kernels read (learning rate, Adam's step)."""
    if state.recorder is not None:
        state.recorder.hooks.append(hook)
    elif state.gpu is not None:
        state.gpu.hooks.append(hook)


def host_values(fn, size: int):
    """fn() -> a host float64 array of `size` values a kernel reads from memory (an optimizer's
    hyperparameters, dropout's stream position). Eagerly and on the CPU, fn() now (a recorded
    step calls it again within the instruction that asked); while a CUDA graph is captured, a
    device buffer that fn() refills before every launch of the graph."""
    if state.gpu is not None:
        return state.gpu.host_values(fn, size)
    return fn()


def every_replay(fn, *args):
    """fn(*args), host-side work a step does that every replay must do again (a learning-rate
    scheduler's step): now (eager), as an instruction (CPU record), or before each launch of
    the CUDA graph being captured (which then also runs it for the capturing call)."""
    if state.gpu is not None:
        state.gpu.hooks.append(functools.partial(fn, *args))
        return None
    return op(fn, *args)


def op(fn, *args):
    """fn(*args), an array computation done outside Function.apply (a comparison, a copy, a
    fresh random array, an in-place write): run now and, while a step is recorded, replayed."""
    recorder = state.recorder
    if recorder is None or state.depth:
        return fn(*args)
    return recorder.instruction(fn, args)


def host_read(what: str):
    """Raise while recording: `what` would read a value to the host in the middle of a step."""
    if state.recorder is not None and not state.depth:
        raise CaptureError(
            f"{what} reads a value to the host in the middle of a captured step, which a replay "
            "cannot repeat; move it out of the captured function (or compute it with tensor "
            "ops and read the result after the call)")


# ---- the sentinel: values a recording made may only be used by recorded instructions --------
class Traced(np.ndarray):
    """A view of an array the recording made. Outside a recorded instruction, NumPy work on it
    (which the record would miss) and reading it to the host stop the recording."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if state.recorder is not None and not state.depth:
            raise CaptureError(f"NumPy {ufunc.__name__}.{method} on an array of the captured step "
                               "outside gpugrad's ops: a replay would not repeat it")
        inputs = tuple(_plain(a) for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_plain(a) for a in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if state.recorder is not None and not state.depth:
            raise CaptureError(f"numpy.{func.__name__} on an array of the captured step outside "
                               "gpugrad's ops: a replay would not repeat it")
        return func(*_plain_tree(args), **{k: _plain_tree(v) for k, v in kwargs.items()})

    def __array_finalize__(self, obj):
        if state.recorder is not None and not state.depth and not _State.wrapping:
            raise CaptureError("a view or copy of an array of the captured step made outside "
                               "gpugrad's ops: a replay would not repeat it")

    def _read(self, what):
        host_read(what)

    def item(self, *args):
        self._read(".item()")
        return _plain(self).item(*args)

    def tolist(self):
        self._read(".tolist()")
        return _plain(self).tolist()

    def __bool__(self):
        self._read("bool() of a tensor (a data-dependent branch)")
        return bool(_plain(self))

    def __float__(self):
        self._read("float() of a tensor")
        return float(_plain(self))

    def __int__(self):
        self._read("int() of a tensor")
        return int(_plain(self))

    def __index__(self):
        self._read("using a tensor as an index")
        return _plain(self).__index__()

    def __repr__(self):
        self._read("printing a tensor")
        return repr(_plain(self))

    __str__ = __repr__

    def __setitem__(self, index, value):
        if state.recorder is not None and not state.depth:
            raise CaptureError("an in-place write into an array of the captured step outside "
                               "gpugrad's ops: a replay would not repeat it")
        _plain(self)[index] = _plain(value)


_State.wrapping = False


def _plain(a):
    return a.view(np.ndarray) if isinstance(a, Traced) else a


def _plain_tree(obj):
    if isinstance(obj, Traced):
        return obj.view(np.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_tree(o) for o in obj)
    return obj


def _traced(a: np.ndarray) -> Traced:
    _State.wrapping = True
    try:
        return a.view(Traced)
    finally:
        _State.wrapping = False


def _guard_read(array, what: str) -> None:
    if isinstance(array, Traced):
        host_read(what)
    elif state.gpu is not None:
        raise CaptureError(f"{what} reads a value to the host in the middle of a step captured into "
                           "a CUDA graph, which CUDA refuses; read it after the call")


tensor_module.read_guard = _guard_read


# ---- recording ----------------------------------------------------------------------------------
_VALUE, _CONST, _SEQ = 0, 1, 2


class _ReplayContext:
    """The ctx a forward gets at replay: its attributes and what it saves, nothing more."""

    def __init__(self, fn, needs_input_grad, forward_ad):
        self.fn, self.needs_input_grad, self.forward_ad = fn, needs_input_grad, forward_ad
        self.saved = ()

    def save_for_backward(self, *items):
        self.saved = items

    save_for_forward = save_for_backward

    def mark_non_differentiable(self, *outputs):
        pass

    def set_materialize_grads(self, value):
        pass


class _Recorder:
    """Collects the instructions of one step. Values are arrays the step makes (slots of a
    register file at replay); anything else an instruction reads is a constant held by the
    record: parameters, optimizer state, Python numbers."""

    def __init__(self):
        self.slots: dict[int, int] = {}  # id of a traced array -> its slot
        self.arrays: list = []  # slot -> the traced array (kept alive while recording)
        self.program: list = []  # (call, arg template, value positions, outputs)
        self.hooks: list = []
        self.scalars: set[int] = set()  # slots NumPy returned as a scalar: made 0-d at replay

    # values
    def define(self, array) -> Traced:
        traced = array if isinstance(array, Traced) else _traced(array)
        self.slots[id(traced)] = len(self.arrays)
        self.arrays.append(traced)
        return traced

    def _spec(self, obj):
        if isinstance(obj, np.ndarray):
            slot = self.slots.get(id(obj))
            return (_VALUE, slot) if slot is not None else (_CONST, _plain(obj))
        if isinstance(obj, (list, tuple)) and any(isinstance(o, np.ndarray) for o in obj):
            return (_SEQ, type(obj), [self._spec(o) for o in obj])
        return (_CONST, obj)

    def _outputs(self, result, renamed=None):
        """Register the arrays of a call's result as new values: (the result with traced
        arrays, its output spec: None, a slot, or a list of them for a tuple). `renamed` gets
        id(array) -> its traced view."""
        if isinstance(result, (np.ndarray, np.generic)):  # NumPy turns 0-d results to scalars
            traced = self.define(np.asarray(result))
            if renamed is not None:
                renamed[id(result)] = traced
            if isinstance(result, np.generic):
                self.scalars.add(len(self.arrays) - 1)
            return traced, len(self.arrays) - 1
        if isinstance(result, tuple):
            parts = [self._outputs(r, renamed) for r in result]
            return tuple(p[0] for p in parts), [p[1] for p in parts]
        return result, None

    def _add(self, call, args, outputs, extra=None):
        specs = [self._spec(a) for a in args]
        self.program.append((call, specs, outputs, extra))

    # instructions
    def instruction(self, fn, args):
        state.depth += 1
        try:
            result = fn(*args)
        finally:
            state.depth -= 1
        result, outputs = self._outputs(result)
        self._add(fn, args, outputs)
        return result

    def forward(self, cls, ctx, args):
        """Function.apply's forward call, recorded: the outputs and whatever forward saved or
        kept on ctx become values (a backward rule reads them later)."""
        state.depth += 1
        try:
            raw = cls.forward(ctx, *args)
        finally:
            state.depth -= 1
        renamed = {}
        raw, outputs = self._outputs(raw, renamed)
        hidden = []
        saved = list(ctx._to_save)
        for k, item in enumerate(saved):
            if isinstance(item, np.ndarray) and id(item) not in self.slots:
                if id(item) in renamed:
                    saved[k] = renamed[id(item)]
                elif not any(item is a for a in args):
                    saved[k] = self.define(item)
                    hidden.append(("saved", k, len(self.arrays) - 1))
        ctx._to_save = tuple(saved)
        for name, value in list(vars(ctx).items()):
            if isinstance(value, np.ndarray) and not isinstance(value, Traced):
                if id(value) in renamed:
                    setattr(ctx, name, renamed[id(value)])
                elif not any(value is a for a in args):
                    setattr(ctx, name, self.define(value))
                    hidden.append(("attr", name, len(self.arrays) - 1))
        replay_ctx = _ReplayContext(cls, ctx.needs_input_grad, ctx.forward_ad)
        array_attrs = tuple(name for name, value in vars(ctx).items()
                            if isinstance(value, np.ndarray))
        self._add(functools.partial(cls.forward, replay_ctx), args, outputs,
                  (replay_ctx, hidden, array_attrs))
        return raw



# ---- replay -----------------------------------------------------------------------------------
class _Program:
    """A recorded step, compiled for replay: instructions over a register file, each value
    released after its last use."""

    def __init__(self, recorder: _Recorder, inputs: list[int], outputs, keep: set[int]):
        self.hooks = recorder.hooks
        self.size = len(recorder.arrays)
        self.inputs = inputs
        self.outputs = outputs
        last_use = {}
        for index, (_, specs, _, _) in enumerate(recorder.program):
            for slot in _slots_of(specs):
                last_use[slot] = index
        steps = []
        for index, (call, specs, outs, extra) in enumerate(recorder.program):
            frees = tuple(s for s, last in last_use.items() if last == index and s not in keep)
            steps.append(_compile(call, specs, outs, extra, frees, recorder.scalars))
        self.steps = steps

    def run(self, input_arrays):
        for hook in self.hooks:
            hook()
        regs = [None] * self.size
        for slot, array in zip(self.inputs, input_arrays):
            regs[slot] = array
        for step in self.steps:
            step(regs)
        return regs


def _slots_of(specs):
    for kind, *rest in specs:
        if kind == _VALUE:
            yield rest[0]
        elif kind == _SEQ:
            yield from _slots_of(rest[1])


def _build(spec, regs):
    kind = spec[0]
    if kind == _VALUE:
        return regs[spec[1]]
    if kind == _CONST:
        return spec[1]
    return spec[1](_build(s, regs) for s in spec[2])


def _compile(call, specs, outs, extra, frees, scalars):
    """One instruction as a closure over the register file."""
    template = [s[1] if s[0] == _CONST else None for s in specs]
    values = tuple((i, s[1]) for i, s in enumerate(specs) if s[0] == _VALUE)
    nested = tuple((i, s) for i, s in enumerate(specs) if s[0] == _SEQ)
    replay_ctx, hidden, array_attrs = extra if extra is not None else (None, (), ())
    if isinstance(outs, int) and outs in scalars:
        result_call = call

        def call(*args):  # a NumPy scalar result, as the later instructions saw it: 0-d
            return np.asarray(result_call(*args))

    if not nested and replay_ctx is None and not isinstance(outs, (tuple, list)):
        return _plain_step(call, template, values, outs, frees)

    def step(regs):
        args = template.copy()
        for i, slot in values:
            args[i] = regs[slot]
        for i, spec in nested:
            args[i] = _build(spec, regs)
        result = call(*args)
        if outs is not None:
            if isinstance(outs, int):
                regs[outs] = result
            else:
                _unpack(outs, result, regs)
        if replay_ctx is not None:
            for kind, key, slot in hidden:
                regs[slot] = replay_ctx.saved[key] if kind == "saved" else getattr(replay_ctx, key)
            # what forward kept is a register now (or dead): the ctx must not hold it on
            replay_ctx.saved = ()
            for name in array_attrs:
                setattr(replay_ctx, name, None)
        for slot in frees:
            regs[slot] = None

    return step


def _plain_step(call, template, values, out, frees):
    """The common instruction (arguments registers or constants, one result or none, not a
    Function's forward): the same as _compile's step with its branches decided here."""
    if len(values) == len(template):  # every argument a register
        slots = tuple(slot for _, slot in values)

        def gather(regs):
            return [regs[slot] for slot in slots]
    else:
        def gather(regs):
            args = template.copy()
            for i, slot in values:
                args[i] = regs[slot]
            return args

    def step(regs):
        result = call(*gather(regs))
        if out is not None:
            regs[out] = result
        for slot in frees:
            regs[slot] = None

    return step


def _unpack(outs, result, regs):
    for spec, value in zip(outs, result):
        if isinstance(spec, int):
            regs[spec] = value
        elif spec is not None:
            _unpack(spec, value, regs)


# ---- gg.capture ---------------------------------------------------------------------------------
def _signature(args, kwargs):
    def key(value):
        if isinstance(value, Tensor):
            array = value.array  # (a host array's device is the CPU: no need to name it)
            where = None if isinstance(array, np.ndarray) else str(value.device)
            return ("T", array.shape, array.dtype, where, value.requires_grad)
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(key(v) for v in value))
        try:
            hash(value)
        except TypeError:
            return ("id", id(value))
        return value

    return key(tuple(args)), key(tuple(sorted(kwargs.items())))


def _tensors(obj) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class Captured:
    """The callable gg.capture returns (see the module doc). `.stats`: how many calls ran
    eagerly, were recorded and were replayed."""

    def __init__(self, fn, warmup: int = 1):
        if warmup < 1:
            raise ValueError(f"capture: warmup must be >= 1 (optimizer state and kernel "
                             f"compiles happen in an eager call), got {warmup}")
        self.fn, self.warmup = fn, int(warmup)
        self.records: dict = {}  # signature -> record (after warm-up) or a count of eager calls
        self.stats = {"eager": 0, "recorded": 0, "replayed": 0}
        self._warned = False
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        key = _signature(args, kwargs)
        record = self.records.get(key, 0)
        if isinstance(record, int):
            if record < self.warmup:
                self.records[key] = record + 1
                self.stats["eager"] += 1
                return self.fn(*args, **kwargs)
            if len(self.records) > 1 and not self._warned:
                self._warned = True
                warnings.warn(f"gg.capture({getattr(self.fn, '__name__', 'step')}): a call with a "
                              "new signature (shapes, dtypes, devices or arguments) records the "
                              "step anew", stacklevel=2)
            record, result = self._record(args, kwargs)
            self.records[key] = record
            self.stats["recorded"] += 1
            return result
        self.stats["replayed"] += 1
        return record.replay(args, kwargs)

    def _record(self, args, kwargs):
        inputs = _tensors((args, kwargs))
        devices = {t.device.type for t in inputs}
        if "cuda" in devices:
            from gpugrad import cuda_graph

            record = cuda_graph.GraphRecord(self.fn, args, kwargs, inputs)
            return record, record.outputs
        record = _CpuRecord(self.fn, args, kwargs, inputs)
        return record, record.outputs


class _CpuRecord:
    """One recorded step on the CPU and its replay."""

    def __init__(self, fn, args, kwargs, inputs):
        if state.recorder is not None or state.gpu is not None:
            raise CaptureError("capture: a captured step may not record another one")
        recorder = _Recorder()
        originals = [t.array for t in inputs]
        state.recorder = recorder
        try:
            input_slots = []
            for t in inputs:
                t.array = recorder.define(t.array)
                input_slots.append(len(recorder.arrays) - 1)
            result = fn(*args, **kwargs)
            outputs = _tensors(result)
        except BaseException:
            state.recorder = None
            raise
        finally:
            for t, array in zip(inputs, originals):
                t.array = array
        state.recorder = None
        self.input_count = len(inputs)
        out_slots = []
        for t in outputs:
            slot = recorder.slots.get(id(t.array))
            if slot is None:
                raise CaptureError("capture: the step returned a tensor it did not compute; return "
                                   "only tensors made by the step (detach() them if needed)")
            t.array = np.array(t.array, copy=True).view(np.ndarray)  # the outputs' own buffers
            out_slots.append((t, slot))
        keep = {s for _, s in out_slots}
        self.program = _Program(recorder, input_slots, out_slots, keep)
        self.outputs = result

    def replay(self, args, kwargs):
        inputs = _tensors((args, kwargs))
        regs = self.program.run([t.array for t in inputs])
        for t, slot in self.program.outputs:
            np.copyto(t.array, regs[slot])
        return self.outputs


def capture(fn=None, *, warmup: int = 1):
    """Record `fn` (a training step) once and replay it: see gpugrad.capture. Usable as
    gg.capture(step) or as a decorator @gg.capture(warmup=2)."""
    if fn is None:
        return lambda f: Captured(f, warmup)
    return Captured(fn, warmup)
