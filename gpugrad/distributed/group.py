"""A process group: this process's rank among the others, the transports that carry arrays (MPI
for host arrays, NCCL for GPU arrays) and one communication thread that runs the group's
collectives in the order this rank issued them, so the caller keeps computing (backward) while a
collective is in flight.

Before a collective the ranks compare what each was asked to do (op, dtype, shape, root): a
mismatch is an error naming the ranks on every rank, not a hang or garbage. A rank that stops on
an uncaught exception aborts the job (MPI_Abort: the launcher stops every rank and names it), and
a rank that reaches its end waits at most `timeout` for the others before aborting too."""

from __future__ import annotations

import atexit
import enum
import queue
import sys
import threading
import time

import numpy as np

from gpugrad.distributed import mpi


class ReduceOp(enum.Enum):
    """How all_reduce / reduce_scatter combine the ranks' values (torch.distributed.ReduceOp)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"

    def __str__(self) -> str:
        return f"ReduceOp.{self.name}"


class Work:
    """A collective started with async_op=True (torch.distributed.Work). wait() returns once it
    has finished (for NCCL: once the current CUDA stream waits for it) and raises what it raised.
    started_at / finished_at: time.perf_counter() when the communication thread began and ended
    it (for NCCL: enqueued it), to observe overlap."""

    def __init__(self, name: str, timeout: float):
        self.name, self.timeout = name, timeout
        self.started_at = self.finished_at = None
        self._started, self._done = threading.Event(), threading.Event()
        self._error = None
        self._gpu_done = None  # a CUDA event recorded after an NCCL op on the side stream

    def is_completed(self) -> bool:
        if not self._done.is_set():
            return False
        return self._gpu_done is None or self._gpu_done.done

    def wait(self, timeout=None) -> bool:
        seconds = self.timeout if timeout is None else as_seconds(timeout)
        if not self._done.wait(seconds):
            raise RuntimeError(
                f"{self.name} did not finish within {seconds:g} s: another rank has stopped, "
                "hangs, or called different collectives (every rank must call the same "
                "collectives in the same order)"
            )
        if self._error is not None:
            raise self._error
        if self._gpu_done is not None:
            from gpugrad.backend import cupy_backend

            cupy_backend.module().cuda.get_current_stream().wait_event(self._gpu_done)
        return True


def as_seconds(timeout) -> float:
    """A datetime.timedelta (torch's type) or a number of seconds."""
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return seconds


class _CommThread:
    """One daemon thread running jobs in submission order: the ranks' collectives match because
    each rank issues them in the same order, and this keeps that order."""

    def __init__(self, name: str, setup=None):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._loop, args=(setup,), name=name, daemon=True)
        self._thread.start()

    def submit(self, job, work: Work, in_flight: bool = False) -> None:
        """Queue job(work); with in_flight, return only once an idle thread has started it (not
        whenever this thread next yields the GIL), so the communication overlaps what follows."""
        with self._lock:
            idle = self._pending == 0
            self._pending += 1
        self._jobs.put((job, work))
        if in_flight and idle:
            work._started.wait()

    def _loop(self, setup):
        if setup is not None:
            setup()
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, work = item
            work.started_at = time.perf_counter()
            work._started.set()
            try:
                job(work)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the work
                work._error = exc
            work.finished_at = time.perf_counter()
            with self._lock:
                self._pending -= 1
            work._done.set()

    def stop(self, timeout: float) -> bool:
        """Finish the queued jobs and end the thread; False if that took longer than timeout."""
        self._jobs.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()


# ---- what each rank was asked to do ----------------------------------------------------------
_OP_NAMES = ("barrier", "all_reduce", "broadcast", "all_gather", "reduce_scatter")
_DTYPE_NAMES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
)
_REDUCE_OPS = tuple(ReduceOp)
_MAX_DIMS = 8
# row: op, reduce op, root, list length, dtype, device (0 cpu, 1 cuda), ndim, numel, dims...
_ROW = 8 + _MAX_DIMS


