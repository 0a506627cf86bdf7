"""Adam and AdamW: torch.optim's updates (bias corrections 1 - beta**step, step counted per
parameter), one fused kernel call per parameter (amsgrad: the array reference, no fused kernel)."""

from __future__ import annotations

import functools

import numpy as np

from gpugrad import replay
from gpugrad.autograd.mode import no_grad
from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _state_buffer


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g²;
    p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps). weight_decay adds wd * p to g
    (Adam) or, with decoupled_weight_decay (AdamW), scales p by 1 - lr * wd first. amsgrad keeps
    max_exp_avg_sq = max(max_exp_avg_sq, v) and divides by its root instead of v's."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": bool(amsgrad),
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a .grad; returns closure() if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.array if not group["maximize"] else -param.grad.array
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = _state_buffer(param)
                    state["exp_avg_sq"] = _state_buffer(param)
                max_exp_avg_sq = None
                if group["amsgrad"]:
                    if "max_exp_avg_sq" not in state:  # also when amsgrad is switched on mid-run
                        state["max_exp_avg_sq"] = _state_buffer(param)
                    max_exp_avg_sq = state["max_exp_avg_sq"].array
                if max_exp_avg_sq is not None and replay.state.gpu is not None:
                    raise replay.CaptureError(
                        "capture: Adam with amsgrad has no fused kernel, and its array update "
                        "reads the learning rate as a Python number, which a CUDA graph would "
                        "freeze; capture it on the CPU or use amsgrad=False")
                # read when the kernel is about to run: now, or before each launch of a CUDA
                # graph that captured this step (which advances the step count then)
                hyper = replay.host_values(functools.partial(_hyper, group, state), 8)
                kernels.adam_step(param.array, grad, state["exp_avg"].array,
                                  state["exp_avg_sq"].array, hyper, max_exp_avg_sq)
                param._bump_version()
        return loss


def _hyper(group: dict, state: dict) -> np.ndarray:
    """One more step: the count advances and this step's hyperparameters (ADAM_SLOTS)."""
    state["step"] += 1
    beta1, beta2 = group["betas"]
    step = state["step"]
    return kernels.adam_hyper(group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                              1 - beta1**step, 1 - beta2**step, group["decoupled_weight_decay"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
