"""The native kernels' bindings (gpugrad._C on the CPU, gpugrad._cuda on a GPU, and the CUDA
simulator's build of the .cu files) called directly with raw pointers: offsets, tails, writes
past the end, in-place updates, argument errors. The oracle is each kernel's reference in
gpugrad/backend/kernels.py, evaluated in float64.

Both modules run the same element functors (csrc/common), so the CPU run also checks the GPU
math; the `cuda` runs repeat every check on CuPy arrays and skip where no GPU is usable.
"""

from __future__ import annotations

import numpy as np
import pytest
from gpugrad.backend import kernels
from tests import kernel_cases
from tests.kernel_cases import sample, sample_special

_C = pytest.importorskip("gpugrad._C")

SIZES = [1, 7, 31, 32, 33, 63, 64, 65, 1000, 4097, 100003]
FLOATS = [np.float32, np.float64]
GUARD = 5  # sentinel elements after every output, to catch writes past the end
SENTINEL = 7.0
KERNELS = kernels.kernel_names()
MAPS = [name for name in KERNELS if kernels.KERNELS[name].inputs]


# ---- where the kernels run: host arrays + _C, or CuPy arrays + _cuda on the current stream ----


class HostBackend:
    name = "cpu"
    module = _C

    def __init__(self):
        self.xp = np

    def pointer(self, a) -> int:
        return a.ctypes.data

    def pointers(self, *arrays) -> list[int]:
        return [self.pointer(a) for a in arrays]

    def call(self, kernel: str, *args) -> None:
        getattr(self.module, kernel)(*args)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def array(self, host: np.ndarray, offset: int = 0):
        """A C-contiguous copy of `host`, starting `offset` elements into a fresh buffer."""
        host = np.ascontiguousarray(host)
        buf = self.xp.empty(offset + host.size, dtype=host.dtype)
        view = buf[offset:].reshape(host.shape)
        view[...] = self.xp.asarray(host)
        return view

    def output(self, shape, dtype, offset: int = 0, fill=SENTINEL):
        """(view, check): an output `offset` elements into a buffer of `fill`, GUARD of them
        after it; check() asserts the kernel left the guard alone."""
        size = int(np.prod(shape))
        buf = self.xp.full(offset + size + GUARD, fill, dtype=dtype)
        view = buf[offset : offset + size].reshape(shape)

        def check():
            tail = self.to_numpy(buf[offset + size :])
            assert (tail == np.asarray(fill, dtype=dtype)).all(), "kernel wrote past the end"

        return view, check


class CudaBackend(HostBackend):
    name = "cuda"

    def __init__(self, cupy, module):
        self.xp = cupy
        self.module = module

    def pointer(self, a) -> int:
        return a.data.ptr

    def call(self, kernel: str, *args) -> None:
        getattr(self.module, kernel)(*args, self.xp.cuda.get_current_stream().ptr)

    def to_numpy(self, a) -> np.ndarray:
        return self.xp.asnumpy(a)  # copies on the current stream, after the kernel


def _cuda_backend() -> CudaBackend:
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except (ImportError, OSError, RuntimeError) as exc:  # no CuPy / driver / device
        pytest.skip(f"CuPy / CUDA device not usable: {exc}")
    try:
        from gpugrad import _cuda
    except ImportError as exc:
        pytest.skip(f"gpugrad._cuda not built: {exc}")
    return CudaBackend(cupy, _cuda)


class SimBackend(HostBackend):
    """Host arrays + the CUDA kernels compiled for the CPU simulator (tests/cuda_sim): the real
    .cu code, its packs, tails, grid-stride loops, shuffles and barriers, without a GPU."""

    name = "cudasim"

    def __init__(self, module):
        super().__init__()
        self.module = module

    def call(self, kernel: str, *args) -> None:
        getattr(self.module, kernel)(*args, 0)


