"""GPU conditions the other cuda tests never create, checked once per GPU run.

- an elementwise kernel past 2**31 elements: every index must be 64-bit;
- inputs that start at odd offsets: a 16-byte vector load must fall back to scalar loads;
- launches under CuPy's per-thread default stream and on a made non-blocking stream: every
  kernel must run on the current stream, after the work that made its inputs.

scripts/gpu_check.sh runs them on a GPU. On the fake GPU (tests/fake_cupy) they run small: the
fake reports 8 GiB free, so the 2**31 case skips there, and its launches run at once, so a race
between streams cannot show (its stream handles and current stream still follow CuPy's, which
tests/test_cupy_semantics.py checks on both).
"""
from __future__ import annotations

import numpy as np
import pytest

from gpugrad.backend import cuda_kernels, kernels
from tests import kernel_cases

pytestmark = pytest.mark.cuda

BIG = 2**31 + 2**20 + 33  # a million elements past 2**31, and a tail that fills no vector pack
PERIOD = 4096  # the big input repeats every PERIOD elements (a multiple of 32: whole mask words)
CHUNK = 2**30  # the checks' own CuPy kernels look at most this many elements at once


def on_fake_gpu(cupy) -> bool:
    return cupy.__version__.endswith("+fake")


@pytest.fixture(params=["native", "cupy"])
def level(request, cupy):
    if request.param == "native" and cuda_kernels.native() is None:
        pytest.skip(f"gpugrad._cuda: {cuda_kernels.native_unavailable_reason()}")
    return request.param


# ---- 2**31 elements and more --------------------------------------------------------------------
def periodic_input(cupy, n: int) -> tuple:
    """(x, base): float16 x of n elements with x[i] = base[i % PERIOD], filled on the device."""
    base = np.linspace(-3.0, 3.0, PERIOD).astype(np.float16)
    base[::5] = 0.0
    x = cupy.empty(n, dtype=cupy.float16)
    on_device = cupy.asarray(base)
    whole = n - n % PERIOD
    for start, stop in spans(whole, PERIOD):
        x[start:stop].reshape(-1, PERIOD)[...] = on_device
    x[whole:] = on_device[: n % PERIOD]
    return x, base


