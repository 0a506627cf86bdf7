"""gpugrad on a GPU: every op and fused kernel against the CPU / NumPy, and device handling.

Tests marked `cuda` run only where gg.cuda.is_available() (tests/conftest.py skips them
elsewhere). The unmarked tests run everywhere: without a GPU, gpugrad must refuse CUDA cleanly
and say why; the op table and the fused-kernel checks run once on NumPy so that the GPU run
exercises a harness already known to work. (That the NVRTC fallback compiles, with or without a
GPU, is tests/test_nvrtc.py's.)
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cuda_kernels, kernels
from tests import kernel_cases
from tests.kernel_cases import sample
from tests.opinfo import OPS

HAS_CUDA = gg.cuda.is_available()
no_gpu_only = pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour without a usable GPU")
FLOATS = [np.float32, np.float64]
# the largest spans many blocks and grid-stride rounds on a real GPU; on the fake GPU (tests/
# fake_cupy, where every thread is a fiber on one CPU core) 4097 already takes several rounds
ON_FAKE_GPU = "fake_cupy" in sys.modules.get("cupy", sys).__dict__.get("__file__", "")
SIZES = [1, 33, 1000, 4097 if ON_FAKE_GPU else 100003]


def _native_missing() -> str:
    if not HAS_CUDA:
        return "no GPU"
    return "" if cuda_kernels.native() is not None else cuda_kernels.native_unavailable_reason()


LEVELS = [
    pytest.param("native", marks=pytest.mark.skipif(bool(_native_missing()),
                                                     reason=f"gpugrad._cuda: {_native_missing()}")),
    "cupy",
    "reference",
    "auto",
]


def tolerance(dtype) -> dict:
    return {
        np.dtype(np.float16): dict(rtol=2e-3, atol=2e-3),
        np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
        np.dtype(np.float64): dict(rtol=1e-11, atol=1e-12),
    }[np.dtype(dtype)]


def assert_close(actual, expected, dtype, scale: float = 1.0, what: str = ""):
    tol = tolerance(dtype)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=tol["rtol"],
                               atol=tol["atol"] * scale, err_msg=what)


# ---- without a GPU: refuse cleanly, say why -----------------------------------------------------
@no_gpu_only
def test_is_available_is_false_and_never_raises():
    assert gg.cuda.is_available() is False
    assert gg.cuda.device_count() == 0
    gg.cuda.synchronize()  # a no-op, not an error


@no_gpu_only
def test_creating_a_cuda_tensor_says_why():
    from gpugrad.backend import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    assert reason
    with pytest.raises(RuntimeError) as info:
        gg.tensor([1.0], device="cuda")
    message = str(info.value)
    assert "CUDA" in message and reason in message
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        gg.zeros(2, 3, device="cuda:0")


@no_gpu_only
def test_backend_info_reports_the_reason():
    info = gg.backend_info()
    assert info["cuda_available"] is False
    assert isinstance(info["cuda_reason"], str) and info["cuda_reason"]


@no_gpu_only
def test_cuda_kernels_import_and_report_no_extension():
    assert cuda_kernels.native() is None
    assert cuda_kernels.native_unavailable_reason()


@no_gpu_only
@pytest.mark.parametrize("script", ["gpu_kernels.py", "gpu_mlp.py"])
def test_gpu_benchmarks_skip_cleanly_without_a_gpu(script, tmp_path):
    path = Path(__file__).resolve().parent.parent / "benchmarks" / script
    out = tmp_path / "result.json"
    done = subprocess.run([sys.executable, str(path), "--out", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "CUDA not available: skipped" in done.stdout
    doc = json.loads(out.read_text())
    assert doc["skipped"] is True and doc["reason"]


# ---- the op table (tests/opinfo.py): CUDA values and gradients must match the CPU's ----------
def host(t) -> np.ndarray | None:
    return None if t is None else np.asarray(t.detach().cpu().numpy())


def floating_outputs(out) -> list:
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, gg.Tensor) and o.is_floating_point()]


def forward_backward(fn, args, seed: int = 7):
    """(outputs, input gradients) of fn(*args); the gradient is of a random projection."""
    outs = floating_outputs(fn(*args))
    rng = np.random.default_rng(seed)
    loss = None
    for out in outs:
        weights = rng.standard_normal(out.shape).astype(out.array.dtype)
        term = (out * gg.tensor(weights, device=out.device)).sum()
        loss = term if loss is None else loss + term
    leaves = [a for a in args if isinstance(a, gg.Tensor) and a.requires_grad]
    if loss is not None and loss.requires_grad:
        loss.backward()
    return [host(o) for o in outs], [host(a.grad) for a in leaves]


def run_op(op, dtype, device: str):
    """op.fn on op.sample's inputs at `dtype` on `device` (as tests/test_ops.py builds them)."""
    args = []
    for i, a in enumerate(op.sample(np.random.default_rng(0))):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            grad = i not in op.nondiff
            args.append(gg.tensor(a.astype(dtype), device=device, requires_grad=grad))
        else:
            args.append(gg.tensor(a, device=device))
    return forward_backward(lambda *tensors: op.fn(gg, *tensors), args)


