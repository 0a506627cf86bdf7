"""RAdam: torch.optim.RAdam's update (Adam with the variance rectification of Liu et al.)."""

from __future__ import annotations

from gpugrad.optim._inplace import addcmul_, lerp_, weight_decay_
from gpugrad.optim.optimizer import Optimizer, _check_common


def radam_update(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    step: int,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay,
    maximize,
    xp,
) -> None:
    """One RAdam step of one parameter (step counts this one), in place."""
    grad = -grad if maximize else grad
    grad = weight_decay_(param, grad, lr, weight_decay, decoupled_weight_decay)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    addcmul_(exp_avg_sq, grad, grad, 1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    corrected = exp_avg / bias_correction1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:  # the variance is tractable: the rectified adaptive step
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
        root = xp.sqrt(exp_avg_sq)
        root += eps
        param += -1.0 * (corrected * lr * ((bias_correction2**0.5) / root) * rect)
    else:  # early steps: plain momentum SGD
        param += -1.0 * (corrected * lr)


class RAdam(Optimizer):
    """Adam whose adaptive term is switched on (and rectified) only once the length of the
    approximated SMA, rho_t, exceeds 5; before that, an un-adapted momentum step."""

    update = staticmethod(radam_update)
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
