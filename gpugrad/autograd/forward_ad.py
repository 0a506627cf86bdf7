"""Forward-mode AD with PyTorch's API: inside dual_level(), make_dual attaches a tangent to a
tensor and every op pushes tangents forward through its jvp rule."""
from __future__ import annotations

import weakref
from collections import namedtuple

from gpugrad.autograd import mode
from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import xp_of
from gpugrad.tensor import Tensor

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])
_levels: list = []  # per open level: weak references to the tensors that got a tangent


class dual_level:
    """Context manager: tangents made inside live until it exits."""

    def __enter__(self):
        mode.state.fw_level += 1
        _levels.append([])
        return len(_levels) - 1

    def __exit__(self, *exc):
        for ref in _levels.pop():
            t = ref()
            if t is not None:
                t._tangent = None
        mode.state.fw_level -= 1
        return False


def enter_dual_level():
    return dual_level().__enter__()


def exit_dual_level(level=None):
    dual_level().__exit__(None, None, None)


def zeros_array_like(array):
    return xp_of(array).zeros_like(array)


def attach_tangent(t: Tensor, tangent: Tensor):
    t._tangent = tangent
    t._tangent_level = mode.state.fw_level
    if _levels:
        _levels[-1].append(weakref.ref(t))


class _Alias(ArrayFunction):
    """A new tensor object for the same data and graph position (backward passes through)."""

    is_view = True

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g

    @staticmethod
    def jvp(ctx, t):
        return t


def _alias(t: Tensor) -> Tensor:
    """A new tensor object on t's data whose gradient flows back to t (without t's tangent)."""
    state = mode.state
    state.fw_suspended += 1
    try:
        return _Alias.apply(t)
    finally:
        state.fw_suspended -= 1


def make_dual(tensor: Tensor, tangent: Tensor, *, level=None) -> Tensor:
    """A view of tensor carrying `tangent` as its forward-mode derivative."""
    if mode.state.fw_level == 0:
        raise RuntimeError("make_dual: call it inside gg.autograd.forward_ad.dual_level()")
    if not isinstance(tangent, Tensor):
        raise TypeError("make_dual: tangent must be a Tensor")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise ValueError(
            f"make_dual: tangent of shape {tuple(tangent.shape)} does not match primal {tuple(tensor.shape)}"
        )
    if tensor.array.dtype.kind != "f":
        raise ValueError(f"make_dual: primal must be floating point, got {tensor.dtype}")
    if tangent.array.dtype != tensor.array.dtype:
        tangent = tangent.to(tensor.dtype)
    dual = _alias(tensor)
    attach_tangent(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor, *, level=None) -> UnpackedDualTensor:
    """(primal view without tangent, tangent or None)."""
    tangent = tensor._tangent if mode.state.fw_level > 0 else None
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(_alias(tensor), tangent)
