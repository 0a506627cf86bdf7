"""gg.linalg: the vector norms of torch.linalg (matrix norms beyond Frobenius are not here)."""

from __future__ import annotations

from gpugrad.ops.reduce import norm as _norm
from gpugrad.tensor import Tensor

__all__ = ["norm", "vector_norm"]


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The ord-norm of x over dim (all elements when None), x seen as a vector."""
    return _norm(x, ord, dim, keepdim, dtype)


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The 2-norm of the flattened A (ord None), a vector ord-norm over one dim, or the
    Frobenius norm ('fro') over two."""
    if ord is None or ord == "fro":
        return _norm(A, 2, dim, keepdim, dtype)
    if (
        isinstance(ord, str)
        or (dim is not None and not isinstance(dim, int))
        or (dim is None and A.ndim != 1)
    ):
        raise NotImplementedError(
            f"linalg.norm: ord={ord!r} over a matrix is not supported (only vector norms and 'fro')"
        )
    return _norm(A, ord, dim, keepdim, dtype)
