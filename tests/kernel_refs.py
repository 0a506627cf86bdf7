"""NumPy references of the fused kernels (float64 results), shared by the C++ kernel tests
(tests/test_native_kernels.py) and the CUDA kernel tests (tests/test_cuda.py)."""
from __future__ import annotations

import numpy as np


def sample(n: int, dtype, seed: int = 0, scale: float = 3.0) -> np.ndarray:
    """Normal samples with some exact zeros (the relu boundary)."""
    rng = np.random.default_rng(seed + n)
    x = rng.standard_normal(n) * scale
    x[::7] = 0.0
    return x.astype(dtype)


def sample_special(n: int, dtype, seed: int = 0) -> np.ndarray:
    """sample() with NaN, -0.0, +inf and -inf mixed in at strides that reach every mask word."""
    x = sample(n, dtype, seed)
    x[3::11] = np.nan
    x[5::13] = -0.0
    x[1::17] = np.inf
    x[2::19] = -np.inf
    return x


def relu_ref(x: np.ndarray) -> np.ndarray:
    """torch.relu: 0 where x < 0, else x itself (NaN stays NaN, -0.0 stays -0.0)."""
    return np.where(x < 0, np.zeros_like(x), x)


def relu_active_ref(x: np.ndarray) -> np.ndarray:
    """The relu mask bit: set unless x <= 0, so NaN passes the gradient as torch's
    threshold_backward does (x > 0 or NaN)."""
    return ~(x <= 0)


def sigmoid_ref(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def pack_mask_ref(active: np.ndarray) -> np.ndarray:
    """uint32 words, bit j of word w = active.ravel()[32 w + j], zero bits past the end."""
    words = (active.size + 31) // 32
    padded = np.zeros(words * 32, dtype=np.uint8)
    padded[: active.size] = active.ravel()
    return np.packbits(padded, bitorder="little").view("<u4")


def xent_ref(logits: np.ndarray, targets: np.ndarray):
    x = logits.astype(np.float64)
    row_max = x.max(axis=1, keepdims=True)
    lse = (row_max + np.log(np.exp(x - row_max).sum(axis=1, keepdims=True)))[:, 0]
    loss = lse - x[np.arange(x.shape[0]), targets]
    return loss, lse


def sgd_ref(p, grads, lr, momentum, dampening, nesterov, weight_decay):
    """torch.optim.SGD's update, in float64."""
    p = p.astype(np.float64)
    buf = None
    for g in grads:
        d = g.astype(np.float64) + weight_decay * p
        if momentum != 0:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p, buf


def adam_ref(p, grads, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad=False):
    """torch.optim.Adam / AdamW's update, in float64 (amsgrad: v's running max divides)."""
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    for step, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        v_used = v_max if amsgrad else v
        p = p - lr * (m / (1 - beta1**step)) / (np.sqrt(v_used / (1 - beta2**step)) + eps)
    return p, m, v
