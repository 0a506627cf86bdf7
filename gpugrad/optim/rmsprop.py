"""RMSprop: torch.optim.RMSprop's update (centered, momentum, weight decay, maximize), one fused
kernel call per parameter (kernels.rmsprop_step)."""

from __future__ import annotations

from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common, _state_buffer


def rmsprop_hyper(state, *, lr, alpha, eps, weight_decay, momentum, maximize) -> dict:
    """This step's kernels.RMSPROP_SLOTS (RMSprop has no step-dependent scalar)."""
    return {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
            "momentum": momentum, "maximize": maximize}


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g²; centered: g_avg = lerp(g_avg, g, 1 - alpha) and
    v - g_avg² in the root; with momentum b = momentum b + g / (sqrt(v) + eps), p -= lr b,
    else p -= lr g / (sqrt(v) + eps)."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.rmsprop_step
    kernel_slots = kernels.RMSPROP_SLOTS
    hyper = staticmethod(rmsprop_hyper)
    state_buffers = ("square_avg", "grad_avg", "momentum_buffer")
    update_options = ("lr", "alpha", "eps", "weight_decay", "momentum", "maximize")

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

    def kernel_buffers(self, group, state) -> list:
        """grad_avg only when centered, momentum_buffer only with momentum (now: the options
        may have changed since the state was made)."""
        square_avg, grad_avg, momentum_buffer = super().kernel_buffers(group, state)
        for name, wanted, buffer in (("grad_avg", group["centered"], grad_avg),
                                     ("momentum_buffer", group["momentum"] > 0, momentum_buffer)):
            if wanted and buffer is None:  # switched on after the state was made: as torch
                raise KeyError(name)
        return [square_avg, grad_avg if group["centered"] else None,
                momentum_buffer if group["momentum"] > 0 else None]
