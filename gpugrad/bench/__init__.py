"""gpugrad vs PyTorch autograd on the CPU: MLP training steps (with the step's GEMMs alone as
the roofline), every fused kernel's bandwidth, single ops, engine overhead, memory. Entry point:
`python -m gpugrad bench` (gpugrad.bench.run); needs torch and threadpoolctl (the `bench`
extra). Nothing here is imported by `import gpugrad`."""
