"""One table of every op. Each entry's `fn(m, *inputs)` runs with m = gpugrad or torch (the
same lambda serves both, so parity is one call); `ref` is a NumPy reference; `sample(rng)`
returns float64 / int64 NumPy inputs away from kinks. tests/test_ops.py drives forward,
gradcheck, jvp, gradgradcheck and torch-parity tests from it."""
from __future__ import annotations

from dataclasses import dataclass
from math import erf as _erf_scalar
from typing import Callable

import numpy as np


@dataclass
class OpInfo:
    name: str
    fn: Callable  # fn(m, *tensors) with m = gpugrad or torch
    sample: Callable  # sample(rng) -> list of np arrays (float64 inputs get requires_grad)
    ref: Callable | None = None  # ref(*np arrays) -> np array (or tuple)
    gradgrad: bool = True
    jvp: bool = True
    torch: bool = True
    nondiff: tuple = ()  # indices of float inputs that are constants (class weights, ...)
    # derivatives vs torch's: looser where torch's own formula rounds a constant to float32
    torch_rtol: float = 1e-9


def F(m):
    return m.nn.functional


def randn(rng, *shape):
    return rng.standard_normal(shape)


def away(rng, *shape, points=(0.0,), margin=0.15):
    """Normal samples pushed at least `margin` away from non-differentiable points."""
    x = rng.standard_normal(shape)
    for p in points:
        close = np.abs(x - p) < margin
        x = np.where(close, p + np.sign(x - p + 1e-12) * margin * 2, x)
    return x


def positive(rng, *shape, low=0.3):
    return rng.uniform(low, 2.0, shape)