def signature(
    name: str, array=None, op: ReduceOp | None = None, root: int = -1, list_len: int = -1
) -> np.ndarray:
    row = np.full(_ROW, -1, dtype=np.int64)
    row[0] = _OP_NAMES.index(name)
    row[1] = -1 if op is None else _REDUCE_OPS.index(op)
    row[2], row[3] = root, list_len
    if array is not None:
        row[4] = _DTYPE_NAMES.index(array.dtype.name)
        row[5] = 0 if isinstance(array, np.ndarray) else 1
        row[6], row[7] = array.ndim, array.size
        dims = array.shape[:_MAX_DIMS]
        row[8 : 8 + len(dims)] = dims
    return row


def _describe(row: np.ndarray) -> str:
    text = _OP_NAMES[row[0]]
    if row[1] >= 0:
        text += f"({_REDUCE_OPS[row[1]].name})"
    if row[2] >= 0:
        text += f" from rank {row[2]}"
    if row[4] >= 0:
        ndim = int(row[6])
        shape = tuple(int(d) for d in row[8 : 8 + min(ndim, _MAX_DIMS)])
        shape_text = str(shape) if ndim <= _MAX_DIMS else str(shape)[:-1] + ", ...)"
        text += f" of {_DTYPE_NAMES[row[4]]} {shape_text} on {('cpu', 'cuda')[row[5]]}"
    if row[3] >= 0:
        text += f" into a list of {row[3]}"
    return text


def mismatch_message(name: str, rows: np.ndarray) -> str:
    groups: dict = {}
    for rank, row in enumerate(rows):
        groups.setdefault(_describe(row), []).append(rank)
    parts = [
        f"{'rank' if len(ranks) == 1 else 'ranks'} {', '.join(map(str, ranks))}: {text}"
        for text, ranks in groups.items()
    ]
    return (
        f"{name}: the ranks' calls do not match (every rank must call the same collective on "
        "tensors of the same shape and dtype): " + "; ".join(parts)
    )


