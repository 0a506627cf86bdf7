"""RAdam: torch.optim.RAdam's update (Adam with the variance rectification of Liu et al.)."""

from __future__ import annotations

from gpugrad.optim._inplace import addcmul_, lerp_, with_weight_decay
from gpugrad.optim.optimizer import Optimizer, _check_common, _state_buffer


def radam_update(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    step: int,
    *,
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
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = with_weight_decay(grad, param, weight_decay)
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

    def _update(self, group, param, grad, state, xp) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = _state_buffer(param)
            state["exp_avg_sq"] = _state_buffer(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        radam_update(
            param.array,
            grad,
            state["exp_avg"].array,
            state["exp_avg_sq"].array,
            state["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
            xp=xp,
        )
