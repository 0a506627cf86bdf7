"""Benchmarks of a source checkout: `python -m benchmarks.run` (the CPU harness, which ships
with the package as gpugrad.bench: `python -m gpugrad bench`), the GPU scripts that
scripts/gpu_check.sh runs, and the data-parallel benchmark. See benchmarks/README.md.
"""