def assert_same_results(expected, actual, dtype, name: str):
    (outs_e, grads_e), (outs_a, grads_a) = expected, actual
    if np.dtype(dtype) == np.float32:
        tol = {"rtol": 1e-4, "atol": 1e-5}
    else:
        tol = {"rtol": 1e-9, "atol": 1e-10}
    assert len(outs_e) == len(outs_a) and len(grads_e) == len(grads_a), name
    for i, (e, a) in enumerate(zip(outs_e, outs_a, strict=True)):
        np.testing.assert_allclose(a, e, err_msg=f"{name}: output {i}", **tol)
    for i, (e, a) in enumerate(zip(grads_e, grads_a, strict=True)):
        assert (e is None) == (a is None), f"{name}: gradient {i} exists on one device only"
        if e is not None:
            np.testing.assert_allclose(a, e, err_msg=f"{name}: gradient {i}", **tol)


def test_op_table_harness_runs_on_cpu():
    """The CUDA parity harness over the whole table, CPU against CPU: proves it here."""
    for op in OPS:
        first, again = run_op(op, np.float32, "cpu"), run_op(op, np.float32, "cpu")
        assert first[0], f"{op.name}: no floating output"
        assert_same_results(first, again, np.float32, op.name)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_op_on_cuda_matches_cpu(op, dtype):
    expected = run_op(op, dtype, "cpu")
    actual = run_op(op, dtype, "cuda")
    assert_same_results(expected, actual, dtype, op.name)


# ---- every fused kernel against its reference, at each kernel level (tests/kernel_cases.py) ------
def at_level(level: str):
    """kernel_cases' level argument: None lets the dispatcher choose."""
    return None if level == "auto" else level


def level_context(level: str):
    return contextlib.nullcontext() if level == "auto" else kernels.use(level)


@pytest.mark.cuda
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", kernels.kernel_names())
def test_fused_kernel_on_cuda(cupy, name, level, n):
    for dtype in kernel_cases.dtypes_of(name, gpu=True):
        for case in kernel_cases.cases(name, n, dtype):
            kernel_cases.check(name, case, dtype, xp=cupy, level=at_level(level))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("level", LEVELS)
def test_fused_kernels_take_strided_inputs_on_cuda(cupy, level, dtype):
    """Transposed views in, C-order results (and mask bits) out; in-place updates of a view."""
    x = sample(5 * 7, dtype).reshape(5, 7)
    with level_context(level):
        xt = cupy.asarray(x).T
        y = kernels.sigmoid_fwd(xt).get()
        yr, mask = (a.get() for a in kernels.relu_fwd(xt))
        base = cupy.zeros((4, 6), dtype)
        view = base[:, ::2]  # not contiguous: the update must land in `base`
        g = sample(12, dtype).reshape(4, 3)
        kernels.sgd_step(view, cupy.asarray(g), None, kernels.sgd_hyper(0.5, 0, 0, 0, False, True))
    np.testing.assert_allclose(y, kernels.sigmoid_reference(x.T), **kernel_cases_tolerance(dtype))
    expected_y, expected_mask = kernels.relu_fwd_reference(np.ascontiguousarray(x.T))
    np.testing.assert_array_equal(yr, expected_y)
    np.testing.assert_array_equal(mask, expected_mask)
    expected = np.zeros((4, 6))
    expected[:, ::2] = -0.5 * g
    np.testing.assert_allclose(base.get(), expected, **kernel_cases_tolerance(dtype))


def kernel_cases_tolerance(dtype) -> dict:
    rtol, atol = kernel_cases.TOLERANCE[np.dtype(dtype)]
    return {"rtol": rtol, "atol": atol}


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", FLOATS + [np.float16], ids=lambda d: np.dtype(d).name)
def test_scatter_add_accumulates_repeated_indices(cupy, dtype):
    out = cupy.zeros((5, 2), dtype=dtype)
    index = cupy.asarray([0, 3, 0, 4, 0])
    values = cupy.asarray(np.arange(10, dtype=dtype).reshape(5, 2))
    cuda_kernels.scatter_add(out, index, values)
    expected = np.zeros((5, 2))
    np.add.at(expected, [0, 3, 0, 4, 0], np.arange(10).reshape(5, 2))
    np.testing.assert_array_equal(out.get(), expected)


