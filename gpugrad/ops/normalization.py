"""Normalization: layer_norm, batch_norm (with the running statistics update) and normalize,
as compositions of mean, var and elementwise ops, so their gradients (and jvp, double backward)
come from those ops' rules."""

from __future__ import annotations

from gpugrad.autograd.mode import no_grad
from gpugrad.ops import elementwise as E
from gpugrad.ops import reduce as R
from gpugrad.ops import shape as S
from gpugrad.ops._operands import normalize_dim
from gpugrad.tensor import Tensor


def layer_norm(
    input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5
) -> Tensor:  # noqa: A002
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) dims
    (biased variance, as torch)."""
    _floating_input("layer_norm", input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k :]) != shape:
        raise RuntimeError(
            f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape [*, "
            f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(
                f"layer_norm: {name} of shape {tuple(t.shape)} does not match "
                f"normalized_shape {shape}"
            )
    dims = tuple(range(input.ndim - k, input.ndim))
    centered = input - R.mean(input, dims, keepdim=True)
    var = R.mean(centered * centered, dims, keepdim=True)
    out = centered * E.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    return out + bias if bias is not None else out


def batch_norm(
    input: Tensor,
    running_mean,
    running_var,
    weight=None,
    bias=None,  # noqa: A002
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalize each channel (dim 1) of an (N, C, ...) input by the batch's statistics while
    training (updating running_mean / running_var in place: running = (1 - momentum) running
    + momentum batch, the variance unbiased), else by the running statistics."""
    _floating_input("batch_norm", input)
    if input.ndim < 2:
        raise ValueError(
            "batch_norm: expected an input of at least 2 dims (N, C, ...), "
            f"got {tuple(input.shape)}"
        )
    channels = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and t.numel() != channels:
            raise RuntimeError(
                f"batch_norm: {name} should contain {channels} elements not {t.numel()}"
            )
        if t is not None and name.startswith("running") and t.ndim != 1:
            raise RuntimeError(f"batch_norm: {name} must be 1-D, got shape {tuple(t.shape)}")
    # as torch, weight and bias may have any shape holding one value per channel
    weight = None if weight is None else S.reshape(weight, channels)
    bias = None if bias is None else S.reshape(bias, channels)
    dims = (0, *range(2, input.ndim))
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // channels if channels else 0
        if count <= 1:
            raise ValueError(
                "batch_norm: Expected more than 1 value per channel when training, got input size "
                f"{tuple(input.shape)}"
            )
        mean = R.mean(input, dims, keepdim=True)
        centered = input - mean
        var = R.mean(centered * centered, dims, keepdim=True)
        mean, var = S.reshape(mean, channels), S.reshape(var, channels)
        if running_mean is not None or running_var is not None:
            with no_grad():
                if running_mean is not None:
                    _blend(running_mean, mean.detach(), momentum)
                if running_var is not None:
                    _blend(running_var, var.detach() * (count / (count - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(
                "batch_norm: running_mean and running_var are needed when not training"
            )
        mean, var = running_mean, running_var
    # torch's kernel: y = x * scale + shift per channel, scale = w / sqrt(var + eps) and
    # shift = b - mean * scale (so an infinite weight gives NaN, as there)
    scale = E.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = (0.0 if bias is None else bias) - mean * scale
    return input * S.reshape(scale, shape) + S.reshape(shift, shape)


def _blend(running: Tensor, batch: Tensor, momentum: float) -> None:
    """running = momentum * batch + (1 - momentum) * running, in place (torch's order)."""
    updated = batch.to(running.dtype) * momentum + running * (1 - momentum)
    running.copy_(updated)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """input / max(||input||_p over dim, eps)."""
    _floating_input("normalize", input)
    # the dim checked here to name this op, not norm; None (torch takes it) is all of them
    d = None if dim is None else normalize_dim("normalize", dim, input.ndim)
    empty = not input.array.size if d is None else input.ndim and not input.shape[d]
    if p in (float("inf"), float("-inf")) and empty:
        raise IndexError(f"normalize: the {p}-norm over dim {dim} of size zero is undefined")
    return input / E.clamp(R.norm(input, p, dim, keepdim=True), min=eps)


def _floating_input(name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "f":  # torch has no kernel for integer inputs
        raise TypeError(f"{name}: expected a floating point input, got {x.dtype}")
