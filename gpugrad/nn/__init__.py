"""gg.nn: modules and layers (see gg.nn.functional for the stateless ops, gg.nn.init for
parameter initialisers)."""

from gpugrad.nn import functional, init, modules
from gpugrad.nn.modules import *  # noqa: F403

__all__ = [*modules.__all__, "functional", "init"]
