"""The CPU thread policy: gg.set_num_threads / get_num_threads set gpugrad._C's pool and numpy's
BLAS together; every kernel gives its reference's values and the same values at any thread
count on sizes that go parallel; the pool's workers sleep between kernels (no OpenMP runtime,
no CPU used while idle), survive concurrent callers and fork. No speed is asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import kernels
from tests import kernel_cases

pytest.importorskip("gpugrad._C")
_C = kernels.native_cpu()  # the build of gpugrad._C this CPU runs

PARALLEL_N = 600_001  # two grains of every kernel or more (csrc/cpu/parallel.h), odd


@pytest.fixture
def restore_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = gg.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=None):  # restores BLAS's count on exit
        yield
        gg.set_num_threads(before)


def _run_python(code: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_set_num_threads_sets_kernels_and_blas(restore_threads):
    from threadpoolctl import threadpool_info

    for threads in (1, 3):
        gg.set_num_threads(threads)
        assert gg.get_num_threads() == threads
        assert {m.get_num_threads() for m in kernels.cpu_modules().values()} == {threads}
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and set(blas) == {threads}


@pytest.mark.parametrize(
    "bad, error",
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)],
)
def test_set_num_threads_rejects(bad, error, restore_threads):
    before = gg.get_num_threads()
    with pytest.raises(error, match="set_num_threads"):
        gg.set_num_threads(bad)
    assert gg.get_num_threads() == before


def test_without_threadpoolctl_kernels_still_follow(restore_threads, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    with pytest.warns(RuntimeWarning, match="threadpoolctl"):
        gg.set_num_threads(2)
    assert _C.get_num_threads() == 2


def test_default_is_the_usable_cores_or_omp_num_threads():
    code = "import gpugrad as gg; print(gg.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if hasattr(os, "sched_getaffinity"):
        assert int(_run_python(code, env=env).stdout) == len(os.sched_getaffinity(0))
    assert int(_run_python(code, env={**env, "OMP_NUM_THREADS": "3"}).stdout) == 3


@pytest.mark.parametrize("name", kernels.kernel_names())
def test_every_kernel_agrees_at_any_thread_count(name, restore_threads):
    """Each case at 1, 2 and 3 threads: bitwise the same at every count (but bias_act_bwd's
    column sums: partial sums per worker, added in worker order, which the reference checks)."""
    for case in kernel_cases.cases(name, PARALLEL_N, np.float32):
        results = []
        for threads in (1, 2, 3):
            gg.set_num_threads(threads)
            results.append(kernel_cases.run(name, case.args, level="native", host=case.host))
        if name == "bias_act_bwd":
            kernel_cases.check(name, case, np.float32, level="native")  # at 3 threads
        for other in results[1:]:
            for k, (a, b) in enumerate(zip(results[0], other)):
                if not (name == "bias_act_bwd" and k == 1):
                    np.testing.assert_array_equal(a, b, err_msg=f"{case.what} output {k}")


def test_concurrent_callers_get_right_results(restore_threads):
    """Python threads calling kernels at once (the GIL is released): one loop holds the pool,
    the others run their chunks on their own thread."""
    gg.set_num_threads(2)
    x = kernel_cases.sample(PARALLEL_N, np.float32)
    expected = kernels.sigmoid_reference(x)
    failures = []

    def call():
        for _ in range(20):
            with kernels.use("native"):
                y = kernels.sigmoid_fwd(x)
            if not np.allclose(y, expected, rtol=1e-6, atol=1e-7):
                failures.append("wrong values")

    workers = [threading.Thread(target=call) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures


def test_pool_workers_sleep_and_no_openmp_is_loaded():
    """Workers start on the first parallel loop; between loops they use no CPU (they block on a
    condition variable; OpenMP workers would spin); gpugrad._C loads no OpenMP runtime."""
    result = _run_python("""
        import os, time
        import numpy as np
        from gpugrad.backend import kernels
        _C = kernels.native_cpu()
        _C.set_num_threads(2)
        print(_C.started_workers())
        x = np.ones(1 << 20, np.float32); y = np.empty_like(x)
        for _ in range(20):
            _C.sigmoid_fwd(x.ctypes.data, y.ctypes.data, x.size, "float32")
        print(_C.started_workers())
        start = time.process_time()
        time.sleep(0.5)
        print(time.process_time() - start)
        maps = open("/proc/self/maps").read() if os.path.exists("/proc/self/maps") else ""
        assert "_C" in maps  # the check below looks at the right process
        print(any(name in maps for name in ("libgomp", "libomp", "libiomp")))
    """)
    assert result.returncode == 0, result.stderr
    before, after, idle_cpu_s, openmp = result.stdout.split()
    assert (int(before), int(after)) == (0, 1)
    assert float(idle_cpu_s) < 0.1  # CPU time while every thread should sleep (not a speed)
    assert openmp == "False"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_forked_child_gets_a_pool_of_its_own():
    result = _run_python(
        """
        import os
        import numpy as np
        from gpugrad.backend import kernels
        _C = kernels.native_cpu()
        _C.set_num_threads(2)
        x = np.linspace(-5, 5, 1 << 20, dtype=np.float32); y = np.empty_like(x)
        _C.sigmoid_fwd(x.ctypes.data, y.ctypes.data, x.size, "float32")  # the parent's workers
        pid = os.fork()
        if pid == 0:
            z = np.empty_like(x)
            _C.sigmoid_fwd(x.ctypes.data, z.ctypes.data, x.size, "float32")
            os._exit(0 if np.array_equal(y, z) and _C.started_workers() == 1 else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]


