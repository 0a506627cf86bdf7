"""The `cuda` tests, run without a GPU against the fake CuPy and the CUDA simulator.

tests/fake_cupy/plugin.py swaps CuPy for a NumPy-backed stand-in with CuPy's API and refusals
(no implicit host conversion, no host/device mixing, 0-d results, only CuPy's names) and
gpugrad._cuda for the simulator's build of csrc/cuda; CuPy fallback kernel sources are compiled
by g++ for the simulator. So the op table, engine, nn, optim, kernel wrappers and both kernel
levels run their device paths here; what only a GPU can show (nvcc's and NVRTC's code, real
memory, streams, concurrency, speed) waits for scripts/gpu_check.sh. A separate process: the fake must
be imported before gpugrad looks for CuPy, and must not replace the real CuPy of other tests.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cuda_tests_on_the_fake_gpu(*args: str, gpus: int = 1, timeout: int = 1200) -> str:
    """Run the cuda-marked tests in a child pytest with the fake GPU; its output."""
    command = [sys.executable, "-m", "pytest", "-p", "tests.fake_cupy.plugin", "-m", "cuda",
               "-q", "-p", "no:cacheprovider", *args]
    env = dict(os.environ, GG_FAKE_GPUS=str(gpus))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
def test_cuda_marked_tests_pass_on_the_fake_gpu(cuda_sim):  # built here: an error reads as one
    out = _cuda_tests_on_the_fake_gpu("-x", "tests").strip()
    summary = out.splitlines()[-1] if out else ""
    assert " passed" in summary and "failed" not in summary, summary


@pytest.mark.slow
def test_multi_gpu_tests_pass_on_two_fake_gpus(cuda_sim):
    """The lent machines have one GPU, so the cuda:1 tests only ever run here: two fake devices
    whose kernels refuse arrays from the other one (CuPy without peer access)."""
    out = _cuda_tests_on_the_fake_gpu("-rs", "tests/test_devices.py", gpus=2, timeout=600)
    assert "needs at least two GPUs" not in out  # the cuda:1 tests ran


@pytest.mark.slow
def test_gpu_benchmarks_run_on_the_fake_gpu(cuda_sim, tmp_path):
    """A dry run of what scripts/gpu_check.sh benchmarks, small, so that the one run on a lent
    GPU does not find a bug in the harness. The numbers mean nothing here."""
    kernels_json, mlp_json, summary = (tmp_path / n for n in ("k.json", "m.json", "s.md"))
    runs = [
        ["benchmarks/gpu_kernels.py", "--log2-elements", "12", "--warmup", "1", "--repeats", "2",
         "--out", str(kernels_json)],
        ["benchmarks/gpu_mlp.py", "--configs", "784-512-512-10", "--warmup", "1",
         "--repeat-scale", "0.1", "--out", str(mlp_json), "--summary", str(summary),
         "--kernels-json", str(kernels_json)],
    ]
    for args in runs:
        done = subprocess.run([sys.executable, "-m", "tests.fake_cupy.run", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, f"{args[0]}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    kernels = json.loads(kernels_json.read_text())
    assert kernels["skipped"] is False and kernels["copy"]["ceiling_gbps"] > 0
    levels = {(r["kernel"], r["level"]) for r in kernels["results"] if r.get("gbps", 0) > 0}
    assert {("relu_fwd", "native"), ("relu_fwd", "cupy"), ("adam_step", "native")} <= levels
    assert not [r for r in kernels["results"] if "error" in r]
    mlp = json.loads(mlp_json.read_text())
    assert mlp["skipped"] is False
    (row,) = mlp["results"]
    assert "error" not in row and row["gpugrad"]["median_ms"] > 0
    assert math.isfinite(row["gpugrad"]["loss_after"])
    assert "784-512-512-10" in summary.read_text()