@pytest.fixture(scope="module", params=["cpu", "cudasim", pytest.param("cuda", marks=pytest.mark.cuda)])
def backend(request):
    if request.param == "cpu":
        return HostBackend()
    if request.param == "cudasim":
        return SimBackend(request.getfixturevalue("cuda_sim"))
    return _cuda_backend()


# ---- references and tolerances ----


def tolerance(dtype) -> dict:
    return {
        np.dtype(np.float16): {"rtol": 2e-3, "atol": 2e-3},
        np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
        np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13},
    }[np.dtype(dtype)]


def dtype_name(dtype) -> str:
    return np.dtype(dtype).name


ACTS = list(kernels.ACTIVATIONS)  # act code -> name


def reference(name: str, *args):
    """Kernel `name`'s reference on float64 copies of the arguments."""
    return kernels.KERNELS[name].reference(
        *(a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
          for a in args))


def relu_active_ref(x):
    return ~(x <= 0)  # x > 0 or NaN: torch passes the gradient at NaN


def assert_close(actual, expected, dtype, scale: float = 1.0):
    tol = tolerance(dtype)
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected, rtol=tol["rtol"], atol=tol["atol"] * scale
    )


# ---- elementwise activations ----


def elementwise_dtypes(backend):
    return FLOATS + ([np.float16] if backend.name in ("cuda", "cudasim") else [])


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", MAPS)
def test_elementwise_maps(backend, name, n, offset):
    """Every map of the kernel table: out = f(inputs), its tail, its 16-byte packs and none."""
    for dtype in elementwise_dtypes(backend):
        hosts = [sample(n, dtype, seed=k) for k in range(kernels.KERNELS[name].inputs)]
        inputs = [backend.array(h, offset) for h in hosts]
        out, check_out = backend.output((n,), dtype, offset)
        backend.call(name, *backend.pointers(*inputs, out), n, dtype_name(dtype))
        check_out()
        assert_close(backend.to_numpy(out), reference(name, *hosts), dtype, scale=4.0)


def test_sigmoid_is_stable_at_large_inputs(backend):
    for dtype in elementwise_dtypes(backend):
        x_host = np.array([-1000, 1000, -np.inf, np.inf, -88.0, 88.0, -20.0, 0.0], dtype=dtype)
        x = backend.array(x_host)
        y, _ = backend.output(x_host.shape, dtype)
        backend.call("sigmoid_fwd", *backend.pointers(x, y), x_host.size, dtype_name(dtype))
        out = backend.to_numpy(y)
        assert np.isfinite(out).all()
        assert out[0] == 0.0 and out[2] == 0.0
        assert out[1] == 1.0 and out[3] == 1.0
        assert out[7] == 0.5
        assert_close(out, reference("sigmoid_fwd", x_host), dtype)


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
@pytest.mark.parametrize("n", SIZES)
def test_relu_forward_mask_and_backward(backend, n, offset):
    words = (n + 31) // 32
    for dtype in elementwise_dtypes(backend):
        name = dtype_name(dtype)
        x_host = sample_special(n, dtype)  # NaN, -0.0 and +-inf among the values
        x = backend.array(x_host, offset)
        y, check_y = backend.output((n,), dtype, offset)
        mask, check_mask = backend.output((words,), np.uint32, fill=0xFFFFFFFF)
        backend.call("relu_fwd", *backend.pointers(x, y, mask), n, name)
        check_y()
        check_mask()
        y_host = backend.to_numpy(y)
        expected, expected_mask = kernels.relu_fwd_reference(x_host)
        np.testing.assert_array_equal(y_host, expected)  # NaN stays NaN
        np.testing.assert_array_equal(np.signbit(y_host), np.signbit(expected))  # relu(-0.0) = -0.0
        # exact, including the zero bits past n in the last word
        np.testing.assert_array_equal(backend.to_numpy(mask), expected_mask)

        g_host = sample(n, dtype, seed=2)
        g = backend.array(g_host, offset)
        gx, check_gx = backend.output((n,), dtype, offset)
        backend.call("relu_bwd", *backend.pointers(g, mask, gx), n, name)
        check_gx()
        np.testing.assert_array_equal(backend.to_numpy(gx), np.where(relu_active_ref(x_host), g_host, 0))


