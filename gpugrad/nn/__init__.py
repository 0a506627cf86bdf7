"""gg.nn: modules and layers (see gg.nn.functional for the stateless ops)."""
from gpugrad.nn import functional  # noqa: F401
