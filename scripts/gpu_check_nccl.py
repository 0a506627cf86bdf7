"""The NCCL step of scripts/gpu_check.sh: gg.distributed's 'nccl' backend on CUDA tensors.

    python scripts/gpu_check_nccl.py --out nccl_check.json          # a group of 1 rank
    mpirun -n 8 python scripts/gpu_check_nccl.py --out nccl.json    # one GPU per rank

Every collective against NumPy (float32 and float64; SUM, AVG, MAX, MIN; sync and async), one
DDP step against the same step on the whole batch without DDP, and the time of all_reduce by
message size (CUDA events). Without a GPU or without the NCCL library it prints 'skipped: why'
and exits 0. Runs with or without mpi4py (one rank needs no MPI). A group of several GPUs is
owed until a machine with several is available: gpu_check.sh runs one rank."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

import numpy as np


def values(rank: int, shape, dtype: str) -> np.ndarray:
    return np.random.default_rng(10 + rank).uniform(-2, 2, size=shape).astype(dtype)


def check_collectives(gg, dist, device: str) -> None:
    rank, size = dist.get_rank(), dist.get_world_size()
    reduce = {
        dist.ReduceOp.SUM: lambda xs: xs.sum(0),
        dist.ReduceOp.AVG: lambda xs: xs.mean(0),
        dist.ReduceOp.MAX: lambda xs: xs.max(0),
        dist.ReduceOp.MIN: lambda xs: xs.min(0),
    }
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-12)):
        inputs = np.stack([values(r, (4, 33), dtype) for r in range(size)])
        for op, reference in reduce.items():
            for async_op in (False, True):
                t = gg.tensor(inputs[rank], device=device)
                work = dist.all_reduce(t, op, async_op=async_op)
                if async_op:
                    work.wait()
                np.testing.assert_allclose(t.cpu().numpy(), reference(inputs), rtol=tol, atol=tol)
        t = gg.tensor(inputs[rank], device=device)
        dist.broadcast(t, src=size - 1)
        np.testing.assert_array_equal(t.cpu().numpy(), inputs[size - 1])
        gathered = [gg.zeros(4, 33, dtype=dtype, device=device) for _ in range(size)]
        dist.all_gather(gathered, gg.tensor(inputs[rank], device=device))
        for r in range(size):
            np.testing.assert_array_equal(gathered[r].cpu().numpy(), inputs[r])
        flat = gg.zeros(4 * size, 33, dtype=dtype, device=device)
        dist.all_gather_into_tensor(flat, gg.tensor(inputs[rank], device=device))
        np.testing.assert_array_equal(flat.cpu().numpy(), inputs.reshape(4 * size, 33))
        blocks = np.stack([values(r, (size, 3, 5), dtype) for r in range(size)])
        mine = gg.zeros(3, 5, dtype=dtype, device=device)
        dist.reduce_scatter_tensor(
            mine, gg.tensor(blocks[rank].reshape(3 * size, 5), device=device)
        )
        np.testing.assert_allclose(mine.cpu().numpy(), blocks[:, rank].sum(0), rtol=tol, atol=tol)
    dist.barrier()


def check_ddp_step(gg, dist, device: str) -> None:
    import gpugrad.nn.functional as F

    rank, size = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((4 * size, 32)), dtype="float32", device=device)
    y = gg.tensor(rng.integers(0, 10, 4 * size), device=device)
    gg.manual_seed(0)
    reference = gg.nn.MLP([32, 64, 10], device=device)
    gg.manual_seed(rank)  # DDP must replace these with rank 0's values (seed 0)
    model = gg.nn.parallel.DistributedDataParallel(gg.nn.MLP([32, 64, 10], device=device))
    F.cross_entropy(reference(x), y).backward()
    F.cross_entropy(model(x[rank::size]), y[rank::size]).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-4, atol=1e-6)


def time_all_reduce(gg, dist, device: str) -> dict:
    import cupy

    out = {}
    for nbytes in (4, 4096, 1 << 20, 16 << 20, 64 << 20):
        t = gg.zeros(nbytes // 4, device=device)
        dist.all_reduce(t)
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(10):
            dist.all_reduce(t)
        end.record()
        end.synchronize()
        out[str(nbytes)] = cupy.cuda.get_elapsed_time(start, end) * 1e3 / 10
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("nccl_check.json"))
    parser.add_argument("--no-timing", action="store_true", help="checks only")
    args = parser.parse_args(argv)
    import gpugrad as gg
    import gpugrad.distributed as dist
    from gpugrad.distributed import nccl

    if not dist.is_nccl_available():
        reason = nccl.unavailable_reason()
        print(f"skipped: gg.distributed's NCCL path needs a GPU and NCCL: {reason}")
        args.out.write_text(json.dumps({"skipped": reason}))
        return 0
    dist.init_process_group("nccl")
    rank, size = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{dist.get_node_local_rank() % gg.cuda.device_count()}"
    report = {
        "ranks": size,
        "device": gg.cuda.get_device_name(device),
        "nccl_version": nccl.nccl_module().get_version(),
        "checks": {},
        "multi_gpu": "owed: needs a machine with several GPUs" if size == 1 else "run",
    }
    status = 0
    for name, check in (("collectives", check_collectives), ("ddp_step", check_ddp_step)):
        try:
            check(gg, dist, device)
            report["checks"][name] = "ok"
        except Exception:  # noqa: BLE001 - reported, and the exit status says it failed
            report["checks"][name] = traceback.format_exc()
            status = 1
    if status == 0 and not args.no_timing:
        report["all_reduce_us"] = time_all_reduce(gg, dist, device)
    if rank == 0:
        args.out.write_text(json.dumps(report, indent=1))
        print(json.dumps({k: v for k, v in report.items() if k != "checks"}))
        for name, result in report["checks"].items():
            print(f"{name}: {result}")
    dist.destroy_process_group()
    return status


if __name__ == "__main__":
    sys.exit(main())
