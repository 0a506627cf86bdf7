"""Adamax: torch.optim.Adamax's update (Adam with an infinity-norm second moment)."""

from __future__ import annotations

from gpugrad.optim._inplace import addcdiv_, lerp_, with_weight_decay
from gpugrad.optim.optimizer import Optimizer, _check_common


def adamax_update(
    param, grad, exp_avg, exp_inf, *, step: int, lr, beta1, beta2, eps, weight_decay, maximize, xp
) -> None:
    """One Adamax step of one parameter (step counts this one), in place."""
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    lerp_(exp_avg, grad, 1 - beta1)
    exp_inf *= beta2
    norm = xp.abs(grad)
    norm += eps
    xp.maximum(exp_inf, norm, out=exp_inf)
    clr = lr / (1 - beta1**step)
    addcdiv_(param, exp_avg, exp_inf, -clr)


class Adamax(Optimizer):
    """m = lerp(m, g, 1 - b1); u = max(b2 u, |g| + eps); p -= lr / (1 - b1**t) * m / u."""

    update = staticmethod(adamax_update)
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
