"""gg.distributed: torch.distributed's process group and collectives on proven engines — MPI
(mpi4py) between processes and for CPU tensors, NCCL (cupy.cuda.nccl) for CUDA tensors, one GPU
per rank. Start the processes with a launcher (`mpirun -n 4 python train.py`), then call
init_process_group("mpi" | "nccl") in each. Collectives change their tensors in place and, with
async_op=True, return a Work to wait on. Importing gpugrad never imports mpi4py."""

from __future__ import annotations

import datetime

import numpy as np

from gpugrad.distributed import mpi, nccl
from gpugrad.distributed.group import ProcessGroup, ReduceOp, Work, as_seconds
from gpugrad.tensor import Tensor

__all__ = [
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_node_local_rank",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "reduce_scatter",
    "reduce_scatter_tensor",
]

default_pg_timeout = datetime.timedelta(minutes=30)  # torch's default for every backend but NCCL
_BACKENDS = ("mpi", "nccl")
_REDUCIBLE = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
)
_default: ProcessGroup | None = None


def is_available() -> bool:
    """True: gpugrad's distributed package is always there (one process runs without mpi4py)."""
    return True


def is_mpi_available() -> bool:
    """True when mpi4py is installed (pip install 'gpugrad[distributed]')."""
    return mpi.mpi4py_available()


def is_nccl_available() -> bool:
    """True when CuPy sees a GPU and can load the NCCL library."""
    from gpugrad.backend import cuda_available

    return cuda_available() and nccl.nccl_module() is not None


def is_initialized() -> bool:
    return _default is not None


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout=None,
    world_size: int = -1,
    rank: int = -1,
    store=None,
    group_name: str = "",
    device_id=None,
) -> None:
    """Join the processes the launcher started: backend 'mpi' (CPU tensors) or 'nccl' (CUDA
    tensors through NCCL, CPU tensors through MPI; this rank's GPU is cuda:<node-local rank>
    unless device_id says otherwise). Ranks and world size come from MPI; timeout (a timedelta
    or seconds, default 30 min) bounds every wait for the other ranks."""
    global _default
    if _default is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend is None:
        backend = "nccl" if is_nccl_available() else "mpi"
    backend = str(backend).lower()
    if backend not in _BACKENDS:
        raise ValueError(
            f"init_process_group: backend must be 'mpi' or 'nccl', got {backend!r} (gloo and "
            "ucc are not available: gpugrad's CPU tensors travel over MPI)"
        )
    if init_method not in (None, "env://") or store is not None:
        raise ValueError(
            "init_process_group: init_method and store are not supported: the ranks find "
            "each other through MPI, so start them with mpirun (or srun)"
        )
    device_index = None
    if device_id is not None:
        from gpugrad.backend import as_device

        device = as_device(device_id) if not isinstance(device_id, int) else None
        if device is not None and device.type != "cuda":
            raise ValueError(f"init_process_group: device_id must be a CUDA device, got {device}")
        device_index = device_id if device is None else device.index
    if backend == "nccl" and not is_nccl_available():
        raise RuntimeError(f"init_process_group('nccl'): {nccl.unavailable_reason()}")
    group = ProcessGroup(
        backend, as_seconds(default_pg_timeout if timeout is None else timeout), device_index
    )
    for name, given, actual in (("world_size", world_size, group.size), ("rank", rank, group.rank)):
        if given not in (-1, None) and given != actual:
            group.close()
            raise ValueError(
                f"init_process_group: {name}={given}, but MPI started this process as rank "
                f"{group.rank} of {group.size}: the launcher decides (mpirun -n N)"
            )
    _default = group


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leave the group: waits (at most the timeout) until every rank gets here too."""
    global _default
    _group(group, "destroy_process_group").close()
    _default = None


def _group(group, who: str) -> ProcessGroup:
    if _default is None:
        raise RuntimeError(
            f"{who}: Default process group has not been initialized, please make sure to call "
            "init_process_group."
        )
    if group is not None and group is not _default:
        raise ValueError(f"{who}: only the default process group (group=None) is supported")
    return _default


def get_rank(group: ProcessGroup | None = None) -> int:
    return _group(group, "get_rank").rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    return _group(group, "get_world_size").size


def get_backend(group: ProcessGroup | None = None) -> str:
    return _group(group, "get_backend").backend


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among those on its machine (which GPU it takes)."""
    if _default is not None:
        return _default.local_rank
    if fallback_rank is not None:
        return fallback_rank
    raise RuntimeError("get_node_local_rank: the process group is not initialized")