class _FakeBlas:
    """Records the thread counts asked of a BLAS library (threadpoolctl's controller API)."""

    def __init__(self, threads):
        self.threads, self.asked = threads, []

    def get_num_threads(self):
        return self.threads

    def set_num_threads(self, threads):
        self.asked.append(threads)
        self.threads = threads


@pytest.mark.parametrize(
    "shapes, asked",
    [
        (((64, 128), (128, 128)), [1, 2]),  # 1M multiply-adds: one thread, then back to 2
        (((256, 512), (512, 512)), []),  # 67M: worth every thread
        (((8, 8), (8, 8)), []),  # OpenBLAS runs it on the caller anyway
        (((4, 64, 128), (128, 128)), [1, 2]),  # a batch of small products
    ],
)
def test_small_gemms_run_on_one_blas_thread(shapes, asked, monkeypatch):
    from gpugrad.backend import threads

    fake = _FakeBlas(2)
    monkeypatch.setattr(threads, "_controllers", [(fake,)])
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    np.testing.assert_allclose(threads.matmul(a, b), a @ b, rtol=1e-6, atol=1e-5)
    assert fake.asked == asked and fake.threads == 2
    x, w = gg.from_numpy(a), gg.from_numpy(b)
    np.testing.assert_allclose((x @ w).numpy(), a @ b, rtol=1e-6, atol=1e-5)  # the op uses it
    assert fake.asked == asked * 2
    _C.blas_busy_for(0)  # a large product marked the BLAS busy: not for the next tests


def test_kernels_keep_to_the_calling_thread_while_blas_threads_spin():
    result = _run_python("""
        import numpy as np
        from gpugrad.backend import kernels
        C = kernels.native_cpu()
        C.set_num_threads(2)
        x = np.ones(1 << 20, np.float32); y = np.empty_like(x)
        C.blas_busy_for(60.0)  # as after a multi-threaded GEMM (threads.matmul)
        C.sigmoid_fwd(x, y, x.size, "float32")
        print(C.started_workers())
        C.blas_busy_for(0)
        C.sigmoid_fwd(x, y, x.size, "float32")
        print(C.started_workers())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]
