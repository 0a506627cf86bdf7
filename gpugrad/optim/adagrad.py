"""Adagrad: torch.optim.Adagrad's update (lr_decay, initial_accumulator_value, weight decay), one
fused kernel call per parameter (kernels.adagrad_step)."""

from __future__ import annotations

from gpugrad import backend
from gpugrad.backend import kernels
from gpugrad.optim.optimizer import Optimizer, _check_common
from gpugrad.tensor import Tensor


def adagrad_hyper(state, *, lr, lr_decay, eps, weight_decay, maximize) -> dict:
    """This step's kernels.ADAGRAD_SLOTS: the decayed rate clr = lr / (1 + (t - 1) lr_decay)."""
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    return {"clr": clr, "eps": eps, "weight_decay": weight_decay, "maximize": maximize}


class Adagrad(Optimizer):
    """s += g²; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps); s starts at
    initial_accumulator_value (its state exists from construction, as torch's)."""

    capturable = True  # a CUDA graph can capture its step (replay.host_values)
    kernel = kernels.adagrad_step
    kernel_slots = kernels.ADAGRAD_SLOTS
    hyper = staticmethod(adagrad_hyper)
    state_buffers = ("sum",)
    update_options = ("lr", "lr_decay", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach=None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        _check_common(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            differentiable=differentiable,
        )
        if fused:
            raise ValueError(
                "Adagrad: fused=True is not supported (gpugrad fuses through its kernel table)"
            )
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(self.state[param], param, group)

    def _init_state(self, state, param, group) -> None:
        state["step"] = 0
        xp = backend.xp_of(param.array)
        with backend.device_guard(param.array):
            state["sum"] = Tensor._make(
                xp.full_like(param.array, self.defaults["initial_accumulator_value"])
            )