# ---- bias + activation ----

MATRIX_SHAPES = [(1, 1), (7, 33), (64, 10), (1000, 10), (257, 128), (4097, 65)]


@pytest.mark.parametrize("act", [0, 1, 2, 3], ids=["identity", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", MATRIX_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_bias_act(backend, dtype, shape, act):
    rows, cols = shape
    name = dtype_name(dtype)
    x_host = sample(rows * cols, dtype).reshape(rows, cols)
    bias_host = sample(cols, dtype, seed=3)
    x, bias = backend.array(x_host), backend.array(bias_host)
    y, check_y = backend.output(shape, dtype)
    backend.call(
        "bias_act_fwd",
        *backend.pointers(x, bias, y),
        rows,
        cols,
        act,
        name,
    )
    check_y()
    y_host = backend.to_numpy(y)
    assert_close(y_host, reference("bias_act_fwd", x_host, bias_host, ACTS[act]), dtype, scale=10.0)

    g_host = sample(rows * cols, dtype, seed=4).reshape(rows, cols)
    g = backend.array(g_host)
    gx, check_gx = backend.output(shape, dtype)
    gbias, check_gbias = backend.output((cols,), dtype, fill=123.0)  # must be overwritten
    backend.call(
        "bias_act_bwd",
        *backend.pointers(y, g, gx, gbias),
        rows,
        cols,
        act,
        name,
    )
    check_gx()
    check_gbias()
    expected_gx, expected_gbias = reference("bias_act_bwd", y_host, g_host, ACTS[act])
    assert_close(backend.to_numpy(gx), expected_gx, dtype, scale=10.0)
    assert_close(backend.to_numpy(gbias), expected_gbias, dtype, scale=10.0 * np.sqrt(rows))


@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_bias_act_relu_keeps_nan_and_negative_zero(backend, dtype):
    """relu(NaN) = NaN with gradient passed, relu(-0.0) = -0.0 with gradient 0, as torch."""
    rows, cols = 37, 9
    name = dtype_name(dtype)
    x_host = sample_special(rows * cols, dtype).reshape(rows, cols)
    x_host[:, 0] = -0.0
    bias_host = np.zeros(cols, dtype)  # x + 0 keeps NaN and inf; -0.0 + 0.0 is +0.0 ...
    bias_host[0] = -0.0  # ... but -0.0 + -0.0 stays -0.0
    x, bias = backend.array(x_host), backend.array(bias_host)
    y, _ = backend.output((rows, cols), dtype)
    backend.call("bias_act_fwd", *backend.pointers(x, bias, y), rows, cols, 1, name)
    y_host = backend.to_numpy(y)
    expected = kernels.relu_reference(x_host + bias_host)
    np.testing.assert_array_equal(y_host, expected)
    np.testing.assert_array_equal(np.signbit(y_host), np.signbit(expected))
    assert np.isnan(y_host).any() and np.signbit(y_host[:, 0]).all()

    g_host = sample(rows * cols, dtype, seed=4).reshape(rows, cols)
    g = backend.array(g_host)
    gx, _ = backend.output((rows, cols), dtype)
    gbias, _ = backend.output((cols,), dtype)
    backend.call("bias_act_bwd", *backend.pointers(y, g, gx, gbias), rows, cols, 1, name)
    expected_gx = np.where(relu_active_ref(y_host), g_host, 0)
    np.testing.assert_array_equal(backend.to_numpy(gx), expected_gx)
    assert_close(backend.to_numpy(gbias), expected_gx.astype(np.float64).sum(axis=0), dtype, scale=10.0)


def test_bias_act_backward_with_no_rows_zeroes_gbias(backend):
    gbias, _ = backend.output((5,), np.float32, fill=123.0)
    empty = backend.array(np.zeros((0, 5), np.float32))
    backend.call(
        "bias_act_bwd",
        *backend.pointers(empty, empty, empty, gbias),
        0,
        5,
        2,
        "float32",
    )
    np.testing.assert_array_equal(backend.to_numpy(gbias)[:5], 0.0)


# ---- softmax cross-entropy ----

IGNORE = -100

XENT_SHAPES = [(1, 1), (5, 10), (33, 7), (64, 1000), (3, 2049), (2000, 16)]


def run_xent(backend, logits_host, targets_host, scale_host, dtype):
    rows, cols = logits_host.shape
    name = dtype_name(dtype)
    logits, targets = backend.array(logits_host), backend.array(targets_host)
    loss, check_loss = backend.output((rows,), dtype)
    lse, check_lse = backend.output((rows,), dtype)
    bad = backend.array(np.array([kernels.NO_BAD_TARGET], np.int64))
    backend.call(
        "softmax_xent_fwd",
        *backend.pointers(logits, targets, loss, lse, bad),
        rows,
        cols,
        IGNORE,
        name,
    )
    assert backend.to_numpy(bad)[0] == kernels.NO_BAD_TARGET  # every target is in range
    check_loss()
    check_lse()
    scale = backend.array(scale_host)
    gx, check_gx = backend.output((rows, cols), dtype)
    backend.call(
        "softmax_xent_bwd",
        *backend.pointers(logits, targets, lse, scale, gx),
        rows,
        cols,
        name,
    )
    check_gx()
    return backend.to_numpy(loss), backend.to_numpy(lse), backend.to_numpy(gx)


@pytest.mark.parametrize("magnitude", [3.0, 1e4], ids=["normal", "large"])
@pytest.mark.parametrize("shape", XENT_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_softmax_xent(backend, dtype, shape, magnitude):
    rows, cols = shape
    rng = np.random.default_rng(rows * 31 + cols)
    logits_host = (rng.standard_normal(shape) * magnitude).astype(dtype)
    targets_host = rng.integers(0, cols, size=rows, dtype=np.int64)
    scale_host = rng.uniform(0.1, 2.0, size=rows).astype(dtype)
    loss, lse, gx = run_xent(backend, logits_host, targets_host, scale_host, dtype)

    assert np.isfinite(loss).all() and np.isfinite(lse).all() and np.isfinite(gx).all()
    loss_ref, lse_ref = reference("softmax_xent_fwd", logits_host, targets_host, IGNORE,
                                  np.array([kernels.NO_BAD_TARGET], np.int64))
    assert_close(lse, lse_ref, dtype, scale=magnitude)
    assert_close(loss, loss_ref, dtype, scale=magnitude)

    # the backward takes the kernel's own lse, as the autograd op will
    expected = reference("softmax_xent_bwd", logits_host, targets_host, lse, scale_host)
    assert_close(gx, expected, dtype, scale=magnitude if magnitude > 100 else 1.0)


@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_softmax_xent_ignored_rows_and_bad_targets(backend, dtype):
    """A row whose target is ignore_index costs 0; a target out of range gives NaN and is stored
    in bad_target (the host raises it); the backward picks no column for either."""
    rows, cols = 6, 5
    logits_host = sample(rows * cols, dtype).reshape(rows, cols)
    targets_host = np.array([0, IGNORE, 4, 7, -3, 2], np.int64)
    logits, targets = backend.array(logits_host), backend.array(targets_host)
    loss, _ = backend.output((rows,), dtype)
    lse, _ = backend.output((rows,), dtype)
    bad = backend.array(np.array([kernels.NO_BAD_TARGET], np.int64))
    backend.call("softmax_xent_fwd", *backend.pointers(logits, targets, loss, lse, bad), rows, cols,
                 IGNORE, dtype_name(dtype))
    loss_host, lse_host = backend.to_numpy(loss), backend.to_numpy(lse)
    flag = np.array([kernels.NO_BAD_TARGET], np.int64)
    expected_loss, expected_lse = reference("softmax_xent_fwd", logits_host, targets_host, IGNORE, flag)
    assert backend.to_numpy(bad)[0] in (7, -3) and flag[0] in (7, -3)
    np.testing.assert_array_equal(np.isnan(loss_host), [False, False, False, True, True, False])
    assert loss_host[1] == 0
    assert_close(loss_host[[0, 2, 5]], expected_loss[[0, 2, 5]], dtype)
    assert_close(lse_host, expected_lse, dtype)
    scale = backend.array(np.array([1, 0, 1, 1, 1, 1], dtype))
    gx, _ = backend.output((rows, cols), dtype)
    backend.call("softmax_xent_bwd", *backend.pointers(logits, targets, lse, scale, gx), rows, cols,
                 dtype_name(dtype))
    expected_gx = reference("softmax_xent_bwd", logits_host, targets_host, lse_host,
                            backend.to_numpy(scale))
    assert_close(backend.to_numpy(gx), expected_gx, dtype)
    assert (backend.to_numpy(gx)[1] == 0).all()


# ---- optimizer steps ----

OPTIM_SIZES = [1, 7, 33, 4097, 100003]
SGD_CONFIGS = [
    {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.1},
    {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"momentum": 0.9, "dampening": 0.3, "nesterov": False, "weight_decay": 0.01},
    {"momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 0.01},
]
ADAM_CONFIGS = [
    {"weight_decay": 0.0, "decoupled": False},
    {"weight_decay": 0.1, "decoupled": False},
    {"weight_decay": 0.1, "decoupled": True},
]
STEPS = 5


def optim_inputs(n, dtype):
    rng = np.random.default_rng(n)
    p = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(STEPS)]
    return p, grads


def config_id(config: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in config.items())


def sgd_hypers(lr, config):
    """The hyperparameter array of each step (the first step starts the momentum buffer)."""
    return [kernels.sgd_hyper(lr, config["momentum"], config["dampening"], config["weight_decay"],
                              config["nesterov"], step == 0) for step in range(STEPS)]


def adam_hypers(lr, beta1, beta2, eps, config):
    return [kernels.adam_hyper(lr, beta1, beta2, eps, config["weight_decay"], 1 - beta1**step,
                               1 - beta2**step, config["decoupled"]) for step in range(1, STEPS + 1)]


def sgd_ref(p_host, grads, hypers, momentum):
    """STEPS updates by the backend's reference, in float64: (p, momentum buffer)."""
    p = p_host.astype(np.float64)
    buf = np.zeros_like(p) if momentum else None
    for g, hyper in zip(grads, hypers):
        kernels.sgd_step_reference(p, g.astype(np.float64), buf, hyper)
    return p, buf


def adam_ref(p_host, grads, hypers, amsgrad=False):
    p = p_host.astype(np.float64)
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g, hyper in zip(grads, hypers):
        kernels.adam_step_reference(p, g.astype(np.float64), m, v, hyper, v_max if amsgrad else None)
    return p, m, v


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=config_id)
@pytest.mark.parametrize("n", OPTIM_SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_sgd_step(backend, dtype, n, config, offset):
    p_host, grads = optim_inputs(n, dtype)
    p = backend.array(p_host, offset)
    buf = backend.array(np.full(n, 99.0, dtype), offset)  # garbage: first_step overwrites it
    has_buf = config["momentum"] != 0
    hypers = sgd_hypers(0.1, config)
    for g_host, hyper in zip(grads, hypers):
        g = backend.array(g_host, offset)
        buf_pointer = backend.pointer(buf) if has_buf else 0  # no momentum: no buffer
        backend.call("sgd_step", *backend.pointers(p, g), buf_pointer,
                     backend.pointer(backend.array(hyper)), n, dtype_name(dtype))
    p_ref, buf_ref = sgd_ref(p_host, grads, hypers, has_buf)
    assert_close(backend.to_numpy(p), p_ref, dtype, scale=10.0)
    if has_buf:
        assert_close(backend.to_numpy(buf), buf_ref, dtype, scale=10.0)
    else:
        np.testing.assert_array_equal(backend.to_numpy(buf), 99.0)  # untouched


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=config_id)
@pytest.mark.parametrize("n", OPTIM_SIZES)
@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
def test_adam_step(backend, dtype, n, config, offset):
    p_host, grads = optim_inputs(n, dtype)
    p = backend.array(p_host, offset)
    m = backend.array(np.zeros(n, dtype), offset)
    v = backend.array(np.zeros(n, dtype), offset)
    hypers = adam_hypers(1e-2, 0.9, 0.999, 1e-8, config)
    for g_host, hyper in zip(grads, hypers):
        g = backend.array(g_host, offset)
        backend.call("adam_step", *backend.pointers(p, g, m, v),
                     backend.pointer(backend.array(hyper)), n, dtype_name(dtype))
    p_ref, m_ref, v_ref = adam_ref(p_host, grads, hypers)
    assert_close(backend.to_numpy(m), m_ref, dtype, scale=10.0)
    assert_close(backend.to_numpy(v), v_ref, dtype, scale=10.0)
    assert_close(backend.to_numpy(p), p_ref, dtype, scale=10.0)


STEP_KERNELS = list(kernel_cases.STEP_CONFIGS)  # rmsprop_step, ...: the table-driven optimizers


@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "offset"])
@pytest.mark.parametrize("n", [1, 7, 33, 4097])
@pytest.mark.parametrize("dtype", FLOATS, ids=dtype_name)
@pytest.mark.parametrize("name", STEP_KERNELS)
def test_optimizer_step_kernels(backend, name, dtype, n, offset):
    """Each case of kernel_cases (every option that changes the path), two steps in a row on
    the same state, every buffer in place; an unused buffer is a null pointer."""
    for case in kernel_cases.cases(name, n, dtype):
        *arrays, hyper_host = case.args
        moved = [None if a is None else backend.array(a, offset) for a in arrays]
        hyper = backend.array(hyper_host)
        for _ in range(2):
            backend.call(name, *(0 if a is None else backend.pointer(a) for a in moved),
                         backend.pointer(hyper), n, dtype_name(dtype))
        expected = [None if a is None else a.astype(np.float64) for a in arrays]
        for _ in range(2):
            kernels.KERNELS[name].reference(*expected, hyper_host)
        for k, (actual, wanted) in enumerate(zip(moved, expected)):
            if actual is not None:
                err = f"{case.what} {dtype_name(dtype)} array {k}"
                np.testing.assert_allclose(backend.to_numpy(actual), wanted, err_msg=err,
                                           **{**tolerance(dtype), "atol": 10 * tolerance(dtype)["atol"]})