def barrier(group: ProcessGroup | None = None, async_op: bool = False):
    return _group(group, "barrier").barrier(async_op)


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """tensor <- op over all ranks' tensor (in place, on every rank)."""
    pg = _group(group, "all_reduce")
    array = _array(pg, "all_reduce", tensor, "tensor")
    _check_reduction(pg, "all_reduce", array, op)
    tensor._bump_version()
    return pg.all_reduce(array, op, async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """tensor <- rank src's tensor (in place, on every rank)."""
    pg = _group(group, "broadcast")
    array = _array(pg, "broadcast", tensor, "tensor")
    _check_rank(pg, "broadcast", "src", src)
    tensor._bump_version()
    return pg.broadcast(array, int(src), async_op)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """tensor_list[r] <- rank r's tensor, for every r (tensor_list: world_size tensors)."""
    pg = _group(group, "all_gather")
    array = _array(pg, "all_gather", tensor, "tensor")
    targets = _list(pg, "all_gather", tensor_list, "tensor_list", array)
    for t in tensor_list:
        t._bump_version()
    flat = _xp(array).empty((pg.size, *array.shape), dtype=array.dtype)
    work = pg.all_gather(flat, array, True, list_len=len(targets))
    return _finish(work, async_op, lambda: _unstack(flat, targets))


def all_gather_into_tensor(
    output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False
):
    """output_tensor <- every rank's input_tensor, rank order, along dim 0 (or stacked)."""
    pg = _group(group, "all_gather_into_tensor")
    inp = _array(pg, "all_gather_into_tensor", input_tensor, "input_tensor")
    out = _array(pg, "all_gather_into_tensor", output_tensor, "output_tensor")
    _check_sizes(pg, "all_gather_into_tensor", out, inp, "output_tensor", "input_tensor")
    output_tensor._bump_version()
    return pg.all_gather(out, inp, async_op)


def reduce_scatter(
    output: Tensor,
    input_list: list,
    op: ReduceOp = ReduceOp.SUM,
    group=None,
    async_op: bool = False,
):
    """output <- op over all ranks' input_list[rank] (input_list: world_size tensors)."""
    pg = _group(group, "reduce_scatter")
    out = _array(pg, "reduce_scatter", output, "output")
    sources = _list(pg, "reduce_scatter", input_list, "input_list", out)
    _check_reduction(pg, "reduce_scatter", out, op)
    xp = _xp(out)
    flat = xp.stack(sources)
    output._bump_version()
    return pg.reduce_scatter(out, flat, op, async_op, list_len=len(sources))


def reduce_scatter_tensor(
    output: Tensor,
    input: Tensor,
    op: ReduceOp = ReduceOp.SUM,
    group=None,
    async_op: bool = False,
):
    """output <- op over all ranks of their input's block number rank (input: world_size blocks
    of output's size, along dim 0)."""
    pg = _group(group, "reduce_scatter_tensor")
    out = _array(pg, "reduce_scatter_tensor", output, "output")
    inp = _array(pg, "reduce_scatter_tensor", input, "input")
    _check_sizes(pg, "reduce_scatter_tensor", inp, out, "input", "output")
    _check_reduction(pg, "reduce_scatter_tensor", inp, op)
    output._bump_version()
    return pg.reduce_scatter(out, inp, op, async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """object_list[r] <- rank r's obj (any picklable object)."""
    pg = _group(group, "all_gather_object")
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        raise ValueError(
            f"all_gather_object: object_list must be a list of world_size ({pg.size}) items"
        )
    object_list[:] = pg.all_gather_object(obj)


# ---- argument checks (raised before any communication) ---------------------------------------
def _array(pg: ProcessGroup, who: str, tensor, arg: str):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: {arg} must be a gg.Tensor, got {type(tensor).__name__}")
    array = tensor.array
    if isinstance(array, np.ndarray):
        return array
    if pg.nccl is None:
        raise ValueError(
            f"{who}: {arg} is on {tensor.device}, and the process group was initialised with "
            f"backend '{pg.backend}', which carries CPU tensors only; use "
            "init_process_group('nccl') for CUDA tensors"
        )
    if tensor.device.index != pg.device_index:
        raise ValueError(
            f"{who}: {arg} is on {tensor.device}, but this rank's NCCL communicator uses "
            f"cuda:{pg.device_index} (one GPU per rank)"
        )
    return array


def _xp(array):
    from gpugrad.backend import xp_of

    return xp_of(array)


def _list(pg, who, tensors, arg, like) -> list:
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{who}: {arg} must be a list of gg.Tensor, got {type(tensors).__name__}")
    if len(tensors) != pg.size:
        raise ValueError(
            f"{who}: {arg} has {len(tensors)} tensors; it needs one per rank ({pg.size})"
        )
    arrays = [_array(pg, who, t, f"{arg}[{i}]") for i, t in enumerate(tensors)]
    for i, array in enumerate(arrays):
        if array.shape != like.shape or array.dtype != like.dtype:
            raise ValueError(
                f"{who}: {arg}[{i}] is {array.dtype} {tuple(array.shape)}, but the tensor is "
                f"{like.dtype} {tuple(like.shape)}"
            )
    return arrays


def _check_reduction(pg, who, array, op) -> None:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{who}: op must be a gg.distributed.ReduceOp, got {op!r}")
    if array.dtype.name not in _REDUCIBLE:
        raise TypeError(f"{who}: {array.dtype} tensors cannot be reduced (only broadcast/gathered)")
    if op is ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"{who}: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}")


def _check_rank(pg, who, arg, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: {arg} must be a rank (an int), got {value!r}")
    if not 0 <= value < pg.size:
        raise ValueError(f"{who}: {arg}={value} is not a rank of this group (0..{pg.size - 1})")


def _check_sizes(pg, who, big, small, big_arg, small_arg) -> None:
    if big.dtype != small.dtype:
        raise TypeError(f"{who}: {big_arg} is {big.dtype} but {small_arg} is {small.dtype}")
    if big.size != pg.size * small.size:
        raise ValueError(
            f"{who}: {big_arg} has {big.size} elements; it must hold world_size ({pg.size}) x "
            f"{small_arg}'s {small.size}"
        )


def _unstack(flat, targets) -> None:
    for row, target in zip(flat, targets):
        target[...] = row


class _Then:
    """A Work whose wait() also runs a follow-up on this thread (all_gather's copy-out)."""

    def __init__(self, work: Work, then):
        self._work, self._then, self._ran = work, then, False

    def wait(self, timeout=None) -> bool:
        self._work.wait(timeout)
        if not self._ran:
            self._ran = True
            self._then()
        return True

    def is_completed(self) -> bool:
        return self._work.is_completed()


def _finish(work: Work, async_op: bool, then):
    follow = _Then(work, then)
    if async_op:
        return follow
    follow.wait()
    return None
