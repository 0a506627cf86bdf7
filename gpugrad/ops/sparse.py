"""Lookups by integer index: embedding (rows of a weight matrix; the gradient scatter-adds into
the rows used) and one_hot."""

from __future__ import annotations

import numpy as np

from gpugrad.autograd.function import ArrayFunction
from gpugrad.backend import device_guard, xp_of
from gpugrad.ops import elementwise as E
from gpugrad.ops import shape as S
from gpugrad.ops._operands import same_device
from gpugrad.tensor import Tensor


def _check_indices(name: str, index: Tensor, size: int, what: str) -> None:
    if not isinstance(index, Tensor) or index.array.dtype.kind not in "iu":
        got = index.dtype if isinstance(index, Tensor) else type(index).__name__
        raise TypeError(f"{name}: {what} must be an integer tensor (Long or Int), got {got}")
    if index.array.size and bool(((index.array < 0) | (index.array >= size)).any()):
        raise IndexError(f"{name}: index out of range in self ({what} must lie in [0, {size}))")


class EmbeddingPadded(ArrayFunction):
    """weight[index] where the row at padding_idx gets no gradient; its tangent still flows
    forward, as torch's (embedding's jvp is itself, unmasked)."""

    @staticmethod
    def forward(ctx, weight, index, pad):
        ctx.index, ctx.shape, ctx.pad = index, weight.shape, pad
        return weight[index]

    @staticmethod
    def backward(ctx, g):
        keep = Tensor._make((ctx.index != ctx.pad)[..., None])
        return S.IndexBackward.apply(E.where(keep, g, 0.0), ctx.index, ctx.shape), None, None

    @staticmethod
    def jvp(ctx, t, _index, _pad):
        return S.Index.apply(t, ctx.index)


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx=None,
    max_norm=None,
    norm_type: float = 2.0,  # noqa: A002
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """weight[input]: one row of the (num_embeddings, dim) weight per index; the row at
    padding_idx gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse gradients are not supported"
        )
    if weight.ndim != 2:  # torch: an IndexError for a 0-d weight (its size(0))
        kind = IndexError if weight.ndim == 0 else RuntimeError
        raise kind(f"embedding: weight must be 2-D, got shape {tuple(weight.shape)}")
    if padding_idx is not None and not -weight.shape[0] <= padding_idx < weight.shape[0]:
        raise ValueError(
            f"embedding: padding_idx {padding_idx} must be within the {weight.shape[0]} "
            "embeddings"
        )
    _check_indices("embedding", input, weight.shape[0], "input")
    same_device("embedding", weight, input)
    if padding_idx is None:
        return S.getitem(weight, input)
    pad = padding_idx + weight.shape[0] if padding_idx < 0 else padding_idx
    return EmbeddingPadded.apply(weight, input.array, int(pad))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """An int64 tensor of shape tensor.shape + (num_classes,) with a 1 at each index."""
    if not isinstance(tensor, Tensor) or tensor.array.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    with device_guard(tensor.array):
        xp = xp_of(tensor.array)
        if tensor.array.size and bool((tensor.array < 0).any()):
            raise RuntimeError("Class values must be non-negative.")
        if num_classes == -1:
            if not tensor.array.size:
                raise RuntimeError("Can not infer total number of classes from empty tensor.")
            num_classes = int(tensor.array.max()) + 1
        elif tensor.array.size and int(tensor.array.max()) >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
        out = xp.arange(num_classes) == tensor.array[..., None].astype(np.int64)
        return Tensor._make(out.astype(np.int64))
