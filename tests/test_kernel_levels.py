"""Every kernel level gives the same op results: the C++ kernels (gpugrad._C, the same
functors the CUDA kernels run) against the NumPy reference, through the ops that use them."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import kernels

pytestmark = pytest.mark.skipif(kernels.native_cpu() is None, reason="gpugrad._C is not built")

SIZES = [(1, 1), (3, 33), (65, 31), (127, 257)]


def run(fn, *arrays, level):
    with kernels.use(level):
        inputs = [gg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out = fn(*inputs)
        seed = np.random.default_rng(5).standard_normal(out.shape).astype(out.array.dtype)
        grads = gg.autograd.grad(out, [t for t in inputs if t.requires_grad], gg.tensor(seed))
    return out.detach().numpy(), [g.numpy() for g in grads]


CASES = {
    "sigmoid": (lambda x: gg.sigmoid(x), 1),
    "tanh": (lambda x: gg.tanh(x), 1),
    "relu": (lambda x: gg.relu(x), 1),
    "linear_act_relu": (lambda x, w, b: gg.nn.functional.linear_act(x, w, b, "relu"), 3),
    "linear_act_sigmoid": (lambda x, w, b: gg.nn.functional.linear_act(x, w, b, "sigmoid"), 3),
    "linear_act_tanh": (lambda x, w, b: gg.nn.functional.linear_act(x, w, b, "tanh"), 3),
    "cross_entropy_rows": (lambda x, t: gg.nn.functional.cross_entropy(x, t, reduction="none"), 2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SIZES, ids=str)
@pytest.mark.parametrize("name", sorted(CASES))
def test_native_matches_reference(name, shape, dtype):
    fn, arity = CASES[name]
    rng = np.random.default_rng(0)
    rows, cols = shape
    if arity == 1:
        arrays = [rng.standard_normal(shape).astype(dtype) * 4]
    elif arity == 2:
        arrays = [rng.standard_normal(shape).astype(dtype) * 4, rng.integers(0, cols, rows)]
    else:
        arrays = [rng.standard_normal((rows, 7)).astype(dtype), rng.standard_normal((cols, 7)).astype(dtype),
                  rng.standard_normal(cols).astype(dtype)]
    out_ref, grads_ref = run(fn, *arrays, level="reference")
    out_nat, grads_nat = run(fn, *arrays, level="native")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out_nat, out_ref, rtol=tol, atol=tol)
    for g_nat, g_ref in zip(grads_nat, grads_ref):
        np.testing.assert_allclose(g_nat, g_ref, rtol=tol, atol=tol)


def test_relu_mask_is_one_bit_per_element():
    x = gg.tensor(np.random.default_rng(0).standard_normal(10_000).astype(np.float32), requires_grad=True)
    for level in ("reference", "native"):
        with kernels.use(level):
            y = gg.relu(x)
        (mask,) = [s.array for s in y.grad_fn._saved]
        assert mask.nbytes == 4 * ((10_000 + 31) // 32)  # 1/32 of the float32 input


@pytest.mark.parametrize("level", ["reference", "native"])
def test_fused_sgd_and_adam_steps_agree(level):
    rng = np.random.default_rng(1)
    p0, g = rng.standard_normal(5000), rng.standard_normal(5000)
    results = {}
    for lvl in ("reference", level):
        p, buf = p0.copy(), np.zeros_like(p0)
        m, v = np.zeros_like(p0), np.zeros_like(p0)
        with kernels.use(lvl):
            kernels.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-4, True, True)
            kernels.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-4, True, False)
            kernels.adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 0.1, 0.001, True)
        results[lvl] = p
    np.testing.assert_allclose(results[level], results["reference"], rtol=1e-12, atol=1e-14)
