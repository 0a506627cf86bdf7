"""Adamax: torch.optim.Adamax's update (Adam with an infinity-norm second moment), one fused
kernel call per parameter (kernels.adamax_step)."""

from __future__ import annotations

from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common


def adamax_hyper(state, *, lr, beta1, beta2, eps, weight_decay, maximize) -> dict:
    """This step's kernels.ADAMAX_SLOTS: the bias-corrected rate clr = lr / (1 - b1**t)."""
    clr = lr / (1 - beta1 ** state["step"])
    return {"clr": clr, "beta1": beta1, "beta2": beta2, "eps": eps,
            "weight_decay": weight_decay, "maximize": maximize}


class Adamax(Optimizer):
    """m = lerp(m, g, 1 - b1); u = max(b2 u, |g| + eps); p -= lr / (1 - b1**t) * m / u."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.adamax_step
    kernel_slots = kernels.ADAMAX_SLOTS
    hyper = staticmethod(adamax_hyper)
    state_buffers = ("exp_avg", "exp_inf")
    update_options = ("lr", "betas", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ):
        _check_common(
            lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, differentiable=differentiable
        )
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)
