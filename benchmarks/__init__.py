"""gpugrad vs PyTorch autograd on the CPU: MLP training step, per-op, engine overhead, memory.

Entry point: `python -m benchmarks.run` (or `python -m gpugrad bench`); see benchmarks/README.md.
"""
