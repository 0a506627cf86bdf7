"""Function (an op with forward / backward / jvp rules) and Node, the recorded graph vertex.

`Function.apply` runs forward without recording, then links the outputs to a Node that
holds the saved tensors and one edge per input: (next node, which of its outputs).
Leaves that require grad end in an AccumulateGrad node, cached weakly on the tensor.
"""
from __future__ import annotations

import traceback
import weakref

import numpy as np

from gpugrad import replay
from gpugrad.autograd import mode
from gpugrad.backend import cupy_backend as _gpus
from gpugrad.backend import device_of, same_device, xp_of
from gpugrad.tensor import Tensor, init_fields

# Called as observer(node, outputs) after each recorded Function call; empty on the normal
# path (gpugrad.autograd.record fills it while recording values for pictures).
forward_observers: list = []

_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class SavedTensor:
    """What a node keeps of a saved tensor, with the version it had then (a value changed in
    place since is refused). An input is kept as itself and unpacks to itself, as torch's
    SavedVariable does; an output only as its array and graph position (the output holds this
    node: keeping the Tensor would make a cycle); an array made in forward as a constant."""

    __slots__ = ("array", "vbox", "version", "tensor", "grad_fn", "output_nr", "requires_grad", "tangent")

    def __init__(self, array, vbox=None, tensor=None, output_nr=0, requires_grad=False, tangent=None):
        self.array, self.vbox, self.tensor = array, vbox, tensor
        self.version = 0 if vbox is None else vbox[0]
        self.grad_fn = None if tensor is None else tensor.grad_fn
        self.output_nr, self.requires_grad, self.tangent = output_nr, requires_grad, tangent

    def unpack(self, node: "Node", is_output: bool) -> Tensor:
        if self.vbox is not None and self.vbox[0] != self.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{self.array.dtype} {list(self.array.shape)}], which is "
                f"output 0 of {node.name()}, is at version {self.vbox[0]}; expected version "
                f"{self.version} instead. Hint: the op whose backward needs it is {node.name()}."
            )
        if self.tensor is not None:
            return self.tensor
        if is_output:
            grad_fn = node if self.requires_grad else None
            t = Tensor._make(self.array, self.requires_grad, grad_fn, self.output_nr, self.vbox)
            if self.tangent is not None and mode.state.fw_level > 0:
                t._tangent = self.tangent  # forward-over-reverse reads it
            return t
        return Tensor._make(self.array)


