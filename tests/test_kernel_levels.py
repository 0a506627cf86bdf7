"""Every kernel level gives the same op results: the C++ kernels (gpugrad._C, the same
functors the CUDA kernels run) against the NumPy reference, through the ops that use them."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import kernels
from tests import kernel_cases

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
    "silu": (lambda x: gg.nn.functional.silu(x), 1),
    "gelu": (lambda x: gg.nn.functional.gelu(x), 1),
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


@pytest.mark.parametrize("n", [1, 33, 4097])
@pytest.mark.parametrize("name", kernels.kernel_names())
def test_every_kernel_at_every_cpu_level_matches_its_reference(name, n):
    """The table's kernels through the dispatcher, gpugrad._C and the reference level alike."""
    for dtype in kernel_cases.dtypes_of(name, gpu=False):
        for case in kernel_cases.cases(name, n, dtype):
            for level in ("native", "reference"):
                kernel_cases.check(name, case, dtype, level=level)


def test_every_non_map_kernel_has_sample_cases():
    others = [name for name, k in kernels.KERNELS.items() if not k.inputs]
    assert sorted(others) == sorted(kernel_cases.CASES)
