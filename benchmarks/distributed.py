"""Data-parallel benchmark: all-reduce bus bandwidth by message size, and DDP step time at
784-2048-2048-10 for 1, 2, 3 ranks with the share of communication hidden behind backward.

    python -m benchmarks.distributed                 # ranks 1,2,3; writes benchmarks/results/
    python -m benchmarks.distributed --quick         # tiny sizes, 2 ranks: the smoke test

This process starts `mpirun -n N` (gpugrad.distributed.launch) once per rank count; rank 0 of
each run writes its measurements, and this process writes distributed-cpu-<date>.json and .md.

All-reduce: float32 messages of 4 B .. 64 MB, in place, SUM; a sample is the slowest rank's
time per call over enough back-to-back calls to last ~20 ms; median of the samples. Bus
bandwidth = bytes / time x 2 (N - 1) / N (nccl-tests' convention: what each rank's link
carries in a ring), for gg.distributed.all_reduce (argument check + communication thread) and
for mpi4py's Allreduce on the same buffer (the floor).

DDP step: MLP 784-2048-2048-10, relu, float32, 64 examples per rank (weak scaling), SGD:
forward, cross-entropy, zero_grad, backward, step; one BLAS thread per rank. From DDP's own
timings: communication = the buckets' all-reduce time; hidden = the part of it that ran while
backward still computed; exposed = how long backward() took after its own computation ended
(waiting for the last buckets, then copying the averages into .grad)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = [4 << k for k in range(0, 25, 2)]  # 4 B .. 64 MB
QUICK_SIZES = [4, 1024, 65536]


# ---- inside each rank ----------------------------------------------------------------------------
def _slowest(seconds: float) -> float:
    import gpugrad as gg
    import gpugrad.distributed as dist

    t = gg.tensor([seconds], dtype="float64")
    dist.all_reduce(t, dist.ReduceOp.MAX)
    return t.item()


def bandwidth(sizes: list[int], samples: int) -> list[dict]:
    from mpi4py import MPI

    import gpugrad as gg
    import gpugrad.distributed as dist

    world = dist.get_world_size()
    rows = []
    for nbytes in sizes:
        tensor = gg.zeros(max(1, nbytes // 4))
        ways = {
            "gg.distributed": lambda t=tensor: dist.all_reduce(t),
            "mpi4py": lambda t=tensor: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, t.array),
        }
        row = {"bytes": nbytes}
        for name, call in ways.items():
            call()
            dist.barrier()
            start = time.perf_counter()
            call()
            once = _slowest(time.perf_counter() - start)
            inner = max(1, int(0.02 / max(once, 1e-7)))
            times = []
            for _ in range(samples):
                dist.barrier()
                start = time.perf_counter()
                for _ in range(inner):
                    call()
                times.append(_slowest((time.perf_counter() - start) / inner))
            median = float(np.median(times))
            bus = nbytes / median * 2 * (world - 1) / world / 1e9
            row[name] = {"us": median * 1e6, "bus_GBps": bus, "inner": inner}
        rows.append(row)
    return rows


def ddp_step(sizes: list[int], batch: int, steps: int) -> dict:
    import gpugrad as gg
    import gpugrad.distributed as dist
    import gpugrad.nn.functional as F

    rank = dist.get_rank()
    gg.manual_seed(0)
    model = gg.nn.parallel.DistributedDataParallel(gg.nn.MLP(sizes, activation="relu"))
    optimizer = gg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = gg.tensor(rng.standard_normal((batch, sizes[0])), dtype="float32")
    y = gg.tensor(rng.integers(0, sizes[-1], batch))
    records = []
    for step in range(steps + 3):  # 3 warm-up steps
        dist.barrier()
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        backward_start = time.perf_counter()
        loss.backward()
        backward_end = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if step < 3:
            continue
        timing = model._get_ddp_logging_data()
        comm = hidden = 0.0
        for _, _, began, finished in timing["buckets"]:
            comm += finished - began
            hidden += max(0.0, min(finished, timing["computed"]) - max(began, backward_start))
        records.append(
            {
                "step": _slowest(end - start),
                "backward": backward_end - backward_start,
                "comm": comm,
                "hidden": hidden,
                "exposed": backward_end - timing["computed"],
            }
        )
    median = {key: float(np.median([r[key] for r in records])) for key in records[0]}
    buckets = [round(b.nbytes / 2**20, 2) for b in model._buckets]
    return {
        "config": "-".join(map(str, sizes)),
        "batch_per_rank": batch,
        "steps": steps,
        "bucket_MB": buckets,
        "step_ms": median["step"] * 1e3,
        "backward_ms": median["backward"] * 1e3,
        "comm_ms": median["comm"] * 1e3,
        "hidden_fraction": (
            float(np.median([r["hidden"] / r["comm"] for r in records if r["comm"] > 0]))
            if dist.get_world_size() > 1
            else None
        ),
        "exposed_ms": median["exposed"] * 1e3,
    }


def worker(out: str, quick: bool) -> None:
    from mpi4py import MPI

    import gpugrad.distributed as dist

    dist.init_process_group("mpi")
    result = {"ranks": dist.get_world_size(), "mpi": MPI.Get_library_version().split(",")[0]}
    if dist.get_world_size() > 1:
        result["all_reduce"] = bandwidth(QUICK_SIZES if quick else SIZES, 3 if quick else 9)
    mlp = [64, 128, 128, 10] if quick else [784, 2048, 2048, 10]
    result["ddp"] = ddp_step(mlp, batch=16 if quick else 64, steps=2 if quick else 20)
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


# ---- the driver ------------------------------------------------------------------------------
def run(ranks: list[int], quick: bool, out_dir: Path) -> tuple[Path, Path]:
    from gpugrad.bench import harness
    from gpugrad.distributed import launch

    doc = {"schema": "gpugrad-bench-distributed/1", **harness.environment(), "runs": []}
    for n in ranks:
        part = out_dir / f".distributed-{n}.json"
        command = [sys.executable, "-m", "benchmarks.distributed", "--worker", str(part)]
        argv, env = launch.mpirun_command(n, command + (["--quick"] if quick else []))
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{n} ranks failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        doc["runs"].append(json.loads(part.read_text()))
        part.unlink()
    doc["machine"]["loadavg_at_end"] = list(os.getloadavg())
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    stem = out_dir / f"distributed-cpu-{stamp}{'-quick' if quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    stem.with_suffix(".md").write_text(markdown(doc))
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def markdown(doc: dict) -> str:
    machine = doc["machine"]
    lines = [
        f"# Data-parallel benchmark, {doc['date']}",
        "",
        (
            f"{machine['cpu_model']}, {machine['logical_cores']} logical cores, load average "
            f"{machine['loadavg_at_start'][0]:.1f} at start, "
            f"{machine['loadavg_at_end'][0]:.1f} at end; "
            f"{doc['runs'][0]['mpi']}; one BLAS thread per rank."
        ),
        "",
    ]
    for run_ in doc["runs"]:
        if "all_reduce" not in run_:
            continue
        lines += [
            f"## all_reduce, {run_['ranks']} ranks (float32, SUM, in place)",
            "",
            "| bytes | gg.distributed µs | bus GB/s | mpi4py µs | bus GB/s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in run_["all_reduce"]:
            ours, floor = row["gg.distributed"], row["mpi4py"]
            lines.append(
                f"| {row['bytes']:,} | {ours['us']:.1f} | {ours['bus_GBps']:.3f} | "
                f"{floor['us']:.1f} | {floor['bus_GBps']:.3f} |"
            )
        lines.append("")
    first = doc["runs"][0]["ddp"]
    lines += [
        (
            f"## DDP step, MLP {first['config']} relu float32, {first['batch_per_rank']} "
            f"examples per rank, buckets {first['bucket_MB']} MB"
        ),
        "",
        "| ranks | step ms | backward ms | all-reduce ms | hidden behind backward | exposed ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for run_ in doc["runs"]:
        d = run_["ddp"]
        hidden = "—" if d["hidden_fraction"] is None else f"{d['hidden_fraction']:.0%}"
        lines.append(
            f"| {run_['ranks']} | {d['step_ms']:.1f} | {d['backward_ms']:.1f} | "
            f"{d['comm_ms']:.1f} | {hidden} | {d['exposed_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed", description=__doc__)
    parser.add_argument("--ranks", default="1,2,3", help="rank counts to run (default: 1,2,3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 ranks: smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.quick)
        return 0
    ranks = [2] if args.quick else [int(n) for n in args.ranks.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = run(ranks, args.quick, args.out)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
