"""gg.nn.parallel: DistributedDataParallel (data-parallel training over gg.distributed)."""

from gpugrad.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
