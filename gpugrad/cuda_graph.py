"""gg.capture on a GPU: the step captured into one CUDA graph, and torch's names for it
(gg.cuda.CUDAGraph, gg.cuda.graph).

The step runs once with a non-default stream capturing (CuPy's stream capture): every kernel it
launches goes into the graph instead of running, and what it allocates comes from a memory pool
private to the graph, kept alive with it, so the addresses the graph uses stay its own. A
replay copies the new inputs into the captured input buffers, lets the refreshers write what
changes between replays (replay.host_values: optimizer hyperparameters, dropout's stream
position) and launches the graph once, on the current stream.

What the step must not do on a GPU, CUDA refuses while capturing: reading a value to the host,
a synchronize, a copy from host memory (a tensor made from Python data, host random numbers).
gpugrad's own ops do none of these mid-step; its errors name the call.
"""
from __future__ import annotations

import numpy as np

from gpugrad import backend, replay
from gpugrad.backend import cupy_backend
from gpugrad.tensor import Tensor

_CHUNK = 512  # doubles per device buffer of host values (refilled by one copy per replay)


class _Capture:
    """replay.state.gpu while a step is captured: what must run on the host before every
    launch, in the order the step did it (a scheduler's step after the optimizer read the
    learning rate), and the device buffers that refill."""

    def __init__(self, cp):
        self.cp = cp
        self.hooks: list = []  # host work, in order: hooks (replay.every_replay) and refills
        self.chunks: list = []  # (host array, device array) of host values
        self.used = _CHUNK

    def host_values(self, fn, size: int):
        if size > _CHUNK:
            raise replay.CaptureError(f"capture: {size} host values for one kernel (at most "
                                      f"{_CHUNK})")
        if self.used + size > _CHUNK:
            # cupy.empty: memory only; a fill kernel would be captured and redone at each launch
            self.chunks.append((np.zeros(_CHUNK), self.cp.empty(_CHUNK, dtype=np.float64)))
            self.used = 0
        host, device = self.chunks[-1]
        offset = self.used
        self.used += size

        def refill():
            host[offset:offset + size] = fn()

        self.hooks.append(refill)
        return device[offset:offset + size]

    def refresh(self):
        """Before a launch: the host work, then one copy per chunk of host values."""
        for hook in self.hooks:
            hook()
        for host, device in self.chunks:
            device.set(host)


class GraphRecord:
    """One step captured into a CUDA graph, and its replay (gpugrad.replay.Captured uses it)."""

    def __init__(self, fn, args, kwargs, inputs):
        if replay.state.gpu is not None or replay.state.recorder is not None:
            raise replay.CaptureError("capture: a captured step may not record another one")
        cp = cupy_backend.module()
        devices = {t.device for t in inputs}
        if len(devices) != 1:
            raise replay.CaptureError(f"capture: the inputs of a step captured on a GPU must "
                                      f"share one device, got {sorted(map(str, devices))}")
        (device,) = devices
        self.cp, self.device = cp, device
        self.pool = cp.cuda.MemoryPool()  # the graph's own: nothing else allocates from it
        capture = _Capture(cp)
        stream = cp.cuda.Stream(non_blocking=True)
        originals = [t.array for t in inputs]
        deferred_before = set(backend._deferred)
        with cp.cuda.Device(device.index), cp.cuda.using_allocator(self.pool.malloc):
            stream.wait_event(cp.cuda.get_current_stream().record())  # the inputs are made
            with stream:
                self.static = [cp.array(a, copy=True) for a in originals]
            for t, buffer in zip(inputs, self.static):
                t.array = buffer
            replay.state.gpu = capture
            try:
                with stream:
                    stream.begin_capture()
                    try:
                        result = fn(*args, **kwargs)
                    finally:
                        graph = stream.end_capture()
            except cp.cuda.runtime.CUDARuntimeError as exc:
                raise replay.CaptureError(
                    f"capture: CUDA refused an operation of the step while capturing it into a "
                    f"CUDA graph ({exc}); a captured step may not read values to the host, "
                    "synchronize, or copy from host memory") from exc
            finally:
                replay.state.gpu = None
                for t, array in zip(inputs, originals):
                    t.array = array
        self.graph, self.capture = graph, capture
        self.deferred = {k: v for k, v in backend._deferred.items() if k not in deferred_before}
        for key in self.deferred:  # they belong to the launches, not to the capture
            backend._deferred.pop(key)
        self.outputs = result
        for t in replay._tensors(result):
            if isinstance(t, Tensor) and not t.is_cuda:
                raise replay.CaptureError("capture: a step captured on a GPU returned a CPU "
                                          "tensor (a host read mid-step)")
        self._launch(originals)

    def _launch(self, input_arrays):
        cp = self.cp
        with cp.cuda.Device(self.device.index):
            for buffer, array in zip(self.static, input_arrays):
                if buffer is not array:
                    buffer[...] = array
            self.capture.refresh()
            self.graph.launch()
        backend._deferred.update(self.deferred)  # a bad target found by this launch

    def replay(self, args, kwargs):
        self._launch([t.array for t in replay._tensors((args, kwargs))])
        return self.outputs


# ---- torch's names: gg.cuda.CUDAGraph and gg.cuda.graph -----------------------------------------
class CUDAGraph:
    """torch.cuda.CUDAGraph: capture work with `with gg.cuda.graph(g):`, then g.replay(). The
    tensors the captured work reads and writes are its static buffers: write new inputs into
    them (x.copy_(new)) before replay(); outputs are overwritten by each replay."""

    def __init__(self):
        self._graph = self._capture = self._pool = self._device = None

    def replay(self):
        if self._graph is None:
            raise RuntimeError("CUDAGraph.replay: nothing was captured (use gg.cuda.graph(g))")
        cp = cupy_backend.module()
        with cp.cuda.Device(self._device):
            self._capture.refresh()
            self._graph.launch()

    def reset(self):
        self.__init__()


class graph:  # noqa: N801 - torch's name
    """torch.cuda.graph(g): capture the block's GPU work into CUDAGraph g (run it once, eagerly,
    before: optimizer state and kernel compiles must exist)."""

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream=None):
        self.target = cuda_graph
        self.cp = cupy_backend.module()
        self.stream = stream if stream is not None else self.cp.cuda.Stream(non_blocking=True)
        self.pool = pool if pool is not None else self.cp.cuda.MemoryPool()

    def __enter__(self):
        if replay.state.gpu is not None or replay.state.recorder is not None:
            raise replay.CaptureError("gg.cuda.graph: a capture is in progress already")
        cp = self.cp
        self.target._device = cp.cuda.Device().id
        self.allocator = cp.cuda.using_allocator(self.pool.malloc)
        self.allocator.__enter__()
        self.stream.wait_event(cp.cuda.get_current_stream().record())
        self.stream.__enter__()
        self.capture = _Capture(cp)
        replay.state.gpu = self.capture
        self.stream.begin_capture()
        return self.target

    def __exit__(self, exc_type, exc, tb):
        try:
            graph_ = self.stream.end_capture()
        finally:
            replay.state.gpu = None
            self.stream.__exit__(exc_type, exc, tb)
            self.allocator.__exit__(exc_type, exc, tb)
        if exc_type is None:
            self.target._graph, self.target._capture = graph_, self.capture
            self.target._pool = self.pool
        return False
