"""RMSprop: torch.optim.RMSprop's update (centered, momentum, weight decay, maximize)."""

from __future__ import annotations

from gpugrad.optim._inplace import addcdiv_, addcmul_, lerp_, with_weight_decay
from gpugrad.optim.optimizer import Optimizer, _check_common, _state_buffer


def rmsprop_update(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buffer,
    *,
    step,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
    xp,
) -> None:
    """One RMSprop step of one parameter, in place on the arrays (grad_avg: centered only;
    momentum_buffer: momentum > 0 only; step is not used: RMSprop has no bias correction)."""
    grad = -grad if maximize else grad
    grad = with_weight_decay(grad, param, weight_decay)
    square_avg *= alpha
    addcmul_(square_avg, grad, grad, 1 - alpha)
    if centered:
        lerp_(grad_avg, grad, 1 - alpha)
        avg = xp.sqrt(square_avg + -1 * grad_avg * grad_avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        addcdiv_(momentum_buffer, grad, avg)
        param += -lr * momentum_buffer
    else:
        addcdiv_(param, grad, avg, -lr)


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g²; centered: g_avg = lerp(g_avg, g, 1 - alpha) and
    v - g_avg² in the root; with momentum b = momentum b + g / (sqrt(v) + eps), p -= lr b,
    else p -= lr g / (sqrt(v) + eps)."""

    update = staticmethod(rmsprop_update)
    state_buffers = ("square_avg", "grad_avg", "momentum_buffer")
    update_options = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        _check_common(
            lr=lr,
            eps=eps,
            momentum=momentum,
            weight_decay=weight_decay,
            alpha=alpha,
            differentiable=differentiable,
        )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, state, param, group) -> None:
        """torch's: grad_avg only when centered, momentum_buffer only with momentum."""
        state["step"] = 0
        state["square_avg"] = _state_buffer(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _state_buffer(param)
        if group["centered"]:
            state["grad_avg"] = _state_buffer(param)
