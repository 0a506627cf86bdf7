"""Adamax: torch.optim.Adamax's update (Adam with an infinity-norm second moment)."""

from __future__ import annotations

from gpugrad.optim._inplace import addcdiv_, lerp_, with_weight_decay
from gpugrad.optim.optimizer import Optimizer, _check_common, _state_buffer


def adamax_update(
    param, grad, exp_avg, exp_inf, step: int, *, lr, beta1, beta2, eps, weight_decay, maximize, xp
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

    def _update(self, group, param, grad, state, xp) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = _state_buffer(param)
            state["exp_inf"] = _state_buffer(param)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adamax_update(
            param.array,
            grad,
            state["exp_avg"].array,
            state["exp_inf"].array,
            state["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
            xp=xp,
        )