def spans(whole: int, period: int):
    """[start, stop) pieces of range(whole), each whole periods and at most about CHUNK long."""
    step = max(1, CHUNK // period) * period
    return [(start, min(start + step, whole)) for start in range(0, whole, step)]


def assert_periodic(cupy, out, expected: np.ndarray, what: str):
    """out[i] == expected[i % len(expected)] for every i, compared on the device a chunk at a time
    (so that only the kernel under test ever sees 2**31 elements)."""
    period = expected.size
    on_device = cupy.asarray(expected)
    whole = out.size - out.size % period
    for start, stop in spans(whole, period):
        equal = bool((out[start:stop].reshape(-1, period) == on_device).all())
        assert equal, f"{what}: an element in [{start}, {stop}) is wrong"
    tail = out[whole:].get()
    np.testing.assert_array_equal(tail, expected[: tail.size], err_msg=f"{what}: the tail")


@pytest.mark.parametrize("n", [2**20 + 33, BIG], ids=["2^20+33", "2^31+2^20+33"])
def test_elementwise_kernels_past_2_31_elements(cupy, level, n):
    """relu (values and its bit mask) and sigmoid on float16: 4 GiB in, 4 GiB out at 2**31."""
    if n == BIG:
        if on_fake_gpu(cupy):
            pytest.skip("the fake GPU: 2**31 elements would be host memory run by the CPU simulator")
        need = 11 * n  # x and one output (2 bytes each), the mask, a bool per element, slack
        free = cupy.cuda.runtime.memGetInfo()[0]
        if need > free:
            pytest.skip(f"needs about {need / 2**30:.0f} GiB of GPU memory, {free / 2**30:.0f} free")
    x, base = periodic_input(cupy, n)
    with kernels.use(level):
        y, mask = kernels.relu_fwd(x)
    assert y.shape == (n,) and mask.size == (n + 31) // 32
    expected_y, words = kernels.relu_fwd_reference(base)  # PERIOD / 32 words: the mask's period
    assert_periodic(cupy, y, expected_y, "relu_fwd values")
    whole_words = n // PERIOD * words.size
    assert_periodic(cupy, mask[:whole_words], words, "relu_fwd mask")
    np.testing.assert_array_equal(mask[whole_words:].get(),
                                  kernels.relu_fwd_reference(base[: n % PERIOD])[1])
    del y, mask
    with kernels.use(level):
        s = kernels.sigmoid_fwd(x)
    first = s[:PERIOD].get()
    rtol, atol = kernel_cases.TOLERANCE[np.dtype(np.float16)]
    np.testing.assert_allclose(first.astype(np.float64),
                               kernels.sigmoid_reference(base.astype(np.float64)), rtol=rtol,
                               atol=atol)
    assert_periodic(cupy, s, first, "sigmoid_fwd")  # the same input gives the same bits


# ---- odd offsets ---------------------------------------------------------------------------------
class OddOffsets:
    """The array module kernel_cases.run moves a case's arrays with: each one lands `offset`
    elements into a buffer of its own, so that no pointer is 16-byte aligned."""

    def __init__(self, cupy, offset: int):
        self.cupy, self.offset = cupy, offset

    def array(self, a: np.ndarray, copy: bool = True):
        buffer = self.cupy.empty(a.size + self.offset, dtype=a.dtype)
        view = buffer[self.offset :].reshape(a.shape)
        view[...] = self.cupy.asarray(a)
        assert view.data.ptr % 16 != 0, "the view is aligned after all: the check would not check"
        return view


@pytest.mark.parametrize("offset", [1, 3])
@pytest.mark.parametrize("name", kernels.kernel_names())
def test_fused_kernels_on_odd_offset_views(cupy, level, name, offset):
    """Every case of every fused kernel (4097 elements: packs and a tail), each array a view that
    starts `offset` elements into its buffer, against the kernel's reference."""
    for dtype in kernel_cases.dtypes_of(name, gpu=True):
        for case in kernel_cases.cases(name, 4097, dtype):
            kernel_cases.check(name, case, dtype, xp=OddOffsets(cupy, offset), level=level)


# ---- streams -------------------------------------------------------------------------------------
def run_on(cupy, stream, level: str, n: int) -> dict:
    """Queue slow work that makes x on `stream`, then the kernels on x; read results there."""
    with stream:
        x = cupy.full(n, -48.0, dtype=cupy.float32)
        for _ in range(50):  # x ends at 2.0; on a GPU this is still running when the kernels launch
            x += 1.0
        with kernels.use(level):
            y, mask = kernels.relu_fwd(x)
            s = kernels.sigmoid_fwd(x)
            loss, lse = kernels.softmax_xent_fwd(x.reshape(-1, 1024), cupy.zeros(n // 1024, "int64"),
                                                 -100, kernels.bad_target_flag(x))
            p = cupy.zeros(n, dtype=cupy.float32)
            kernels.sgd_step(p, x, None, kernels.sgd_hyper(1.0, 0.0, 0.0, 0.0, False, True))  # -x
        return {"relu": y.get(), "mask": mask.get(), "sigmoid": s.get(), "loss": loss.get(),
                "lse": lse.get(), "sgd": p.get()}  # get() waits for this stream only


@pytest.mark.parametrize("stream_kind", ["per_thread_default", "non_blocking"])
def test_kernels_run_on_the_current_stream(cupy, level, stream_kind):
    """On a non-blocking stream a kernel launched anywhere else would read x half made."""
    stream = cupy.cuda.Stream.ptds if stream_kind == "per_thread_default" else \
        cupy.cuda.Stream(non_blocking=True)
    n = 1 << (14 if on_fake_gpu(cupy) else 25)  # on a GPU: 50 passes over 128 MiB, milliseconds
    got = run_on(cupy, stream, level, n)
    two = np.full(n, 2.0, dtype=np.float32)
    np.testing.assert_array_equal(got["relu"], two)
    np.testing.assert_array_equal(got["mask"], np.full(n // 32, 0xFFFFFFFF, np.uint32))
    np.testing.assert_allclose(got["sigmoid"], kernels.sigmoid_reference(two.astype(np.float64)),
                               rtol=1e-6)
    np.testing.assert_allclose(got["lse"], np.full(n // 1024, 2.0 + np.log(1024.0)), rtol=1e-6)
    np.testing.assert_allclose(got["loss"], np.full(n // 1024, np.log(1024.0)), rtol=1e-5)
    np.testing.assert_array_equal(got["sgd"], -two)
