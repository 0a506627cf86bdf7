"""NAdam: torch.optim.NAdam's update (Nesterov momentum in Adam, momentum decay schedule)."""

from __future__ import annotations

import numpy as np

from gpugrad.optim._inplace import addcdiv_, addcmul_, lerp_, weight_decay_
from gpugrad.optim.optimizer import Optimizer, _check_common


def nadam_update(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    step: int,
    mu_product: float,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    momentum_decay,
    decoupled_weight_decay,
    maximize,
    xp,
) -> dict:
    """One NAdam step of one parameter (step counts this one), in place; returns the new
    product of the momentum coefficients, {"mu_product": ...}."""
    grad = -grad if maximize else grad
    bias_correction2 = 1 - beta2**step
    grad = weight_decay_(param, grad, lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    # torch keeps this product in a float32 scalar tensor (its default dtype): so does this
    mu_product = float(np.float32(mu_product) * np.float32(mu))
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    denom = xp.sqrt(exp_avg_sq / bias_correction2)
    mu_product_next = mu_product * mu_next
    denom += eps
    addcdiv_(param, grad, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
    addcdiv_(param, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_product_next))
    return {"mu_product": mu_product}


class NAdam(Optimizer):
    """Adam whose step mixes the current gradient and the momentum with the coefficients
    mu_t = b1 (1 - 0.5 * 0.96**(t momentum_decay)) (Dozat); decoupled_weight_decay as AdamW."""

    update = staticmethod(nadam_update)
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
