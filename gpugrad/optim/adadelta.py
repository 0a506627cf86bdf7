"""Adadelta: torch.optim.Adadelta's update."""

from __future__ import annotations

from gpugrad.optim._inplace import addcmul_, with_weight_decay
from gpugrad.optim.optimizer import Optimizer, _check_common


def adadelta_update(
    param, grad, square_avg, acc_delta, *, step, lr, rho, eps, weight_decay, maximize, xp
) -> None:
    """One Adadelta step of one parameter, in place (step is not used)."""
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    square_avg *= rho
    addcmul_(square_avg, grad, grad, 1 - rho)
    std = xp.sqrt(square_avg + eps)
    delta = xp.sqrt(acc_delta + eps)
    delta /= std
    delta *= grad
    acc_delta *= rho
    addcmul_(acc_delta, delta, delta, 1 - rho)
    param += -lr * delta


class Adadelta(Optimizer):
    """v = rho v + (1 - rho) g²; d = sqrt(u + eps) / sqrt(v + eps) * g;
    u = rho u + (1 - rho) d²; p -= lr d."""

    update = staticmethod(adadelta_update)
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
