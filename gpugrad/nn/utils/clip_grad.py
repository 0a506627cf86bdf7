"""Gradient clipping in place, with torch.nn.utils' arithmetic: the total norm is the norm of
the per-tensor norms, and every gradient is scaled by min(max_norm / (total + 1e-6), 1)."""

from __future__ import annotations

import types
import warnings

from gpugrad.autograd.mode import no_grad
from gpugrad.ops import reduce as R
from gpugrad.ops import shape as S
from gpugrad.tensor import Tensor


def _as_list(name: str, tensors) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    generator = isinstance(tensors, types.GeneratorType)
    tensors = list(tensors)
    if generator and not tensors:
        warnings.warn(
            f"`{name}` is an empty generator, no gradient clipping will occur.", stacklevel=3
        )
    return tensors


def _grads(parameters) -> list[Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def get_total_norm(
    tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """The norm_type-norm of all the tensors together (the norm of their norms)."""
    from gpugrad import creation

    tensors = _as_list("tensors", tensors)
    norm_type = float(norm_type)
    if not tensors:
        return creation.tensor(0.0)
    first = tensors[0]
    norms = [R.norm(t.to(first.dtype) if t.dtype != first.dtype else t, norm_type) for t in tensors]
    total = R.norm(S.stack([n.to(first.device) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(total.isfinite().item()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so "
            "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`"
        )
    return total


@no_grad()
def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale every .grad by min(max_norm / (total_norm + 1e-6), 1), in place."""
    from gpugrad.ops import elementwise as E

    grads = _grads(_as_list("parameters", parameters))
    max_norm = float(max_norm)
    if not grads:
        return
    coefficient = E.clamp(max_norm / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coefficient.to(g.device))


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Rescale the gradients of `parameters` in place so that their total norm_type-norm is at
    most max_norm; returns the total norm before clipping."""
    parameters = _as_list("parameters", parameters)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every .grad to [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for g in _grads(_as_list("parameters", parameters)):
        g.clamp_(min=-clip_value, max=clip_value)
