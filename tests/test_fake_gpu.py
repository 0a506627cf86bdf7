"""The `cuda` tests, run without a GPU against the fake CuPy and the CUDA simulator.

tests/fake_cupy/plugin.py swaps CuPy for a NumPy-backed stand-in with CuPy's API and refusals
(no implicit host conversion, no host/device mixing, 0-d results, only CuPy's names) and
gpugrad._cuda for the simulator's build of csrc/cuda; CuPy fallback kernel sources are compiled
by g++ for the simulator. So the op table, engine, nn, optim, kernel wrappers and both kernel
levels run their device paths here; what only a GPU can show (nvcc's and NVRTC's code, real
memory, streams, concurrency, speed) waits for scripts/gpu_check.sh. A separate process: the fake must
be imported before gpugrad looks for CuPy, and must not replace the real CuPy of other tests.

Every cuda test (and the GPU benchmarks) runs on one fake GPU in tests/test_gpu_check.py, inside
the rehearsal of scripts/gpu_check.sh; this file runs the ones that need two.
"""
from __future__ import annotations

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
def test_multi_gpu_tests_pass_on_two_fake_gpus(cuda_sim):
    """The lent machines have one GPU, so the cuda:1 tests only ever run here: two fake devices
    whose kernels refuse arrays from the other one (CuPy without peer access)."""
    out = _cuda_tests_on_the_fake_gpu("-rs", "tests/test_devices.py", gpus=2, timeout=600)
    assert "needs at least two GPUs" not in out  # the cuda:1 tests ran
