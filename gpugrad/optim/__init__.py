"""gg.optim: optimizers with torch.optim's names, options, update rules and state_dict layout.
Each runs one fused kernel of gpugrad.backend.kernels per parameter, in place on the raw arrays
(sgd_step, adam_step, rmsprop_step, ...; their array references follow torch's order of
operations). gg.optim.lr_scheduler holds the learning-rate schedules."""

from gpugrad.optim import lr_scheduler
from gpugrad.optim.adadelta import Adadelta
from gpugrad.optim.adagrad import Adagrad
from gpugrad.optim.adam import Adam, AdamW
from gpugrad.optim.adamax import Adamax
from gpugrad.optim.nadam import NAdam
from gpugrad.optim.optimizer import Optimizer
from gpugrad.optim.radam import RAdam
from gpugrad.optim.rmsprop import RMSprop
from gpugrad.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Adadelta",
    "Adagrad",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "lr_scheduler",
]
