"""scripts/gpu_check_nccl.py on the fake GPU (tests/fake_cupy + the CUDA simulator) with a fake
NCCL over MPI (fake_nccl.py): gg.distributed's NCCL path, run here without a GPU.

    [mpirun -n N] python tests/mpi_workers/nccl_on_fake_gpu.py --out report.json"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "mpi_workers")]

import fake_nccl

import tests.fake_cupy.plugin  # noqa: F401  (cupy is the fake from here on)

fake_nccl.install()
sys.argv = [str(ROOT / "scripts" / "gpu_check_nccl.py"), *sys.argv[1:]]
runpy.run_path(sys.argv[0], run_name="__main__")
