"""NAdam: torch.optim.NAdam's update (Nesterov momentum in Adam, momentum decay schedule), one
fused kernel call per parameter (kernels.nadam_step)."""

from __future__ import annotations

import numpy as np

from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common


def nadam_hyper(state, *, lr, beta1, beta2, eps, weight_decay, momentum_decay,
                decoupled_weight_decay, maximize) -> dict:
    """This step's kernels.NADAM_SLOTS: the mu schedule's coefficients of g and of the momentum;
    advances state["mu_product"], the running product of the mu's."""
    step = state["step"]
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    # torch keeps this product in a float32 scalar tensor (its default dtype): so does this
    mu_product = state["mu_product"] = float(np.float32(state["mu_product"]) * np.float32(mu))
    mu_product_next = mu_product * mu_next
    return {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "decoupled": decoupled_weight_decay, "bias_correction2": 1 - beta2**step,
            "grad_coef": -lr * (1.0 - mu) / (1.0 - mu_product),
            "avg_coef": (-lr * mu_next) / (1.0 - mu_product_next), "maximize": maximize}


class NAdam(Optimizer):
    """Adam whose step mixes the current gradient and the momentum with the coefficients
    mu_t = b1 (1 - 0.5 * 0.96**(t momentum_decay)) (Dozat); decoupled_weight_decay as AdamW."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.nadam_step
    kernel_slots = kernels.NADAM_SLOTS
    hyper = staticmethod(nadam_hyper)
    state_buffers = ("exp_avg", "exp_avg_sq")
    scalar_state = {"mu_product": 1.0}
    update_options = (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "momentum_decay",
        "decoupled_weight_decay",
        "maximize",
    )

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        _check_common(
            lr=lr,
            eps=eps,
            betas=betas,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            differentiable=differentiable,
        )
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)