def distinct(rng, *shape):
    """Values with no ties (max / min / sort pick a unique winner)."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.37 - 1.0 + rng.uniform(0, 0.05, shape)


def labels(rng, n, classes):
    return rng.integers(0, classes, size=n).astype(np.int64)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


_erf = np.vectorize(_erf_scalar)


def _softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def _ce(x, t, w=None):
    logp = _log_softmax(x, 1)
    rows = -logp[np.arange(len(t)), t]
    if w is None:
        return rows.mean()
    return (rows * w[t]).sum() / w[t].sum()


def _margin(x, t, p=1, margin=1.0):
    n, c = x.shape
    h = np.maximum(0, margin - x[np.arange(n), t][:, None] + x) ** p
    h[np.arange(n), t] = 0
    return (h.sum(1) / c).mean()


OPS: list[OpInfo] = [
    # ---- elementwise ---------------------------------------------------------------------
    OpInfo("add", lambda m, a, b: a + b, lambda r: [randn(r, 3, 4), randn(r, 4)], lambda a, b: a + b),
    OpInfo("add_scalar", lambda m, x: x + 2.5, lambda r: [randn(r, 3)], lambda x: x + 2.5),
    OpInfo("add_alpha", lambda m, a, b: m.add(a, b, alpha=2.0), lambda r: [randn(r, 3), randn(r, 3)], lambda a, b: a + 2 * b),
    OpInfo("sub", lambda m, a, b: a - b, lambda r: [randn(r, 3, 4), randn(r, 3, 1)], lambda a, b: a - b),
    OpInfo("rsub_scalar", lambda m, x: 2 - x, lambda r: [randn(r, 4)], lambda x: 2 - x),
    OpInfo("mul", lambda m, a, b: a * b, lambda r: [randn(r, 2, 3), randn(r, 2, 3)], lambda a, b: a * b),
    OpInfo("mul_broadcast", lambda m, a, b: a * b, lambda r: [randn(r, 2, 1, 3), randn(r, 4, 1)], lambda a, b: a * b),
    OpInfo("div", lambda m, a, b: a / b, lambda r: [randn(r, 2, 3), away(r, 2, 3, margin=0.4)], lambda a, b: a / b),
    OpInfo("rdiv_scalar", lambda m, x: 1.5 / x, lambda r: [away(r, 4, margin=0.4)], lambda x: 1.5 / x),
    OpInfo("neg", lambda m, x: -x, lambda r: [randn(r, 3)], lambda x: -x),
    OpInfo("pow_scalar", lambda m, x: x**3, lambda r: [randn(r, 4)], lambda x: x**3),
    OpInfo("pow_frac", lambda m, x: x**2.5, lambda r: [positive(r, 4)], lambda x: x**2.5),
    OpInfo("pow_tensor", lambda m, a, b: a**b, lambda r: [positive(r, 3), randn(r, 3)], lambda a, b: a**b),
    OpInfo("rpow", lambda m, x: 2.0**x, lambda r: [randn(r, 3)], lambda x: 2.0**x),
    OpInfo("exp", lambda m, x: m.exp(x), lambda r: [randn(r, 2, 3)], np.exp),
    OpInfo("log", lambda m, x: m.log(x), lambda r: [positive(r, 5)], np.log),
    OpInfo("log1p", lambda m, x: m.log1p(x), lambda r: [positive(r, 5) - 0.2], np.log1p),
    OpInfo("sqrt", lambda m, x: m.sqrt(x), lambda r: [positive(r, 5)], np.sqrt),
    OpInfo("abs", lambda m, x: m.abs(x), lambda r: [away(r, 6)], np.abs),
    OpInfo("sin", lambda m, x: m.sin(x), lambda r: [randn(r, 5)], np.sin),
    OpInfo("cos", lambda m, x: m.cos(x), lambda r: [randn(r, 5)], np.cos),
    OpInfo("erf", lambda m, x: m.erf(x), lambda r: [randn(r, 5)], _erf),
    OpInfo("maximum", lambda m, a, b: m.maximum(a, b), lambda r: [randn(r, 3, 2), randn(r, 3, 2) + 0.05], np.maximum),
    OpInfo("minimum", lambda m, a, b: m.minimum(a, b), lambda r: [randn(r, 3, 2), randn(r, 3, 2) + 0.05], np.minimum),
    OpInfo("clamp", lambda m, x: m.clamp(x, -0.5, 0.5), lambda r: [away(r, 8, points=(-0.5, 0.5), margin=0.1)],
           lambda x: np.clip(x, -0.5, 0.5)),
    OpInfo("clamp_min", lambda m, x: m.clamp(x, min=0.2), lambda r: [away(r, 6, points=(0.2,), margin=0.1)],
           lambda x: np.maximum(x, 0.2)),
    OpInfo("clamp_tensors", lambda m, x, lo, hi: m.clamp(x, lo, hi),
           lambda r: [away(r, 4, 3, points=(-0.5, 0.5)) * 1.5, r.uniform(-0.55, -0.45, (4, 3)),
                      r.uniform(0.45, 0.55, (4, 3))], np.clip),
    OpInfo("clamp_tensor_min", lambda m, x, lo: m.clamp(x, min=lo),
           lambda r: [away(r, 4, 3, points=(0.2,)), r.uniform(0.15, 0.25, 3)], np.maximum),
    OpInfo("clamp_tensor_max", lambda m, x, hi: x.clamp(max=hi),
           lambda r: [away(r, 5, points=(0.4,)), r.uniform(0.35, 0.45, 5)], np.minimum),
    OpInfo("where", lambda m, a, b: m.where(a > b, a, b * 2), lambda r: [randn(r, 3, 3), randn(r, 3, 3) + 0.05],
           lambda a, b: np.where(a > b, a, b * 2)),
    # ---- activations -------------------------------------------------------------------
    OpInfo("sigmoid", lambda m, x: m.sigmoid(x), lambda r: [randn(r, 3, 4) * 3], _sigmoid),
    OpInfo("tanh", lambda m, x: m.tanh(x), lambda r: [randn(r, 3, 4)], np.tanh),
    OpInfo("relu", lambda m, x: m.relu(x), lambda r: [away(r, 5, 7)], lambda x: np.maximum(x, 0)),
    # relu's gradient input depends on x here, so double backward runs ReluBackward's own rule
    OpInfo("relu_squared", lambda m, x: m.relu(x) ** 2, lambda r: [away(r, 6)], lambda x: np.maximum(x, 0) ** 2),
    OpInfo("leaky_relu", lambda m, x: F(m).leaky_relu(x, 0.1), lambda r: [away(r, 6)],
           lambda x: np.where(x > 0, x, 0.1 * x)),
    OpInfo("gelu", lambda m, x: F(m).gelu(x), lambda r: [randn(r, 6)], lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    OpInfo("gelu_tanh", lambda m, x: F(m).gelu(x, approximate="tanh"), lambda r: [randn(r, 6)],
           lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
    OpInfo("softplus", lambda m, x: F(m).softplus(x), lambda r: [randn(r, 6) * 3], _softplus),
    OpInfo("softplus_beta", lambda m, x: F(m).softplus(x, beta=2.0, threshold=5.0),
           lambda r: [away(r, 8, points=(2.5,)) * 2], lambda x: np.where(2 * x > 5, x, np.log1p(np.exp(2 * x)) / 2)),
    OpInfo("silu", lambda m, x: F(m).silu(x), lambda r: [randn(r, 6)], lambda x: x * _sigmoid(x)),
    OpInfo("softmax", lambda m, x: F(m).softmax(x, dim=1), lambda r: [randn(r, 3, 4)], lambda x: _softmax(x, 1)),
    OpInfo("log_softmax", lambda m, x: F(m).log_softmax(x, dim=-1), lambda r: [randn(r, 3, 4)], _log_softmax),
    # ---- reductions --------------------------------------------------------------------
    OpInfo("sum", lambda m, x: x.sum(), lambda r: [randn(r, 3, 4)], np.sum),
    OpInfo("sum_dim_keepdim", lambda m, x: x.sum(1, keepdim=True), lambda r: [randn(r, 3, 4)],
           lambda x: x.sum(1, keepdims=True)),
    OpInfo("sum_dims", lambda m, x: m.sum(x, (0, 2)), lambda r: [randn(r, 2, 3, 2)], lambda x: x.sum((0, 2))),
    OpInfo("mean", lambda m, x: x.mean(), lambda r: [randn(r, 3, 4)], np.mean),
    OpInfo("mean_dim", lambda m, x: x.mean(-1), lambda r: [randn(r, 3, 4)], lambda x: x.mean(-1)),
    OpInfo("max_all", lambda m, x: x.max(), lambda r: [distinct(r, 3, 4)], np.max),
    OpInfo("max_dim", lambda m, x: x.max(1)[0], lambda r: [distinct(r, 3, 4)], lambda x: x.max(1)),
    OpInfo("min_dim_keepdim", lambda m, x: m.min(x, 0, keepdim=True).values, lambda r: [distinct(r, 3, 4)],
           lambda x: x.min(0, keepdims=True)),
    OpInfo("amax", lambda m, x: m.amax(x, dim=1), lambda r: [distinct(r, 3, 4)], lambda x: x.max(1)),
    OpInfo("amin", lambda m, x: m.amin(x, dim=(0, 1)), lambda r: [distinct(r, 3, 4)], lambda x: x.min((0, 1))),
    OpInfo("logsumexp", lambda m, x: m.logsumexp(x, 1), lambda r: [randn(r, 3, 4) * 3],
           lambda x: np.log(np.exp(x).sum(1))),
    OpInfo("var", lambda m, x: x.var(1), lambda r: [randn(r, 3, 4)], lambda x: x.var(1, ddof=1)),
    OpInfo("var_all_biased", lambda m, x: m.var(x, unbiased=False), lambda r: [randn(r, 3, 4)], np.var),
    OpInfo("std", lambda m, x: x.std(0), lambda r: [randn(r, 4, 3)], lambda x: x.std(0, ddof=1)),
    # ---- shape -------------------------------------------------------------------------
    OpInfo("reshape", lambda m, x: x.reshape(4, -1), lambda r: [randn(r, 2, 6)], lambda x: x.reshape(4, -1)),
    OpInfo("view", lambda m, x: x.view(3, 2), lambda r: [randn(r, 6)], lambda x: x.reshape(3, 2)),
    OpInfo("transpose", lambda m, x: x.transpose(0, 2), lambda r: [randn(r, 2, 3, 4)], lambda x: x.transpose(2, 1, 0)),
    OpInfo("permute", lambda m, x: x.permute(1, 2, 0), lambda r: [randn(r, 2, 3, 4)], lambda x: x.transpose(1, 2, 0)),
    OpInfo("T", lambda m, x: x.T, lambda r: [randn(r, 2, 3)], lambda x: x.T),
    OpInfo("unsqueeze", lambda m, x: x.unsqueeze(1), lambda r: [randn(r, 2, 3)], lambda x: x[:, None]),
    OpInfo("squeeze", lambda m, x: x.squeeze(1), lambda r: [randn(r, 2, 1, 3)], lambda x: x[:, 0]),
    OpInfo("squeeze_all", lambda m, x: m.squeeze(x), lambda r: [randn(r, 1, 3, 1)], np.squeeze),
    OpInfo("expand", lambda m, x: x.expand(2, 3, 4), lambda r: [randn(r, 3, 1)],
           lambda x: np.broadcast_to(x, (2, 3, 4))),
    OpInfo("flatten", lambda m, x: m.flatten(x, 1), lambda r: [randn(r, 2, 3, 2)], lambda x: x.reshape(2, -1)),
    OpInfo("cat", lambda m, a, b: m.cat([a, b], 1), lambda r: [randn(r, 2, 3), randn(r, 2, 2)],
           lambda a, b: np.concatenate([a, b], 1)),
    OpInfo("stack", lambda m, a, b: m.stack([a, b], dim=-1), lambda r: [randn(r, 2, 3), randn(r, 2, 3)],
           lambda a, b: np.stack([a, b], -1)),
    OpInfo("index_basic", lambda m, x: x[1:, ::2], lambda r: [randn(r, 3, 4)], lambda x: x[1:, ::2]),
    OpInfo("index_int_none", lambda m, x: x[1, None, ..., -1], lambda r: [randn(r, 3, 4, 2)],
           lambda x: x[1, None, ..., -1]),
    OpInfo("index_array_repeated", lambda m, x, i: x[i], lambda r: [randn(r, 4, 2), np.array([0, 2, 0, 3])],
           lambda x, i: x[i]),
    OpInfo("index_mask", lambda m, x: x[x > 0], lambda r: [away(r, 3, 4)], lambda x: x[x > 0]),
    OpInfo("index_two_arrays", lambda m, x, i, j: x[i, j], lambda r: [randn(r, 3, 4), np.array([0, 2, 2]),
                                                                    np.array([1, 3, 1])], lambda x, i, j: x[i, j]),
    OpInfo("gather", lambda m, x, i: m.gather(x, 1, i), lambda r: [randn(r, 3, 4), np.array([[0, 3], [1, 1], [2, 0]])],
           lambda x, i: np.take_along_axis(x, i, 1)),
    OpInfo("index_put", lambda m, x, v: _index_put(m, x, v), lambda r: [randn(r, 3, 4), randn(r, 4)],
           lambda x, v: _np_index_put(x, v), torch=True),
    # ---- linear algebra ----------------------------------------------------------------
    OpInfo("matmul", lambda m, a, b: a @ b, lambda r: [randn(r, 3, 4), randn(r, 4, 2)], np.matmul),
    OpInfo("matmul_batched", lambda m, a, b: m.matmul(a, b), lambda r: [randn(r, 2, 3, 4), randn(r, 4, 2)], np.matmul),
    OpInfo("matmul_vec", lambda m, a, b: a @ b, lambda r: [randn(r, 3, 4), randn(r, 4)], np.matmul),
    OpInfo("matmul_vecvec", lambda m, a, b: a @ b, lambda r: [randn(r, 4), randn(r, 4)], np.matmul),
    OpInfo("linear", lambda m, x, w, b: F(m).linear(x, w, b), lambda r: [randn(r, 3, 4), randn(r, 2, 4), randn(r, 2)],
           lambda x, w, b: x @ w.T + b),
    OpInfo("linear_act_relu", lambda m, x, w, b: _linear_act(m, x, w, b, "relu"),
           lambda r: [randn(r, 3, 4), randn(r, 5, 4), away(r, 5, margin=0.5)],
           lambda x, w, b: np.maximum(x @ w.T + b, 0), gradgrad=True),
    OpInfo("linear_act_sigmoid", lambda m, x, w, b: _linear_act(m, x, w, b, "sigmoid"),
           lambda r: [randn(r, 3, 4), randn(r, 2, 4), randn(r, 2)], lambda x, w, b: _sigmoid(x @ w.T + b)),
    OpInfo("linear_act_tanh", lambda m, x, w, b: _linear_act(m, x, w, b, "tanh"),
           lambda r: [randn(r, 3, 4), randn(r, 2, 4), randn(r, 2)], lambda x, w, b: np.tanh(x @ w.T + b)),
    # ---- losses ------------------------------------------------------------------------
    OpInfo("cross_entropy", lambda m, x, t: F(m).cross_entropy(x, t), lambda r: [randn(r, 4, 5), labels(r, 4, 5)], _ce),
    OpInfo("cross_entropy_weight", lambda m, x, t, w: F(m).cross_entropy(x, t, weight=w),
           lambda r: [randn(r, 4, 3), labels(r, 4, 3), positive(r, 3)], _ce, nondiff=(2,)),
    OpInfo("cross_entropy_none", lambda m, x, t: F(m).cross_entropy(x, t, reduction="none"),
           lambda r: [randn(r, 4, 3), labels(r, 4, 3)],
           lambda x, t: -_log_softmax(x, 1)[np.arange(4), t]),
    OpInfo("cross_entropy_ignore", lambda m, x, t: F(m).cross_entropy(x, t, ignore_index=1, reduction="sum"),
           lambda r: [randn(r, 5, 3), np.array([0, 1, 2, 1, 0])],
           lambda x, t: -(_log_softmax(x, 1)[np.arange(5), t] * (t != 1)).sum()),
    OpInfo("cross_entropy_smoothing", lambda m, x, t: F(m).cross_entropy(x, t, label_smoothing=0.1),
           lambda r: [randn(r, 4, 3), labels(r, 4, 3)],
           lambda x, t: (0.9 * -_log_softmax(x, 1)[np.arange(4), t] - 0.1 * _log_softmax(x, 1).mean(1)).mean()),
    OpInfo("cross_entropy_probs", lambda m, x, p: F(m).cross_entropy(x, p),
           lambda r: [randn(r, 3, 4), _softmax(randn(r, 3, 4), 1)],
           lambda x, p: -(p * _log_softmax(x, 1)).sum(1).mean()),
    OpInfo("cross_entropy_nd", lambda m, x, t: F(m).cross_entropy(x, t),
           lambda r: [randn(r, 2, 3, 2), labels(r, 4, 3).reshape(2, 2)],
           lambda x, t: _ce(x.transpose(0, 2, 1).reshape(-1, 3), t.reshape(-1))),
    OpInfo("nll_loss", lambda m, x, t: F(m).nll_loss(x, t), lambda r: [randn(r, 4, 3), labels(r, 4, 3)],
           lambda x, t: -x[np.arange(4), t].mean()),
    OpInfo("mse_loss", lambda m, a, b: F(m).mse_loss(a, b), lambda r: [randn(r, 3, 2), randn(r, 3, 2)],
           lambda a, b: ((a - b) ** 2).mean()),
    OpInfo("l1_loss", lambda m, a, b: F(m).l1_loss(a, b, reduction="sum"), lambda r: [randn(r, 4), randn(r, 4) + 1.0],
           lambda a, b: np.abs(a - b).sum()),
    OpInfo("bce_with_logits", lambda m, x, y: F(m).binary_cross_entropy_with_logits(x, y),
           lambda r: [randn(r, 5) * 3, r.uniform(0, 1, 5)],
           lambda x, y: (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean()),
    OpInfo("bce_with_logits_pos_weight",
           lambda m, x, y, w: F(m).binary_cross_entropy_with_logits(x, y, pos_weight=w, reduction="sum"),
           lambda r: [randn(r, 2, 3), r.uniform(0, 1, (2, 3)), positive(r, 3)],
           lambda x, y, w: ((1 - y) * x + (1 + (w - 1) * y) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))).sum(),
           nondiff=(2,)),
    OpInfo("bce_with_logits_weight",
           lambda m, x, y, w: F(m).binary_cross_entropy_with_logits(x, y, weight=w, reduction="none"),
           lambda r: [randn(r, 2, 3) * 3, r.uniform(0, 1, (2, 3)), positive(r, 3)],
           lambda x, y, w: w * (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))), nondiff=(2,)),
    OpInfo("binary_cross_entropy", lambda m, p, y: F(m).binary_cross_entropy(p, y),
           lambda r: [r.uniform(0.1, 0.9, 5), r.uniform(0, 1, 5)],
           lambda p, y: -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()),
    OpInfo("binary_cross_entropy_weight", lambda m, p, y, w: F(m).binary_cross_entropy(p, y, w, reduction="sum"),
           lambda r: [r.uniform(0.1, 0.9, (2, 3)), r.uniform(0, 1, (2, 3)), positive(r, 3)],
           lambda p, y, w: -(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum(), nondiff=(2,)),
    OpInfo("multi_margin_loss", lambda m, x, t: F(m).multi_margin_loss(x, t),
           lambda r: [distinct(r, 4, 3), labels(r, 4, 3)], _margin),
    OpInfo("multi_margin_loss_p2", lambda m, x, t: F(m).multi_margin_loss(x, t, p=2, margin=0.5),
           lambda r: [distinct(r, 4, 3), labels(r, 4, 3)], lambda x, t: _margin(x, t, 2, 0.5)),
    # ---- the Tensor surface of PyTorch MLP scripts (issue 14) ---------------------------------
    OpInfo("view_as", lambda m, x: x.view_as(m.zeros(3, 2)), lambda r: [randn(r, 6)], lambda x: x.reshape(3, 2)),
    OpInfo("reshape_as", lambda m, x: x.reshape_as(m.zeros(2, 2, 2)), lambda r: [randn(r, 4, 2)],
           lambda x: x.reshape(2, 2, 2)),
    OpInfo("masked_fill", lambda m, x: x.masked_fill(x > 0.3, 2.0), lambda r: [away(r, 3, 4, points=(0.3,))],
           lambda x: np.where(x > 0.3, 2.0, x)),
    OpInfo("masked_fill_tensor", lambda m, x, v: x.masked_fill(x > 0, v), lambda r: [away(r, 3, 4), randn(r)],
           lambda x, v: np.where(x > 0, v, x)),
    OpInfo("addmm", lambda m, c, a, b: m.addmm(c, a, b, beta=0.5, alpha=2.0),
           lambda r: [randn(r, 4), randn(r, 3, 2), randn(r, 2, 4)], lambda c, a, b: 0.5 * c + 2 * a @ b),
    OpInfo("bmm", lambda m, a, b: m.bmm(a, b), lambda r: [randn(r, 2, 3, 4), randn(r, 2, 4, 2)], np.matmul),
    OpInfo("einsum_linear", lambda m, x, w: m.einsum("bi,oi->bo", x, w), lambda r: [randn(r, 3, 4), randn(r, 2, 4)],
           lambda x, w: x @ w.T),
    OpInfo("einsum_bmm", lambda m, a, b: m.einsum("bij,bjk->bik", a, b),
           lambda r: [randn(r, 2, 3, 4), randn(r, 2, 4, 2)], np.matmul),
    OpInfo("einsum_three", lambda m, a, b, c: m.einsum("i,ij,j", a, b, c),
           lambda r: [randn(r, 3), randn(r, 3, 4), randn(r, 4)], lambda a, b, c: a @ b @ c),
    OpInfo("einsum_trace_ellipsis", lambda m, a, b: m.einsum("ii,...i->...", a, b),
           lambda r: [randn(r, 3, 3), randn(r, 2, 3)], lambda a, b: b @ np.diag(a)),
    OpInfo("topk", lambda m, x: x.topk(2, dim=1).values, lambda r: [distinct(r, 3, 4)],
           lambda x: -np.sort(-x, 1)[:, :2]),
    OpInfo("topk_smallest", lambda m, x: m.topk(x, 2, dim=0, largest=False)[0], lambda r: [distinct(r, 4, 3)],
           lambda x: np.sort(x, 0)[:2]),
    OpInfo("sort", lambda m, x: m.sort(x, dim=0)[0], lambda r: [distinct(r, 4, 3)], lambda x: np.sort(x, 0)),
    OpInfo("sort_descending", lambda m, x: x.sort(descending=True).values, lambda r: [distinct(r, 3, 4)],
           lambda x: -np.sort(-x, -1)),
    OpInfo("cumsum", lambda m, x: x.cumsum(1), lambda r: [randn(r, 3, 4)], lambda x: np.cumsum(x, 1)),
    OpInfo("norm", lambda m, x: x.norm(), lambda r: [randn(r, 3, 4)], np.linalg.norm),
    OpInfo("norm_dim", lambda m, x: m.norm(x, 2, dim=1, keepdim=True), lambda r: [randn(r, 3, 4)],
           lambda x: np.sqrt((x * x).sum(1, keepdims=True))),
    OpInfo("norm_1", lambda m, x: x.norm(p=1, dim=0), lambda r: [away(r, 3, 4)], lambda x: np.abs(x).sum(0)),
    OpInfo("norm_inf", lambda m, x: x.norm(float("inf"), dim=1), lambda r: [distinct(r, 3, 4)],
           lambda x: np.abs(x).max(1)),
    OpInfo("norm_3", lambda m, x: x.norm(3), lambda r: [away(r, 5)], lambda x: (np.abs(x) ** 3).sum() ** (1 / 3)),
    OpInfo("split", lambda m, x: x.split([1, 3], dim=1)[1], lambda r: [randn(r, 2, 4)], lambda x: x[:, 1:]),
    OpInfo("chunk", lambda m, x: m.chunk(x, 3)[2], lambda r: [randn(r, 5, 2)], lambda x: x[4:]),
    OpInfo("unbind", lambda m, x: x.unbind(1)[2], lambda r: [randn(r, 2, 3)], lambda x: x[:, 2]),
    OpInfo("narrow", lambda m, x: x.narrow(1, 1, 2), lambda r: [randn(r, 2, 4)], lambda x: x[:, 1:3]),
    OpInfo("index_select", lambda m, x, i: x.index_select(0, i), lambda r: [randn(r, 3, 2), np.array([2, 0, 2])],
           lambda x, i: x[i]),
    OpInfo("repeat", lambda m, x: x.repeat(2, 1, 3), lambda r: [randn(r, 2, 3)], lambda x: np.tile(x, (2, 1, 3))),
    OpInfo("tile", lambda m, x: m.tile(x, (2,)), lambda r: [randn(r, 2, 3)], lambda x: np.tile(x, 2)),
    OpInfo("flip", lambda m, x: m.flip(x, [0, 2]), lambda r: [randn(r, 2, 3, 2)], lambda x: x[::-1, :, ::-1]),
    OpInfo("roll", lambda m, x: m.roll(x, (1, -1), (0, 1)), lambda r: [randn(r, 3, 4)],
           lambda x: np.roll(x, (1, -1), (0, 1))),
    OpInfo("roll_flat", lambda m, x: x.roll(2), lambda r: [randn(r, 2, 3)], lambda x: np.roll(x, 2)),
    OpInfo("tril", lambda m, x: x.tril(), lambda r: [randn(r, 3, 4)], np.tril),
    OpInfo("triu", lambda m, x: m.triu(x, 1), lambda r: [randn(r, 2, 3, 3)], lambda x: np.triu(x, 1)),
    OpInfo("outer", lambda m, a, b: m.outer(a, b), lambda r: [randn(r, 3), randn(r, 4)], np.outer),
    OpInfo("diag", lambda m, x: m.diag(x, -1), lambda r: [randn(r, 4, 3)], lambda x: np.diag(x, -1)),
    OpInfo("diag_embed", lambda m, x: x.diag(1), lambda r: [randn(r, 3)], lambda x: np.diag(x, 1)),
    OpInfo("dot", lambda m, a, b: m.dot(a, b), lambda r: [randn(r, 4), randn(r, 4)], np.dot),
    OpInfo("mv", lambda m, a, v: a.mv(v), lambda r: [randn(r, 3, 4), randn(r, 4)], np.matmul),
    # ---- nn.functional for the modules of issue 14 -------------------------------------------
    OpInfo("elu", lambda m, x: F(m).elu(x), lambda r: [away(r, 6) * 2], lambda x: np.where(x > 0, x, np.expm1(x))),
    OpInfo("elu_alpha", lambda m, x: F(m).elu(x, alpha=0.7), lambda r: [away(r, 6) * 2],
           lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    OpInfo("mish", lambda m, x: F(m).mish(x), lambda r: [randn(r, 6) * 2], lambda x: x * np.tanh(_softplus(x))),
    OpInfo("hardtanh", lambda m, x: F(m).hardtanh(x, -0.5, 0.8), lambda r: [away(r, 8, points=(-0.5, 0.8))],
           lambda x: np.clip(x, -0.5, 0.8)),
    OpInfo("relu6", lambda m, x: F(m).relu6(x * 4), lambda r: [away(r, 8, points=(0.0, 1.5))],
           lambda x: np.clip(4 * x, 0, 6)),
    OpInfo("prelu", lambda m, x, w: F(m).prelu(x, w), lambda r: [away(r, 2, 3, 2), randn(r, 3)],
           lambda x, w: np.where(x > 0, x, w[:, None] * x)),
    OpInfo("prelu_shared", lambda m, x, w: F(m).prelu(x, w), lambda r: [away(r, 5), randn(r, 1)],
           lambda x, w: np.where(x > 0, x, w * x)),
    OpInfo("logsigmoid", lambda m, x: F(m).logsigmoid(x), lambda r: [randn(r, 6) * 3], lambda x: -_softplus(-x)),
    # ---- torch's remaining elementwise activations --------------------------------------------
    OpInfo("selu", lambda m, x: F(m).selu(x), lambda r: [away(r, 6) * 2],
           lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    # torch differentiates celu with 1 / float32(alpha) and hardsigmoid with float32(1 / 6), even in
    # float64; gpugrad's derivatives are exact (tests/test_nn_modules.py pins both)
    OpInfo("celu", lambda m, x: F(m).celu(x, alpha=0.7), lambda r: [away(r, 6) * 2],
           lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)), torch_rtol=1e-7),
    OpInfo("hardswish", lambda m, x: F(m).hardswish(x), lambda r: [away(r, 8, points=(-1.2, 1.2)) * 2.5],
           lambda x: x * np.clip(x + 3, 0, 6) / 6),
    OpInfo("hardsigmoid", lambda m, x: F(m).hardsigmoid(x), lambda r: [away(r, 8, points=(-1.2, 1.2)) * 2.5],
           lambda x: np.clip(x + 3, 0, 6) / 6, torch_rtol=1e-7),
    OpInfo("softsign", lambda m, x: F(m).softsign(x), lambda r: [away(r, 6) * 2], lambda x: x / (1 + np.abs(x))),
    OpInfo("tanhshrink", lambda m, x: F(m).tanhshrink(x), lambda r: [randn(r, 6) * 2], lambda x: x - np.tanh(x)),
    OpInfo("threshold", lambda m, x: F(m).threshold(x, 0.3, -2.0), lambda r: [away(r, 8, points=(0.3,))],
           lambda x: np.where(x > 0.3, x, -2.0)),
    OpInfo("hardshrink", lambda m, x: F(m).hardshrink(x, 0.4), lambda r: [away(r, 8, points=(-0.4, 0.4))],
           lambda x: np.where(np.abs(x) > 0.4, x, 0.0)),
    OpInfo("softshrink", lambda m, x: F(m).softshrink(x), lambda r: [away(r, 8, points=(-0.5, 0.5))],
           lambda x: np.where(np.abs(x) > 0.5, x - 0.5 * np.sign(x), 0.0)),
    OpInfo("softmin", lambda m, x: F(m).softmin(x, dim=1), lambda r: [randn(r, 3, 4)], lambda x: _softmax(-x, 1)),
    OpInfo("glu", lambda m, x: F(m).glu(x, dim=0), lambda r: [randn(r, 4, 3)],
           lambda x: x[:2] * _sigmoid(x[2:])),
    OpInfo("layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (3,), w, b), lambda r: [randn(r, 2, 3), randn(r, 3),
           randn(r, 3)], lambda x, w, b: _layer_norm(x, 1) * w + b),
    OpInfo("layer_norm_2d", lambda m, x: F(m).layer_norm(x, [2, 3], eps=1e-3), lambda r: [randn(r, 2, 2, 3)],
           lambda x: _layer_norm(x, 2, 1e-3)),
    OpInfo("batch_norm_train", lambda m, x, w, b: F(m).batch_norm(x, None, None, w, b, training=True),
           lambda r: [randn(r, 3, 2), randn(r, 2), randn(r, 2)],
           lambda x, w, b: (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * w + b),
    OpInfo("batch_norm_train_3d", lambda m, x: F(m).batch_norm(x, None, None, training=True),
           lambda r: [randn(r, 2, 3, 2)],
           lambda x: (x - x.mean((0, 2), keepdims=True)) / np.sqrt(x.var((0, 2), keepdims=True) + 1e-5)),
    OpInfo("batch_norm_eval", lambda m, x, mean, var, w: F(m).batch_norm(x, mean, var, w, None),
           lambda r: [randn(r, 4, 3), randn(r, 3), positive(r, 3), randn(r, 3)],
           lambda x, mean, var, w: (x - mean) / np.sqrt(var + 1e-5) * w, nondiff=(1, 2)),
    OpInfo("normalize", lambda m, x: F(m).normalize(x, dim=1), lambda r: [randn(r, 3, 4)],
           lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)),
    OpInfo("embedding", lambda m, i, w: F(m).embedding(i, w), lambda r: [np.array([[0, 2], [2, 3]]), randn(r, 4, 3)],
           lambda i, w: w[i]),
    # the padding row is not looked up here (its zero gradient would fail gradcheck by design);
    # tests/test_nn.py checks padding_idx's gradient against torch
    OpInfo("embedding_padding", lambda m, i, w: F(m).embedding(i, w, padding_idx=1),
           lambda r: [np.array([2, 0, 3, 2]), randn(r, 4, 2)], lambda i, w: w[i]),
    OpInfo("smooth_l1_loss", lambda m, a, b: F(m).smooth_l1_loss(a, b, beta=0.5),
           lambda r: [randn(r, 8), randn(r, 8) + 0.05], lambda a, b: _smooth_l1(a - b, 0.5).mean()),
    OpInfo("huber_loss", lambda m, a, b: F(m).huber_loss(a, b, reduction="sum", delta=0.7),
           lambda r: [randn(r, 8), randn(r, 8) + 0.05], lambda a, b: (0.7 * _smooth_l1(a - b, 0.7)).sum()),
    OpInfo("kl_div", lambda m, x, t: F(m).kl_div(x, t, reduction="batchmean"),
           lambda r: [_log_softmax(randn(r, 3, 4), 1), _softmax(randn(r, 3, 4), 1)],
           lambda x, t: (t * (np.log(t) - x)).sum() / 3),
    OpInfo("kl_div_log_target", lambda m, x, t: F(m).kl_div(x, t, reduction="sum", log_target=True),
           lambda r: [_log_softmax(randn(r, 3, 4), 1), _log_softmax(randn(r, 3, 4), 1)],
           lambda x, t: (np.exp(t) * (t - x)).sum()),
]


def _layer_norm(x, k, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    return (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)


def _smooth_l1(d, beta):
    return np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)


def _index_put(m, x, v):
    y = x * 1
    y[1] = v
    return y


def _np_index_put(x, v):
    y = x.copy()
    y[1] = v
    return y


def _linear_act(m, x, w, b, act):
    if m.__name__ == "gpugrad":
        return m.nn.functional.linear_act(x, w, b, act)
    return getattr(m, act)(m.nn.functional.linear(x, w, b))


BY_NAME = {op.name: op for op in OPS}
