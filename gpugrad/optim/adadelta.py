"""Adadelta: torch.optim.Adadelta's update, one fused kernel call per parameter
(kernels.adadelta_step)."""

from __future__ import annotations

from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common


def adadelta_hyper(state, *, lr, rho, eps, weight_decay, maximize) -> dict:
    """This step's kernels.ADADELTA_SLOTS (Adadelta has no step-dependent scalar)."""
    return {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize}


class Adadelta(Optimizer):
    """v = rho v + (1 - rho) g²; d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d²; p -= lr d."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.adadelta_step
    kernel_slots = kernels.ADADELTA_SLOTS
    hyper = staticmethod(adadelta_hyper)
    state_buffers = ("square_avg", "acc_delta")
    update_options = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach=None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        _check_common(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, differentiable=differentiable
        )
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)
