"""A stand-in for cupy.cuda.nccl for the fake CuPy (tests/fake_cupy), over MPI on host memory:
CuPy's calls (NcclCommunicator(ndev, unique_id, rank), allReduce(sendbuf, recvbuf, count,
datatype, op, stream), ...) with its pointers and codes, so gg.distributed's NCCL transport
runs, across ranks, on a machine without a GPU. install() makes it cupy.cuda.nccl."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
from mpi4py import MPI

available = True
_DTYPES = {
    0: np.int8,
    1: np.uint8,
    2: np.int32,
    3: np.uint32,
    4: np.int64,
    5: np.uint64,
    6: np.float16,
    7: np.float32,
    8: np.float64,
}
_OPS = {0: MPI.SUM, 1: MPI.PROD, 2: MPI.MAX, 3: MPI.MIN, 4: MPI.SUM}  # 4: AVG, divided after


def get_unique_id() -> tuple:
    return tuple(np.random.default_rng().integers(-128, 128, 128).tolist())


def get_version() -> int:
    return 22807


def _array(ptr: int, count: int, datatype: int) -> np.ndarray:
    dtype = np.dtype(_DTYPES[datatype])
    return np.frombuffer((ctypes.c_char * (count * dtype.itemsize)).from_address(ptr), dtype)


class NcclCommunicator:
    def __init__(self, ndev: int, commId: tuple, rank: int):
        assert len(commId) == 128
        self._comm = MPI.COMM_WORLD.Dup()
        assert (self._comm.Get_size(), self._comm.Get_rank()) == (ndev, rank)

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        recv = _array(recvbuf, count, datatype)
        send = MPI.IN_PLACE if sendbuf == recvbuf else _array(sendbuf, count, datatype)
        self._comm.Allreduce(send, recv, _OPS[op])
        if op == 4:
            recv /= self._comm.Get_size()

    def broadcast(self, sendbuf, recvbuf, count, datatype, root, stream):
        recv = _array(recvbuf, count, datatype)
        if self._comm.Get_rank() == root and sendbuf != recvbuf:
            recv[...] = _array(sendbuf, count, datatype)
        self._comm.Bcast(recv, root=root)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        size = self._comm.Get_size()
        recv = _array(recvbuf, count * size, datatype)
        self._comm.Allgather(_array(sendbuf, count, datatype), recv)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        size = self._comm.Get_size()
        send = _array(sendbuf, recvcount * size, datatype)
        recv = _array(recvbuf, recvcount, datatype)
        self._comm.Reduce_scatter_block(send, recv, _OPS[op])
        if op == 4:
            recv /= size

    def destroy(self):
        self._comm.Free()


def install() -> None:
    import cupy

    module = sys.modules[__name__]
    cupy.cuda.nccl = module
    sys.modules["cupy.cuda.nccl"] = module
