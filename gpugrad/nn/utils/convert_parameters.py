"""All parameters as one flat vector, and back."""

from __future__ import annotations

from gpugrad.ops import shape as S
from gpugrad.tensor import Tensor


def _same_device(param: Tensor, device):
    if device is not None and param.device != device:
        raise TypeError(
            "Found two parameters on different devices, this is currently not supported."
        )
    return param.device


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated, in order (differentiable)."""
    device, pieces = None, []
    for param in parameters:
        device = _same_device(param, device)
        pieces.append(S.reshape(param, -1))
    return S.cat(pieces)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Give each parameter, in order, the next numel() entries of vec as its data."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device, pointer = None, 0
    for param in parameters:
        device = _same_device(param, device)
        count = param.numel()
        if pointer + count > vec.numel():
            raise RuntimeError(
                f"vector_to_parameters: vec has {vec.numel()} elements, fewer than the "
                "parameters need"
            )
        param.data = S.reshape(vec[pointer : pointer + count], param.shape).data
        pointer += count
