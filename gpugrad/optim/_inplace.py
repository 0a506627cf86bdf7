"""In-place array updates in torch's order of operations (its CPU kernels' arithmetic), so that
an optimizer written with them follows torch.optim's single-tensor path number for number."""

from __future__ import annotations


def lerp_(start, end, weight: float) -> None:
    """start += weight (end - start), torch's lerp (from the end when weight >= 0.5)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def addcmul_(out, t1, t2, value: float = 1.0) -> None:
    """out += value * t1 * t2."""
    out += value * t1 * t2


def addcdiv_(out, t1, t2, value: float = 1.0) -> None:
    """out += value * t1 / t2."""
    out += value * t1 / t2


def with_weight_decay(grad, param, weight_decay: float):
    """grad + weight_decay * param (a new array), or grad itself when weight_decay is 0."""
    return grad + weight_decay * param if weight_decay != 0 else grad


def weight_decay_(param, grad, lr: float, weight_decay: float, decoupled: bool):
    """The gradient to use after weight decay: decoupled (AdamW's way) shrinks param in place
    by 1 - lr * weight_decay and keeps grad; otherwise weight_decay * param joins grad."""
    if weight_decay != 0 and decoupled:
        param *= 1 - lr * weight_decay
        return grad
    return with_weight_decay(grad, param, weight_decay)
