"""gg.nn: modules and layers (see gg.nn.functional for the stateless ops, gg.nn.init for
parameter initialisers)."""

from gpugrad.nn import functional, init, modules, utils
from gpugrad.nn.modules import *  # noqa: F403
from gpugrad.nn import parallel  # noqa: E402  (after Module: DistributedDataParallel is one)

__all__ = [*modules.__all__, "functional", "init", "parallel", "utils"]