@pytest.mark.slow  # importing torch takes seconds
def test_optimizer_references_match_torch():
    """The backend's references are torch.optim's semantics (checked in float64)."""
    torch = pytest.importorskip("torch")
    p_host, grads = optim_inputs(33, np.float64)
    for config in SGD_CONFIGS:
        param = torch.nn.Parameter(torch.from_numpy(p_host.copy()))
        opt = torch.optim.SGD([param], lr=0.1, **config)
        for g in grads:
            param.grad = torch.from_numpy(g.copy())
            opt.step()
        expected = sgd_ref(p_host, grads, sgd_hypers(0.1, config), config["momentum"] != 0)[0]
        np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
    for config in ADAM_CONFIGS:
        for amsgrad in (False, True):
            param = torch.nn.Parameter(torch.from_numpy(p_host.copy()))
            cls = torch.optim.AdamW if config["decoupled"] else torch.optim.Adam
            opt = cls([param], lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                      weight_decay=config["weight_decay"], amsgrad=amsgrad)
            for g in grads:
                param.grad = torch.from_numpy(g.copy())
                opt.step()
            expected = adam_ref(p_host, grads, adam_hypers(1e-2, 0.9, 0.999, 1e-8, config), amsgrad)[0]
            np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-14)


# ---- the binding layer: names, argument checks, errors ----

