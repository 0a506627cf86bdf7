"""DistributedDataParallel: every rank holds a replica of the module (rank 0's values at
construction) and trains on its own shard of each batch; backward averages the gradients across
ranks while it still runs, so when loss.backward() returns every .grad holds the mean over ranks.

How the overlap works. Each parameter carries a post-accumulate-grad hook. Gradients are grouped
in buckets (about 25 MB, filled in reverse parameter order: the order backward produces them).
When a bucket's last gradient has been accumulated, its gradients are copied into one flat buffer
and its all-reduce (AVG) starts on the process group's communication thread (MPI) or NCCL side
stream, and backward goes on computing the earlier layers meanwhile. Buckets start strictly in
bucket order, so every rank issues the same collectives in the same order even when its
gradients become ready in another. When the backward pass ends (an engine callback, queued by
the first hook), DDP waits for the buckets and copies the averages back into .grad — before
backward() returns."""

from __future__ import annotations

import contextlib
import functools
import time

import numpy as np

from gpugrad import backend
from gpugrad import distributed as dist
from gpugrad.autograd import engine
from gpugrad.autograd.function import AccumulateGrad
from gpugrad.autograd.mode import is_grad_enabled, no_grad
from gpugrad.nn.modules import Module
from gpugrad.tensor import Tensor

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024
_FIRST_BUCKET_BYTES = 1 * _MB  # as torch: a small first bucket, so communication starts early


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer."""

    def __init__(self, index: int, params: list, names: list, device):
        self.index, self.params, self.names = index, params, names
        self.slices, offset = [], 0
        for p in params:
            self.slices.append(slice(offset, offset + p.array.size))
            offset += p.array.size
        with backend.on_device(device):
            self.buffer = backend.xp_for(device).empty(offset, dtype=params[0].array.dtype)
        self.ready: set = set()  # slots whose gradient is in (or, unused, counted in)
        self.unused: set = set()
        self.work = None

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes


class DistributedDataParallel(Module):
    """DistributedDataParallel(module): data-parallel training over the default process group
    (torch.nn.parallel.DistributedDataParallel). Parameters and buffers are broadcast from rank 0
    at construction; gradients are averaged across ranks during backward in buckets of
    bucket_cap_mb (default 25; the first 1 MB). no_sync() skips the averaging (gradient
    accumulation). Parameters that take no part in the loss need find_unused_parameters=True;
    without it such a backward is refused with an error that names them."""

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        broadcast_buffers: bool = True,
        process_group=None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        gradient_as_bucket_view: bool = False,
    ):
        super().__init__()
        group = dist._group(process_group, "DistributedDataParallel")
        if gradient_as_bucket_view:
            raise ValueError(
                "DistributedDataParallel: gradient_as_bucket_view=True is not supported; "
                "gradients are copied into the buckets and back"
            )
        if bucket_cap_mb is not None and not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}"
            )
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any parameter "
                "that requires a gradient."
            )
        device = _one_device(group, named, device_ids)
        self.module = module
        self.process_group, self.device = group, device
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        _verify_same_model(group, module)
        _broadcast_state(group, [p for _, p in module.named_parameters()] + list(module.buffers()))
        cap = 25 * _MB if bucket_cap_mb is None else int(bucket_cap_mb * _MB)
        first = _FIRST_BUCKET_BYTES if bucket_cap_mb is None else cap
        self._buckets = _make_buckets(named, first, cap, device)
        self._hooks = [
            p.register_post_accumulate_grad_hook(functools.partial(self._grad_ready, bucket, slot))
            for bucket in self._buckets
            for slot, p in enumerate(bucket.params)
        ]
        self._expect_hooks = False  # True from a forward that needs reducing to its backward's end
        self._finish_queued = False
        self._next_bucket = 0
        self._last_backward: dict | None = None

    # ---- forward -------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers:
            buffers = list(self.module.buffers())
            if buffers:
                _broadcast_state(self.process_group, buffers)
        output = self.module(*inputs, **kwargs)
        self._expect_hooks = is_grad_enabled() and self.require_backward_grad_sync
        if self._expect_hooks:
            self._prepare_for_backward(output)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, forward/backward accumulate local gradients without averaging; the first
        backward after the block averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _prepare_for_backward(self, output) -> None:
        self._next_bucket, self._finish_queued = 0, False
        for bucket in self._buckets:
            bucket.ready.clear()
            bucket.unused.clear()
            bucket.work = None
        if self.find_unused_parameters:  # what the graph cannot reach gets no gradient: ready now
            reached = _leaves_reached(output)
            for bucket in self._buckets:
                for slot, p in enumerate(bucket.params):
                    if id(p) not in reached:
                        bucket.ready.add(slot)
                        bucket.unused.add(slot)

    # ---- backward: hooks, buckets, the end -----------------------------------------------
    def _grad_ready(self, bucket: _Bucket, slot: int, param: Tensor) -> None:
        if not self._expect_hooks:
            return  # no_sync, eval, or the module called directly: gradients stay local
        if not self._finish_queued:
            self._finish_queued = True
            engine.queue_callback(self._finish_backward)
        if slot in bucket.ready:
            raise RuntimeError(
                f"DistributedDataParallel: parameter '{bucket.names[slot]}' received a gradient "
                "twice in one backward pass through one forward; DDP averages each parameter "
                "once per forward (run forward again for another backward)"
            )
        bucket.ready.add(slot)
        self._launch_ready_buckets()

    def _launch_ready_buckets(self) -> None:
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if len(bucket.ready) < len(bucket.params):
                return
            for slot, (p, where) in enumerate(zip(bucket.params, bucket.slices)):
                if slot in bucket.unused or p.grad is None:
                    bucket.buffer[where] = 0
                else:
                    bucket.buffer[where] = p.grad.array.reshape(-1)
            bucket.work = self.process_group.all_reduce(
                bucket.buffer, dist.ReduceOp.AVG, async_op=True, check=False
            )
            self._next_bucket += 1

    def _finish_backward(self) -> None:
        computed = time.perf_counter()
        self._expect_hooks = False
        missing = [  # buckets hold the parameters in reverse order: walk them backwards
            bucket.names[slot]
            for bucket in reversed(self._buckets)
            for slot in reversed(range(len(bucket.params)))
            if slot not in bucket.ready
        ]
        if missing:
            raise RuntimeError(
                f"DistributedDataParallel: on rank {self.process_group.rank}, parameters "
                f"{', '.join(missing)} received no gradient in this backward pass, so their "
                "buckets cannot be averaged (the other ranks would wait for them forever). If "
                "some parameters take no part in the loss, pass find_unused_parameters=True; "
                "otherwise make every output of forward take part in the loss."
            )
        used = self._globally_used() if self.find_unused_parameters else None
        for bucket in self._buckets:
            bucket.work.wait()
            for slot, (p, where) in enumerate(zip(bucket.params, bucket.slices)):
                if used is not None and not used[bucket.index][slot]:
                    continue  # no rank used it: .grad stays as it was, as torch leaves it
                average = bucket.buffer[where].reshape(p.array.shape)
                if p.grad is None:
                    p.grad = Tensor._make(average.copy())
                else:
                    p.grad.array[...] = average
                    p.grad._bump_version()
        self._last_backward = {
            "computed": computed,
            "finished": time.perf_counter(),
            "buckets": [
                (b.index, b.nbytes, b.work.started_at, b.work.finished_at) for b in self._buckets
            ],
        }

    def _globally_used(self) -> list:
        """Per bucket and slot: did any rank use the parameter (one MAX all-reduce)."""
        flags = np.array(
            [slot not in b.unused for b in self._buckets for slot in range(len(b.params))],
            dtype=np.int32,
        )
        self.process_group.all_reduce(flags, dist.ReduceOp.MAX, check=False)
        used, start = [], 0
        for bucket in self._buckets:
            used.append(flags[start : start + len(bucket.params)].astype(bool))
            start += len(bucket.params)
        return used

    def _get_ddp_logging_data(self) -> dict:
        """Timings of the last averaged backward (time.perf_counter()): 'computed' when backward's
        own work ended, 'finished' when every .grad held its average, and per bucket (index,
        bytes, start, end) of its all-reduce (for NCCL: when it was enqueued)."""
        return dict(self._last_backward or {})

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{b.nbytes / _MB:.2f}" for b in self._buckets)
        return f"buckets (MB, in reduction order): [{sizes}]"


# ---- construction helpers --------------------------------------------------------------------
def _one_device(group, named, device_ids):
    devices = {p.device for _, p in named}
    if len(devices) > 1:
        raise ValueError(
            "DistributedDataParallel: the module's parameters are on several devices "
            f"({', '.join(sorted(map(str, devices)))}); each rank's replica must live on one"
        )
    device = devices.pop()
    if device.type == "cuda":
        if group.nccl is None:
            raise ValueError(
                f"DistributedDataParallel: the module is on {device}, but the process group uses "
                f"backend '{group.backend}' (CPU tensors only); use init_process_group('nccl')"
            )
        if device.index != group.device_index:
            raise ValueError(
                f"DistributedDataParallel: the module is on {device}, but this rank's GPU is "
                f"cuda:{group.device_index}; move it there (one GPU per rank)"
            )
    if device_ids is not None:
        ids = [backend.as_device(f"cuda:{d}" if isinstance(d, int) else d) for d in device_ids]
        if ids != [device]:
            raise ValueError(
                f"DistributedDataParallel: device_ids must be None or [the module's device "
                f"{device}], got {list(device_ids)}"
            )
    return device


def _verify_same_model(group, module: Module) -> None:
    """The same parameter names, shapes and dtypes on every rank, or an error naming the rank."""
    mine = [(name, tuple(p.shape), p.dtype.name) for name, p in module.named_parameters()]
    models = group.all_gather_object(mine)
    for rank, theirs in enumerate(models):
        if theirs == models[0]:
            continue
        for i in range(max(len(theirs), len(models[0]))):
            a = models[0][i] if i < len(models[0]) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                raise ValueError(
                    "DistributedDataParallel: the ranks' models differ: parameter "
                    f"{i} is {_param_text(a)} on rank 0 but {_param_text(b)} on rank {rank}"
                )


def _param_text(info) -> str:
    return "missing" if info is None else f"'{info[0]}' {info[2]} {info[1]}"


def _broadcast_state(group, tensors: list) -> None:
    """Rank 0's values into every rank's tensors (one broadcast per dtype)."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t.array.dtype, []).append(t)
    for members in by_dtype.values():
        xp = backend.xp_of(members[0].array)
        flat = xp.concatenate([t.array.reshape(-1) for t in members])
        group.broadcast(flat, 0, check=False)
        offset = 0
        with no_grad():
            for t in members:
                t.array[...] = flat[offset : offset + t.array.size].reshape(t.array.shape)
                t._bump_version()
                offset += t.array.size


def _make_buckets(named, first_cap: int, cap: int, device) -> list[_Bucket]:
    """Reverse parameter order, one dtype per bucket; a bucket closes once it holds >= its cap
    (the first bucket's cap is first_cap), as torch assigns them."""
    groups, open_ = [], {}
    for name, p in reversed(named):
        members = open_.setdefault(p.array.dtype, [])
        members.append((name, p))
        limit = first_cap if not groups else cap
        if sum(q.array.nbytes for _, q in members) >= limit:
            groups.append(open_.pop(p.array.dtype))
    groups.extend(open_.values())
    return [
        _Bucket(i, [p for _, p in members], [name for name, _ in members], device)
        for i, members in enumerate(groups)
    ]


def _leaves_reached(output) -> set:
    """ids of the leaf tensors the graph of output's tensors can reach."""
    tensors, stack = [], [output]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            tensors.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    reached = {id(t) for t in tensors if t.grad_fn is None}
    nodes = [t.grad_fn for t in tensors if t.grad_fn is not None]
    seen = set()
    while nodes:
        node = nodes.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, AccumulateGrad):
            reached.add(id(node.variable))
            continue
        nodes.extend(edge[0] for edge in node.next_edges if edge is not None)
    return reached
