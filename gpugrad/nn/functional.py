"""gg.nn.functional: activations and losses under PyTorch's names."""
import numpy as np

from gpugrad import backend, replay
from gpugrad.ops.activation import gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus, tanh
from gpugrad.ops.linalg import linear, linear_act
from gpugrad.ops.loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss,
    multi_margin_loss, nll_loss,
)
from gpugrad.ops.activation import elu, hardtanh, logsigmoid, mish, prelu, relu6
from gpugrad.ops.activation import (
    celu, celu_, glu, hardshrink, hardsigmoid, hardswish, selu, selu_, softmin, softshrink,
    softsign, tanhshrink, threshold, threshold_,
)
from gpugrad.ops.loss import huber_loss, kl_div, smooth_l1_loss
from gpugrad.ops.normalization import batch_norm, layer_norm, normalize
from gpugrad.ops.sparse import embedding, one_hot

__all__ = [
    "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softplus", "silu", "softmax", "log_softmax",
    "linear", "linear_act", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "multi_margin_loss", "dropout",
    "elu", "hardtanh", "logsigmoid", "mish", "prelu", "relu6", "huber_loss", "kl_div",
    "smooth_l1_loss", "batch_norm", "layer_norm", "normalize", "embedding", "one_hot",
    "celu", "celu_", "glu", "hardshrink", "hardsigmoid", "hardswish", "selu", "selu_", "softmin",
    "softshrink", "softsign", "tanhshrink", "threshold", "threshold_",
]


def dropout(x, p: float = 0.5, training: bool = True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training only)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    from gpugrad.tensor import Tensor

    # drawn on x's device by a kernel, fresh at every call and every replay of a captured step
    scale = replay.op(_dropout_scale, x.shape, x.array.dtype, x.device, float(p))
    return x * Tensor._make(scale)


def _dropout_scale(shape, dtype, device, p):
    from gpugrad import creation
    from gpugrad.backend import kernels

    with backend.on_device(device):
        out = backend.xp_for(device).empty(shape, dtype=dtype)
        size = out.size
        rng = replay.host_values(lambda: np.array([*creation.dropout_stream(size), p]), 3)
        kernels.dropout_scale(out, rng)
    return out