def zero_args(name: str) -> tuple:
    """Arguments of an empty call of kernel `name` (null pointers, sizes 0)."""
    kernel = kernels.KERNELS[name]
    if kernel.inputs:
        return (0,) * (kernel.inputs + 2)
    return {
        "relu_fwd": (0, 0, 0, 0),
        "relu_bwd": (0, 0, 0, 0),
        "bias_act_fwd": (0, 0, 0, 0, 0, 0),
        "bias_act_bwd": (0, 0, 0, 0, 0, 0, 0),
        "softmax_xent_fwd": (0, 0, 0, 0, 0, 0, 0, -100),
        "softmax_xent_bwd": (0, 0, 0, 0, 0, 0, 0),
        "dropout_scale": (0, 0, 0),
        "sgd_step": (0, 0, 0, 0, 0),
        "adam_step": (0, 0, 0, 0, 0, 0),
        "rmsprop_step": (0,) * 7,
        "adagrad_step": (0,) * 5,
        **dict.fromkeys(("adadelta_step", "adamax_step", "nadam_step", "radam_step"), (0,) * 6),
    }[name]


def _modules():
    """(module, extra trailing args): _C, plus _cuda where it was built (no GPU needed)."""
    found = [(_C, ())]
    try:
        from gpugrad import _cuda
    except ImportError:
        pass
    else:
        found.append((_cuda, (0,)))
    return found