@pytest.mark.cuda
def test_sigmoid_kernels_are_stable_at_extremes(cupy):
    x = np.array([-1000, 1000, -np.inf, np.inf, -88.0, 88.0, -20.0, 0.0], dtype=np.float32)
    for level in ("cupy", "auto") + (() if _native_missing() else ("native",)):
        with level_context(level):
            y = kernels.sigmoid_fwd(cupy.asarray(x)).get()
        assert np.isfinite(y).all(), level
        assert y[0] == 0.0 and y[2] == 0.0 and y[1] == 1.0 and y[3] == 1.0 and y[7] == 0.5, level
        assert_close(y, kernels.sigmoid_reference(x.astype(np.float64)), np.float32, what=level)


@pytest.mark.cuda
def test_forced_native_level_without_the_extension_says_so(cupy, monkeypatch):
    monkeypatch.setitem(cuda_kernels._extension, "loaded", True)
    monkeypatch.setitem(cuda_kernels._extension, "module", None)
    monkeypatch.setitem(cuda_kernels._extension, "reason", "gpugrad._cuda is not built (test)")
    expected = pytest.raises(RuntimeError, match=r"sigmoid_fwd.*'native'.*not built")
    with expected, kernels.use("native"):
        kernels.sigmoid_fwd(cupy.ones(3, dtype=np.float32))


# ---- devices -------------------------------------------------------------------------------------
@pytest.mark.cuda
def test_cuda_is_available_and_reported():
    assert gg.cuda.is_available() is True
    assert gg.cuda.device_count() >= 1
    info = gg.backend_info()
    assert info["cuda_available"] is True
    assert info["cuda_kernels"] in ("gpugrad._cuda", "cupy")
    assert isinstance(info["device_name"], str) and info["device_name"]


@pytest.mark.cuda
def test_creating_tensors_on_cuda():
    for t in [gg.tensor([1.0, 2.0], device="cuda"), gg.zeros(2, 3, device="cuda"),
              gg.ones(4, device="cuda:0"), gg.randn(3, device="cuda"),
              gg.arange(5, device="cuda"), gg.full((2,), 7.0, device="cuda")]:
        assert t.is_cuda and t.device == "cuda:0" and str(t.device) == "cuda:0"
    t = gg.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    assert t.dtype == gg.float32 and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert gg.tensor([1, 2], device="cuda").dtype == gg.int64
    assert "cuda:0" in repr(t)
    with pytest.raises(TypeError, match="cpu"):
        t.numpy()


@pytest.mark.cuda
def test_round_trip_keeps_values_and_gradients_flow_back_across_devices():
    x = gg.randn(3, 4, dtype=gg.float64, requires_grad=True)  # a CPU leaf
    y = (x.cuda() * 3).to("cpu")
    assert y.device == "cpu" and np.allclose(host(y), 3 * host(x))
    y.sum().backward()
    np.testing.assert_allclose(host(x.grad), np.full((3, 4), 3.0))

    z = gg.randn(5, device="cuda", requires_grad=True)  # a CUDA leaf, through the CPU and back
    w = (z.cpu() ** 2).to("cuda").to(gg.float64)
    w.sum().backward()
    assert z.grad.is_cuda and z.grad.dtype == gg.float32
    np.testing.assert_allclose(host(z.grad), 2 * host(z), rtol=1e-6)

    a = gg.randn(2, 3)
    np.testing.assert_array_equal(host(a.cuda().cpu()), host(a))
    assert a.cuda().cuda() is not None and a.to("cpu") is a


@pytest.mark.cuda
def test_mixing_devices_in_one_op_names_both_devices():
    a, b = gg.ones(3), gg.ones(3, device="cuda")
    for op in (lambda: a + b, lambda: b * a, lambda: gg.maximum(a, b),
               lambda: gg.ones(2, 3) @ gg.ones(3, 2, device="cuda")):
        with pytest.raises(RuntimeError) as info:
            op()
        assert "cpu" in str(info.value) and "cuda:0" in str(info.value)


def train_losses(device: str, steps: int = 20) -> list:
    """Softmax regression on separable data with linear_act + cross_entropy + fused SGD."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((64, 8)).astype(np.float32)
    labels = (features @ rng.standard_normal((8, 3))).argmax(axis=1)
    x, target = gg.tensor(features, device=device), gg.tensor(labels, device=device)
    w = gg.zeros(3, 8, device=device, requires_grad=True)
    b = gg.zeros(3, device=device, requires_grad=True)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(F.linear_act(x, w, b, "identity"), target)
        loss.backward()
        for p in (w, b):
            kernels.sgd_step(p.array, p.grad.array, None, kernels.sgd_hyper(0.5, 0, 0, 0, False, True))
            p.grad = None
        losses.append(loss.item())
    return losses


def test_training_step_lowers_the_loss_on_cpu():
    losses = train_losses("cpu")
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.cuda
def test_a_training_step_on_cuda_matches_the_cpu():
    losses = train_losses("cuda")
    assert losses[-1] < 0.5 * losses[0]
    np.testing.assert_allclose(losses, train_losses("cpu"), rtol=1e-4)
