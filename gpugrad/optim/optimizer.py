"""Optimizer: parameter groups with per-group options, per-parameter state, and state_dict /
load_state_dict in torch.optim's layout, so checkpoints read the same way."""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from gpugrad import backend, replay
from gpugrad.autograd.mode import enable_grad, no_grad
from gpugrad.backend import kernels
from gpugrad.tensor import Tensor


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Holds param_groups (each a dict with 'params' and the options) and `state[param]`.
    Subclasses implement step(), or declare their per-parameter update for the generic one:
    `kernel`, a fused step of gpugrad.backend.kernels called as kernel(param, grad, *buffers,
    hyper) (in place; it falls back to its array reference where it has no native form), its
    `kernel_slots` (kernels.RMSPROP_SLOTS, ...) and `hyper(state, **options)`, the host side of
    a step: the values of those slots by name, step-dependent scalars included (state["step"]
    already counts this step; it may update the scalar state). `state_buffers` names the zero arrays it keeps per parameter, in the
    kernel's order (`kernel_buffers` may pass None for one its options switch off),
    `scalar_state` the Python numbers (with their starting values), `update_options` the group
    options `hyper` reads at every step (so a scheduler's new lr applies at once; betas are
    passed as beta1, beta2). The kernel reads `hyper` from memory, so its step can be captured
    in a CUDA graph: such an optimizer sets `capturable = True`."""

    kernel = None
    kernel_slots: tuple = ()
    hyper = None
    state_buffers: tuple = ()
    scalar_state: dict = {}
    update_options: tuple = ()

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                "params argument given to the optimizer "
                "should be an ordered iterable (a set is not)"
            )
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing options take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections (a set is not)"
            )
        params = list(params)
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but "
                    f"one of the params is {type(param).__name__}"
                )
            if not param.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer: a parameter appears twice in one parameter group")
        group = {**param_group, "params": params}
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    "parameter group didn't specify a value of "
                    f"required optimization parameter {name}"
                )
            group.setdefault(name, default)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's .grad (or zero it in place with set_to_none=False)."""
        from gpugrad.nn.modules import _zero_grad

        for group in self.param_groups:
            for param in group["params"]:
                _zero_grad(param, set_to_none)

    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter that has a .grad; returns closure() if given."""
        loss = self._closure_loss(closure)
        with no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    with backend.device_guard(param.array):
                        self._update(
                            group,
                            param,
                            param.grad.array,
                            self.state[param],
                            backend.xp_of(param.array),
                        )
                    param._bump_version()
        return loss

    def _init_state(self, state: dict, param: Tensor, group: dict) -> None:
        state["step"] = 0
        state.update(self.scalar_state)
        for name in self.state_buffers:
            state[name] = _state_buffer(param)

    def _update(self, group: dict, param: Tensor, grad, state: dict, xp) -> None:
        if self.kernel is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither step() nor kernel")
        if not state:
            self._init_state(state, param, group)
        array = param.array
        next_hyper = functools.partial(self._next_hyper, group, state)
        if array.dtype.kind == "f" and array.dtype.itemsize >= 4 and array.flags.c_contiguous:
            # read when the kernel is about to run: now, or before each launch of a CUDA graph
            # that captured this step (which advances the step count then)
            hyper = replay.host_values(next_hyper, len(self.kernel_slots))
        else:  # the kernel's array reference runs, reading the hyperparameters as numbers
            if replay.state.gpu is not None:
                raise replay.CaptureError(
                    f"capture: {type(self).__name__} has no fused kernel for a {array.dtype} "
                    "or strided parameter, and its array update reads the hyperparameters as "
                    "Python numbers, which a CUDA graph would freeze; capture it on the CPU")
            hyper = next_hyper()
        self.kernel(array, grad, *self.kernel_buffers(group, state), hyper)

    def _next_hyper(self, group: dict, state: dict):
        """One more step: the count advances and the kernel's hyperparameters for it."""
        state["step"] += 1
        options = {}
        for name in self.update_options:
            if name == "betas":
                options["beta1"], options["beta2"] = group["betas"]
            else:
                options[name] = group[name]
        return kernels.hyper_array(self.kernel_slots, **self.hyper(state, **options))

    def kernel_buffers(self, group: dict, state: dict) -> list:
        """The state arrays the kernel takes after param and grad (None where there is none)."""
        return [None if state.get(n) is None else state[n].array for n in self.state_buffers]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _recorded_step(cls.__dict__["step"])

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ---- state_dict ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {...}}, 'param_groups': [{options..., 'params': [indices]}]}: params
        are numbered over all groups in order; state tensors are copies."""
        index_of, groups = {}, []
        for group in self.param_groups:
            indices = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                indices.append(index_of[id(param)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": indices})
        state = {}
        for group in self.param_groups:
            for param in group["params"]:
                if self.state.get(param):
                    state[index_of[id(param)]] = {
                        key: _copy_value(value) for key, value in self.state[param].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and per-parameter state (cast to each parameter's device and dtype);
        the structure is checked first, and nothing changes when it does not match."""
        if (
            not isinstance(state_dict, dict)
            or "param_groups" not in state_dict
            or "state" not in state_dict
        ):
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                "loaded state dict has a different number "
                f"of parameter groups ({len(saved_groups)}) "
                f"than the optimizer ({len(self.param_groups)})"
            )
        param_of = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size of "
                    f"optimizer's group: group {i} has "
                    f"{len(saved['params'])} params in the state dict, "
                    f"{len(group['params'])} in the optimizer"
                )
            for index, param in zip(saved["params"], group["params"]):
                param_of[index] = param
        new_state = defaultdict(dict)
        for index, entry in state_dict["state"].items():
            key = int(index)  # JSON-like round trips may turn keys into strings
            if key not in param_of:
                raise ValueError(
                    f"optimizer state_dict has state for param {index}, which no group lists"
                )
            param = param_of[key]
            new_state[param] = {
                name: self._cast_state(param, name, value) for name, value in entry.items()
            }
        # saved options win; an option the checkpoint lacks (an older or a torch one) stays
        new_groups = [
            {
                **group,
                **{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"},
                "params": group["params"],
            }
            for group, saved in zip(self.param_groups, saved_groups)
        ]
        self.state, self.param_groups = new_state, new_groups

    def _cast_state(self, param: Tensor, name: str, value):
        """A state value as this optimizer keeps it: tensors as copies on the param's device
        (floating ones in its dtype), `step` as an int."""
        if name == "step":
            return int(float(value))
        if name in self.scalar_state:
            return float(value)
        if isinstance(value, Tensor):
            array = backend.to_device(value.array, param.device)
        elif value is not None and hasattr(value, "shape") and hasattr(value, "dtype"):
            from gpugrad.nn.modules import _source_array

            array = backend.to_device(_source_array(name, value), param.device)
        else:
            return copy.deepcopy(value)
        if tuple(array.shape) != tuple(param.shape):
            raise ValueError(
                f"optimizer state '{name}' has shape {tuple(array.shape)} "
                f"but its parameter has shape {tuple(param.shape)}"
            )
        with backend.device_guard(array):  # CuPy copies onto the current GPU, not array's
            if array.dtype.kind == "f":
                array = array.astype(param.array.dtype, copy=False)
            return Tensor._make(array.copy())

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(
                f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"
            )
        lines.append(")")
        return "\n".join(lines)


_OPTION_RANGES = {  # option -> (low, high, inclusive high), torch's checks and words
    "lr": (0.0, None, "Invalid learning rate"),
    "eps": (0.0, None, "Invalid epsilon value"),
    "momentum": (0.0, None, "Invalid momentum value"),
    "weight_decay": (0.0, None, "Invalid weight_decay value"),
    "alpha": (0.0, None, "Invalid alpha value"),
    "rho": (0.0, 1.0, "Invalid rho value"),
    "lr_decay": (0.0, None, "Invalid lr_decay value"),
    "initial_accumulator_value": (0.0, None, "Invalid initial_accumulator_value value"),
    "momentum_decay": (0.0, None, "Invalid momentum_decay value"),
}


def _check_common(differentiable: bool = False, betas=None, **options) -> None:
    """ValueError / TypeError naming the option, as torch.optim's constructors raise them."""
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        low, high, words = _OPTION_RANGES[name]
        if not (low <= value and (high is None or value <= high)):
            raise ValueError(f"{words}: {value}")
    if betas is not None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    if differentiable:
        raise ValueError(
            "differentiable=True is not supported: gpugrad's optimizers update in place"
        )


def _recorded_step(step):
    """An optimizer's step() as one capture op: a captured training step (gg.capture) runs the
    whole update again at each replay, reading the learning rate and advancing its state then."""

    @functools.wraps(step)
    def run(self, closure=None):
        if replay.state.gpu is not None and not getattr(self, "capturable", False):
            raise replay.CaptureError(
                f"capture: {type(self).__name__}'s update reads its hyperparameters as Python "
                "numbers, which a CUDA graph would freeze; capture this step on the CPU, or use "
                "one of gg.optim's optimizers (their fused kernels read them from device "
                "memory)")
        if closure is None:
            return replay.op(step, self)
        return step(self, closure)

    return run


def _copy_value(value):
    if isinstance(value, Tensor):
        with backend.device_guard(value.array):
            return Tensor._make(value.array.copy())
    return copy.deepcopy(value)


def _state_buffer(param: Tensor) -> Tensor:
    """A zero tensor shaped, typed and placed like param (optimizer state)."""
    xp = backend.xp_of(param.array)
    with backend.device_guard(param.array):  # cupy.zeros_like allocates on the current GPU
        return Tensor._make(xp.zeros_like(param.array))


Optimizer.step = _recorded_step(Optimizer.step)  # the base step too (the table-driven optimizers)