def test_kernel_names():
    for module, _ in _modules():
        assert module.kernel_names() == KERNELS  # the C++ list and the Python table agree
        for name in KERNELS:
            assert callable(getattr(module, name))


@pytest.mark.parametrize("kernel", KERNELS)
def test_unsupported_dtype_names_the_kernel(kernel):
    for module, extra in _modules():
        bad_dtypes = ["int64", "float128"]
        if module is _C or not kernels.KERNELS[kernel].half:
            bad_dtypes.append("float16")
        for dtype in bad_dtypes:
            message = f"{module.__name__}.{kernel}: unsupported dtype '{dtype}'"
            with pytest.raises(ValueError, match=message.replace(".", r"\.")):
                getattr(module, kernel)(*zero_args(kernel), dtype, *extra)


def test_bad_sizes_and_act_raise_value_error():
    for module, extra in _modules():
        with pytest.raises(ValueError, match="sigmoid_fwd: n must be >= 0"):
            module.sigmoid_fwd(0, 0, -1, "float32", *extra)
        with pytest.raises(ValueError, match="bias_act_fwd: act must be"):
            module.bias_act_fwd(0, 0, 0, 1, 1, 4, "float32", *extra)
        with pytest.raises(ValueError, match="softmax_xent_fwd: cols must be >= 1"):
            module.softmax_xent_fwd(0, 0, 0, 0, 0, 3, 0, -100, "float32", *extra)


def test_zero_sized_calls_are_no_ops():
    for module, extra in _modules():
        for kernel in KERNELS:
            getattr(module, kernel)(*zero_args(kernel), "float32", *extra)


def test_cuda_module_without_gpu_raises_runtime_error():
    """With no usable GPU, _cuda still imports and a launch raises RuntimeError naming it."""
    _cuda = pytest.importorskip("gpugrad._cuda")
    if _cuda.device_count() > 0:
        pytest.skip("a GPU is present: this checks the no-GPU error path")
    with pytest.raises(RuntimeError, match=r"gpugrad\._cuda\.sigmoid_fwd: "):
        _cuda.sigmoid_fwd(0, 0, 5, "float32", 0)