# ---- the group -------------------------------------------------------------------------------
class ProcessGroup:
    def __init__(self, backend: str, timeout: float, device_index: int | None = None):
        self.backend, self.timeout = backend, timeout
        self.host = mpi.open_transport()
        self.rank, self.size = self.host.rank, self.host.size
        self.local_rank = self.host.local_rank
        self.nccl = None
        if backend == "nccl":
            from gpugrad.backend import cupy_backend
            from gpugrad.distributed import nccl

            if device_index is None:
                device_index = self.local_rank % cupy_backend.module().cuda.runtime.getDeviceCount()
            self.nccl = nccl.NcclTransport(self.host, device_index)
            self.nccl.use_device()
        self._thread = _CommThread(
            f"gpugrad-comm-rank{self.rank}", None if self.nccl is None else self.nccl.use_device
        )
        self._closed = False
        self._previous_excepthook = None
        if self.size > 1:
            self._previous_excepthook = sys.excepthook
            sys.excepthook = self._abort_on_uncaught
        atexit.register(self._at_exit)

    @property
    def device_index(self) -> int | None:
        return None if self.nccl is None else self.nccl.device_index

    # ---- collectives on arrays (gg.distributed wraps them for Tensors) -----------------------
    def run(self, name: str, row, body, on_gpu: bool, async_op: bool, check: bool = True):
        """Run body(stream) on the communication thread after the ranks agree on `row`;
        body gets the CUDA stream to enqueue on (None for host arrays)."""
        if self._closed:
            raise RuntimeError(f"{name}: the process group has been destroyed")
        work = Work(f"{name} on rank {self.rank}", self.timeout)
        caller = ready = None
        if on_gpu:
            cp = self.nccl.cupy
            caller = cp.cuda.get_current_stream()
            if async_op:  # the side stream starts once what the caller queued so far is done
                ready = cp.cuda.Event(disable_timing=True)
                ready.record(caller)

        def job(work):
            if check:
                rows = self.host.gather_rows(row)
                if not (rows == rows[0]).all():
                    raise ValueError(mismatch_message(name, rows))
            if not on_gpu:
                body(None)
                return
            stream = caller
            if async_op:
                stream = self.nccl.side_stream
                stream.wait_event(ready)
            with stream:
                body(stream.ptr)
            if async_op:
                work._gpu_done = self.nccl.cupy.cuda.Event(disable_timing=True)
                work._gpu_done.record(stream)

        self._thread.submit(job, work, in_flight=async_op)
        if async_op:
            return work
        work.wait()
        return None

    def all_reduce(self, array, op: ReduceOp, async_op=False, check=True):
        on_gpu = not isinstance(array, np.ndarray)

        def body(stream):
            with _contiguous(array) as buf:
                if on_gpu:
                    self.nccl.all_reduce(buf, op.value, stream)
                else:
                    self.host.all_reduce(buf, op.value)
                    if op is ReduceOp.AVG and self.size > 1:
                        np.divide(buf, self.size, out=buf)

        row = signature("all_reduce", array, op=op)
        return self.run("all_reduce", row, body, on_gpu, async_op, check)

    def broadcast(self, array, src: int, async_op=False, check=True):
        on_gpu = not isinstance(array, np.ndarray)

        def body(stream):
            with _contiguous(array) as buf:
                if on_gpu:
                    self.nccl.broadcast(buf, src, stream)
                else:
                    self.host.broadcast(buf, src)

        row = signature("broadcast", array, root=src)
        return self.run("broadcast", row, body, on_gpu, async_op, check)

    def all_gather(self, out, inp, async_op=False, list_len=-1):
        """out: size * inp.size elements, rank r's inp at [r * inp.size, (r + 1) * inp.size)."""
        on_gpu = not isinstance(inp, np.ndarray)

        def body(stream):
            with _contiguous(inp) as src, _contiguous(out) as dst:
                if on_gpu:
                    self.nccl.all_gather(dst, src, stream)
                else:
                    self.host.all_gather(dst, src)

        row = signature("all_gather", inp, list_len=list_len)
        return self.run("all_gather", row, body, on_gpu, async_op)

    def reduce_scatter(self, out, inp, op: ReduceOp, async_op=False, list_len=-1):
        """out = op over ranks of inp[rank * out.size : (rank + 1) * out.size]."""
        on_gpu = not isinstance(inp, np.ndarray)

        def body(stream):
            with _contiguous(inp) as src, _contiguous(out) as dst:
                if on_gpu:
                    self.nccl.reduce_scatter(dst, src, op.value, stream)
                else:
                    self.host.reduce_scatter(dst, src, op.value)
                    if op is ReduceOp.AVG and self.size > 1:
                        np.divide(dst, self.size, out=dst)

        row = signature("reduce_scatter", inp, op=op, list_len=list_len)
        return self.run("reduce_scatter", row, body, on_gpu, async_op)

    def barrier(self, async_op=False):
        return self.run(
            "barrier", signature("barrier"), lambda _: self.host.barrier(), False, async_op
        )

    def all_gather_object(self, obj) -> list:
        work = Work(f"all_gather_object on rank {self.rank}", self.timeout)
        result = []
        self._thread.submit(lambda _: result.extend(self.host.all_gather_object(obj)), work)
        work.wait()
        return result

    # ---- the end, orderly or not ---------------------------------------------------------
    def close(self) -> None:
        """Wait (at most timeout) until every rank has reached its end, then free the
        communicators; abort the job if they do not all arrive."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        finished = self._thread.stop(self.timeout) and self.host.exit_handshake(self.timeout)
        if not finished:
            _say(
                f"gpugrad.distributed: rank {self.rank} of {self.size} reached its end, but the "
                f"other ranks did not all get there within {self.timeout:g} s (one is stuck in a "
                "collective, has died, or is still running); aborting all ranks"
            )
            self.host.abort(1)
        if self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook
        if self.nccl is not None:
            self.nccl.free()
        self.host.free()

    def _at_exit(self):
        self.close()

    def _abort_on_uncaught(self, exc_type, exc, tb):
        self._previous_excepthook(exc_type, exc, tb)
        _say(
            f"gpugrad.distributed: rank {self.rank} of {self.size} stopped on the uncaught "
            f"{exc_type.__name__} above; aborting all ranks"
        )
        self.host.abort(1)


def _say(message: str) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


class _contiguous:
    """The array itself when C-contiguous, else a contiguous copy written back on exit."""

    def __init__(self, array):
        self.array = array
        self.buffer = array if array.flags.c_contiguous else array.copy(order="C")

    def __enter__(self):
        return self.buffer

    def __exit__(self, exc_type, *exc):
        if exc_type is None and self.buffer is not self.array:
            self.array[...] = self.buffer
