"""SGD with momentum, dampening, Nesterov and weight decay: torch.optim.SGD's update, one fused
kernel call per parameter."""

from __future__ import annotations

import functools

import numpy as np

from gpugrad import replay
from gpugrad.autograd.mode import no_grad
from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _state_buffer


class SGD(Optimizer):
    """d = g + weight_decay * p; buf = momentum * buf + (1 - dampening) * d (buf = d on the
    first step); d = d + momentum * buf if nesterov else buf; p -= lr * d."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def add_param_group(self, param_group) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            self.param_groups.pop()
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a .grad; returns closure() if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            steady = None  # the group's hyperparameters, shared by its params past their first step
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.array if not group["maximize"] else -param.grad.array
                buf, first = None, False
                if group["momentum"] != 0:
                    state = self.state[param]
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = _state_buffer(param)
                        first = True
                    buf = state["momentum_buffer"].array
                # read when the kernel is about to run: now, or before each launch of a CUDA
                # graph that captured this step (the learning rate may have changed since)
                if first:
                    hyper = replay.host_values(functools.partial(_hyper, group, [True]), 6)
                else:
                    if steady is None:
                        steady = replay.host_values(functools.partial(_hyper, group, [False]), 6)
                    hyper = steady
                kernels.sgd_step(param.array, grad, buf, hyper)
                param._bump_version()
        return loss


def _hyper(group: dict, first: list) -> np.ndarray:
    """This step's hyperparameters (kernels.SGD_SLOTS); `first` says once that the momentum
    buffer starts now."""
    first_step, first[0] = first[0], False
    return kernels.sgd_hyper(group["lr"], group["momentum"], group["dampening"],
                             group["weight_decay"], group["nesterov"], first_step)
