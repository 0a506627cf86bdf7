"""RAdam: torch.optim.RAdam's update (Adam with the variance rectification of Liu et al.), one
fused kernel call per parameter (kernels.radam_step)."""

from __future__ import annotations

from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common


def radam_hyper(state, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                maximize) -> dict:
    """This step's kernels.RADAM_SLOTS: bias corrections, and whether the variance is
    tractable yet (rho_t > 5) with its rectification term."""
    step = state["step"]
    bias_correction2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    rectified = rho_t > 5.0
    rect = 0.0
    if rectified:
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
    return {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "decoupled": decoupled_weight_decay, "bias_correction1": 1 - beta1**step,
            "bias_correction2_sqrt": bias_correction2**0.5, "rect": rect, "rectified": rectified,
            "maximize": maximize}


class RAdam(Optimizer):
    """Adam whose adaptive term is switched on (and rectified) only once the length of the
    approximated SMA, rho_t, exceeds 5; before that, an un-adapted momentum step."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.radam_step
    kernel_slots = kernels.RADAM_SLOTS
    hyper = staticmethod(radam_hyper)
    state_buffers = ("exp_avg", "exp_avg_sq")
    update_options = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        _check_common(
            lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, differentiable=differentiable
        )
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)
