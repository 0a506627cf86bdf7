"""`mpirun -n N python tests/mpi_workers/failures.py MODE SAVE_PATH`: DDP training in which the
last rank fails at step 3, and rank 0 would save a checkpoint at the end. MODE: kill (SIGKILL),
raise (an uncaught exception), leave (returns early while the others train on). The other ranks
must stop, the job must end non-zero with a message naming the failed rank, and nothing must be
saved."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn.functional as F
from gpugrad.nn.parallel import DistributedDataParallel as DDP


def main(mode: str, save_path: str) -> None:
    dist.init_process_group("mpi", timeout=2)
    rank, size = dist.get_rank(), dist.get_world_size()
    if mode == "leave" and rank != size - 1:  # the ranks that stay would also give up after 2 s:
        dist._default.timeout = 30  # let the one that leaves speak first, as the test expects
    gg.manual_seed(0)
    model = DDP(gg.nn.MLP([8, 16, 4]))
    optimizer = gg.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(rank)
    for step in range(200):
        if rank == size - 1 and step == 3:
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "raise":
                raise ValueError("the data of this rank is broken")
            elif mode == "leave":
                return
        x = gg.tensor(rng.standard_normal((4, 8)), dtype="float32")
        y = gg.tensor(rng.integers(0, 4, 4))
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    if rank == 0:
        gg.save(model.module.state_dict(), save_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
