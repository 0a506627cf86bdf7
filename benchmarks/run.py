"""`python -m benchmarks.run`: the CPU benchmark from a source checkout, writing into
benchmarks/results/ unless --out says otherwise. The harness itself ships with the package
(gpugrad/bench/, `python -m gpugrad bench`); the options are the same."""

from __future__ import annotations

import sys
from pathlib import Path

from gpugrad.bench.run import main

RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks.run", default_out=RESULTS))
