"""gg.optim: optimizers with torch.optim's names, options, update rules and state_dict layout;
each step runs the fused in-place kernels of gpugrad.backend.kernels on the raw arrays."""

from gpugrad.optim.adam import Adam, AdamW
from gpugrad.optim.optimizer import Optimizer
from gpugrad.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
