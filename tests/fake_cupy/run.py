"""Run a script on the fake GPU (the fake CuPy + the CUDA simulator as gpugrad._cuda):

    python -m tests.fake_cupy.run benchmarks/gpu_kernels.py --log2-elements 12
    python -m tests.fake_cupy.run - < script.py      # the script on standard input

A dry run of GPU-only scripts, such as the ones scripts/gpu_check.sh runs (its rehearsal,
GPU_CHECK_FAKE=1, runs every one of them this way), so that their plumbing is known to work
before the one run on a lent GPU. Timings mean nothing here.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

from tests.fake_cupy import plugin  # noqa: F401 - installs the fake on import

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "-":  # as `python -`: the code from stdin, the working folder on sys.path
        sys.argv = ["-", *sys.argv[2:]]
        exec(compile(sys.stdin.read(), "<stdin>", "exec"), {"__name__": "__main__"})  # noqa: S102
    else:
        script = Path(sys.argv[1]).resolve()
        sys.argv = [str(script), *sys.argv[2:]]
        sys.path.insert(0, str(script.parent))  # as `python script.py` would
        runpy.run_path(str(script), run_name="__main__")