class Node:
    """The backward vertex of one Function call; it is also the `ctx` its rules receive."""

    # Defaults live on the class, so making a node per op call sets only what differs.
    next_edges = ()
    input_meta = ()  # (shape, np dtype) per forward argument, None for non-tensors
    needs_input_grad = ()
    num_outputs = 1
    output_meta = ()  # multi-output nodes: what a missing output gradient looks like
    materialize_grads = True
    non_differentiable = ()
    _pre_hooks = None  # {output_nr: [hook, ...]} once a tensor hook is registered
    _to_save = ()
    _saved = None
    _saved_is_output = ()
    _released = False
    creation_trace = None  # set in anomaly mode: where forward created this node
    forward_ad = False  # True when forward-mode tangents flow through this call

    def __init__(self, fn):
        self.fn = fn

    def hooks_for(self, output_nr: int) -> list:
        """The (mutable) list of gradient hooks of one output."""
        if self._pre_hooks is None:
            self._pre_hooks = {}
        return self._pre_hooks.setdefault(output_nr, [])

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    # ---- the ctx API ---------------------------------------------------------------
    def save_for_backward(self, *items):
        """Save input/output tensors (or arrays) for backward and jvp."""
        self._to_save = items

    save_for_forward = save_for_backward

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(_FREED)
        if self._saved is None:
            return ()
        unpacked = []
        for entry, is_output in zip(self._saved, self._saved_is_output):
            unpacked.append(None if entry is None else entry.unpack(self, is_output))
        return tuple(unpacked)

    def mark_non_differentiable(self, *outputs):
        self.non_differentiable = tuple(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("gpugrad Functions may not modify their inputs in place")

    def release(self):
        if self._saved is not None:
            self._saved, self._released = None, True

    @property
    def next_functions(self) -> tuple:
        return tuple((None, 0) if e is None else e for e in self.next_edges)


class AccumulateGrad:
    """Sink node of a leaf that requires grad: adds the incoming gradient to leaf.grad."""

    num_outputs = 1
    next_edges = ()
    fn = None

    def __init__(self, leaf: Tensor):
        self.variable = leaf
        self._pre_hooks = {}

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"

    next_functions = ()


def gradient_edge(t: Tensor):
    """(node, output_nr) that receives the gradient w.r.t. t."""
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    acc = t._accumulator() if t._accumulator is not None else None
    if acc is None:
        acc = AccumulateGrad(t)
        t._accumulator = weakref.ref(acc)
    return (acc, 0)


class Function:
    """Subclass with static forward(ctx, *args), backward(ctx, *grads), jvp(ctx, *tangents);
    call as MyFunction.apply(*args). Forward takes and returns Tensors, as in PyTorch; gpugrad's
    own ops derive from ArrayFunction, whose forward works on the raw arrays."""

    arrays = False
    is_view = False  # output shares the first input's memory and version counter
    # jvp takes None for a float input that has no tangent (a constant), as torch's formulas
    # do; otherwise it gets zeros, and J * 0 is NaN where J is inf or NaN
    jvp_none_ok = False

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        # The hot path of every op: kept flat (no helper calls in the common cases) because
        # Python call overhead is most of a small op's cost; each thread-local mode switch is
        # read once. Two paths: recording (grad mode or forward AD on) and plain (no_grad, and
        # the ops a backward rule runs).
        if _gpus.multi_gpu and (switch := _gpu_switch(cls, args)) is not None:
            with switch:  # CuPy works on its current GPU: make it the inputs' GPU, then run
                return cls.apply(*args)
        state = _mode_state
        grad_on = state.grad_enabled
        track_tangents = state.fw_level > 0 and state.fw_suspended == 0
        requires_grad = forward_ad = False
        ctx = _new_node(Node)
        ctx.fn = cls
        if grad_on or track_tangents:
            # one pass over the arguments: what forward gets, which need a gradient, and the
            # edges and input shapes the node keeps if any does
            needs, raw_args, edges, meta = [], [], [], []
            for a in args:
                if isinstance(a, Tensor):
                    raw_args.append(a.array)
                    meta.append((a.array.shape, a.array.dtype))
                    if grad_on and a.requires_grad:
                        needs.append(True)
                        edges.append(
                            (a.grad_fn, a._output_nr) if a.grad_fn is not None else gradient_edge(a)
                        )
                        requires_grad = True
                    else:
                        needs.append(False)
                        edges.append(None)
                    if track_tangents and a._tangent is not None:
                        forward_ad = True
                else:
                    raw_args.append(a)
                    needs.append(False)
                    edges.append(None)
                    meta.append(None)
            ctx.needs_input_grad = tuple(needs)
            if forward_ad:
                ctx.forward_ad = True  # jvp rules will read what forward saves
        else:  # no_grad, and every op a backward rule runs: nothing to record
            raw_args = []
            for a in args:
                raw_args.append(a.array if isinstance(a, Tensor) else a)
            ctx.needs_input_grad = (False,) * len(args)

        try:
            if not cls.arrays:  # forward written in Tensor ops: they must not record themselves
                raw = _forward_untracked(cls, ctx, args, state)
            elif _replaying.recorder is None or _replaying.depth:
                # an array forward cannot record anything (its arguments are arrays), so the
                # grad mode is left as it is
                raw = cls.forward(ctx, *raw_args)
            else:  # a step is being recorded (gg.capture): this forward is an instruction
                raw = _replaying.recorder.forward(cls, ctx, raw_args)
        except Exception as exc:
            if cls.arrays:  # gpugrad's own op failed: inputs on two devices are the likely cause
                _check_one_device(cls, args, exc)
            raise

        single = not isinstance(raw, tuple)
        if single and type(raw) is np.ndarray:  # the common case: Tensor._make, inline
            out = _new_tensor(Tensor)
            init_fields(out, raw)
            outputs = [out]
        elif single:  # a NumPy scalar (a full reduction), a Tensor, a CuPy array
            outputs = [_wrap_output(ctx, raw, args)]
        else:
            outputs = [_wrap_output(ctx, out, args) for out in raw]
            ctx.num_outputs = len(outputs)
        if cls.is_view:
            outputs[0]._vbox, outputs[0]._base = args[0]._vbox, args[0]
        if not (requires_grad or forward_ad):  # nothing to record: plain tensors
            return outputs[0] if single else tuple(outputs)

        if requires_grad:
            if state.anomaly:  # where forward created this node, for anomaly mode's report
                ctx.creation_trace = traceback.format_stack()[:-1]
            ctx.next_edges, ctx.input_meta = tuple(edges), tuple(meta)
            if len(outputs) > 1:
                ctx.output_meta = tuple(
                    None if out is None else (out.array.shape, out.array.dtype, xp_of(out.array))
                    for out in outputs
                )
            nondiff = ctx.non_differentiable
            for nr, out in enumerate(outputs):
                if out is None or out.array.dtype.kind != "f" or (nondiff and id(out) in nondiff):
                    continue
                out.requires_grad, out.grad_fn, out._output_nr = True, ctx, nr
        if ctx._to_save:
            _resolve_saved(ctx, args, outputs)
        if forward_ad:
            _forward_tangents(cls, ctx, args, outputs)
        if not requires_grad:
            ctx._saved = None  # nothing will backprop through it: drop saved arrays now
        elif forward_observers:
            for observer in forward_observers:
                observer(ctx, outputs)
        return outputs[0] if single else tuple(outputs)


class ArrayFunction(Function):
    """A Function whose forward takes and returns raw arrays (NumPy or CuPy): gpugrad's own ops.
    Its backward and jvp still take and return Tensors, so they stay differentiable."""

    arrays = True


_mode_state = mode.state
_new_node = _new_tensor = object.__new__
_replaying = replay.state


def _forward_untracked(cls, ctx, args, state):
    """A Tensor-level forward (a user's Function): its ops run with grad and tangents off."""
    grad_on = state.grad_enabled
    state.grad_enabled = False
    state.fw_suspended += 1
    try:
        return cls.forward(ctx, *args)
    finally:
        state.grad_enabled = grad_on
        state.fw_suspended -= 1


def _devices(args) -> list:
    """The distinct devices of the Tensor arguments, in order of appearance."""
    devices = []
    for a in args:
        if isinstance(a, Tensor):
            device = device_of(a.array)
            if device not in devices:
                devices.append(device)
    return devices


def _check_one_device(cls, args, exc=None):
    arrays = [a.array for a in args if isinstance(a, Tensor)]
    if arrays:
        try:
            same_device(cls.__name__, *arrays)
        except RuntimeError as mixed:
            raise mixed from exc


def _gpu_switch(cls, args):
    """With several GPUs: the cupy.cuda.Device context to run this call in, or None when its
    GPU is already current (or it has no GPU input). gpugrad's own ops refuse mixed devices."""
    if cls.arrays:
        _check_one_device(cls, args)
    gpu = next((d for d in _devices(args) if d.type == "cuda"), None)
    if gpu is None:
        return None
    cp = _gpus.module()
    return None if cp.cuda.runtime.getDevice() == gpu.index else cp.cuda.Device(gpu.index)


def _wrap_output(ctx, out, args):
    if isinstance(out, Tensor):
        # a forward that returns one of its inputs unchanged returns an alias
        return Tensor._make(out.array, vbox=out._vbox) if any(out is a for a in args) else out
    if out is None:
        return None
    if not hasattr(out, "dtype"):  # torch passes such outputs through untracked; we refuse them
        raise TypeError(
            f"{ctx.fn.__name__}.forward returned {type(out).__name__}; it must return Tensors "
            "(or None), one or a tuple"
        )
    if isinstance(out, np.generic):
        # NumPy turns 0-d results into scalars; a tensor always holds an array, and what
        # forward saved must still be recognised as this output
        array = np.asarray(out)
        if ctx._to_save:
            ctx._to_save = tuple(array if item is out else item for item in ctx._to_save)
        out = array
    return Tensor._make(out)


def _resolve_saved(ctx: Node, args, outputs):
    """Turn what forward saved (arrays or tensors) into SavedTensors: an output is recognised
    by identity, an input's array by identity with that input, anything else is a constant."""
    saved, is_output = [], []
    for item in ctx._to_save:
        entry, output = None, False
        if item is not None:
            for nr, out in enumerate(outputs):
                if out is not None and (item is out or item is out.array):
                    entry = SavedTensor(
                        out.array, out._vbox, None, nr, out.requires_grad, out._tangent
                    )
                    output = True
                    break
            else:
                if isinstance(item, Tensor):
                    entry = SavedTensor(item.array, item._vbox, item, item._output_nr)
                else:
                    for a in args:
                        if isinstance(a, Tensor) and item is a.array:
                            entry = SavedTensor(a.array, a._vbox, a, a._output_nr)
                            break
                    else:
                        entry = SavedTensor(item)
        saved.append(entry)
        is_output.append(output)
    ctx._saved = saved
    ctx._saved_is_output = tuple(is_output)
    ctx._to_save = ()


def _forward_tangents(cls, ctx: Node, args, outputs):
    from gpugrad.autograd import forward_ad

    tangents = []
    for a in args:
        if not isinstance(a, Tensor):
            tangents.append(None)
        elif a._tangent is not None:
            tangents.append(a._tangent)
        elif a.array.dtype.kind == "f" and not cls.jvp_none_ok:
            tangents.append(Tensor._make(forward_ad.zeros_array_like(a.array)))
        else:
            tangents.append(None)
    if cls.jvp is Function.jvp:
        raise NotImplementedError(
            f"forward-mode AD: {cls.__name__} defines no jvp rule "
            "(add a static jvp(ctx, *tangents) to use it inside forward_ad.dual_level())"
        )
    state = mode.state
    state.fw_suspended += 1
    try:
        out_tangents = cls.jvp(ctx, *tangents)
    finally:
        state.fw_suspended -= 1
    if not isinstance(out_tangents, tuple):
        out_tangents = (out_tangents,)
    for out, tangent in zip(outputs, out_tangents):
        if out is not None and tangent is not None and out.array.dtype.kind == "f":
            if tangent.shape != out.shape:  # a rule that skipped a broadcasting input's term
                from gpugrad.ops.shape import expand

                tangent = expand(tangent, *out.shape)
            forward_ad.attach_tangent(out, tangent)
    if ctx._saved:
        for entry, is_out in zip(ctx._saved, ctx._saved_is_output):
            if is_out and entry is not None:
                entry.tangent = outputs[entry.output_nr]._tangent
