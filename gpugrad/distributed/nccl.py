"""The device transport: NCCL collectives on CuPy arrays through cupy.cuda.nccl, one GPU per
rank. The communicator is built from a unique id that rank 0 makes and the host transport (MPI)
broadcasts. Calls only enqueue work on a CUDA stream; the host does not wait for the GPU."""

from __future__ import annotations

# ncclDataType_t and ncclRedOp_t, as cupy.cuda.nccl names them
_DTYPES = {
    "int8": 0,
    "uint8": 1,
    "bool": 1,
    "int32": 2,
    "uint32": 3,
    "int64": 4,
    "uint64": 5,
    "float16": 6,
    "float32": 7,
    "float64": 8,
    "bfloat16": 9,
}
_OPS = {"sum": 0, "product": 1, "max": 2, "min": 3, "avg": 4}


def nccl_module():
    """cupy.cuda.nccl when CuPy and the NCCL library are both there, else None."""
    try:
        from cupy.cuda import nccl
    except Exception:  # noqa: BLE001 - no CuPy, no NCCL library, no driver: all mean 'not here'
        return None
    return nccl if getattr(nccl, "available", False) else None


def unavailable_reason() -> str:
    from gpugrad.backend import cuda_available, cuda_unavailable_reason

    if not cuda_available():
        return cuda_unavailable_reason()
    return (
        "CuPy cannot load the NCCL library (pip install nvidia-nccl-cu13, or nvidia-nccl-cu12 "
        "for CUDA 12)"
    )


class NcclTransport:
    name = "NCCL"

    def __init__(self, host, device_index: int):
        import cupy

        nccl = nccl_module()
        if nccl is None:
            raise RuntimeError(f"init_process_group('nccl'): {unavailable_reason()}")
        self.cupy, self.nccl, self.device_index = cupy, nccl, device_index
        unique_id = nccl.get_unique_id() if host.rank == 0 else None
        unique_id = host.broadcast_object(unique_id)
        with cupy.cuda.Device(device_index):
            self.comm = nccl.NcclCommunicator(host.size, unique_id, host.rank)
            self.side_stream = cupy.cuda.Stream(non_blocking=True)  # where async ops run
        self.version = nccl.get_version()

    def use_device(self) -> None:
        """Make this rank's GPU current in the calling thread (CuPy's current GPU is per thread)."""
        self.cupy.cuda.Device(self.device_index).use()

    def all_reduce(self, array, op: str, stream: int) -> None:
        ptr = array.data.ptr
        self.comm.allReduce(ptr, ptr, array.size, _DTYPES[array.dtype.name], _OPS[op], stream)

    def broadcast(self, array, src: int, stream: int) -> None:
        ptr = array.data.ptr
        self.comm.broadcast(ptr, ptr, array.size, _DTYPES[array.dtype.name], src, stream)

    def all_gather(self, out, inp, stream: int) -> None:
        self.comm.allGather(inp.data.ptr, out.data.ptr, inp.size, _DTYPES[inp.dtype.name], stream)

    def reduce_scatter(self, out, inp, op: str, stream: int) -> None:
        dtype = _DTYPES[inp.dtype.name]
        self.comm.reduceScatter(inp.data.ptr, out.data.ptr, out.size, dtype, _OPS[op], stream)

    def free(self) -> None:
        self.comm.destroy()
