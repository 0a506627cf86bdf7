"""What gpugrad's CUDA path assumes about CuPy, checked wherever a `cupy` runs.

On a GPU this checks real CuPy; under tests/fake_cupy/plugin.py it checks the fake. The same
assertions on both are what make the fake a fair stand-in: each is a way NumPy code breaks on
CuPy arrays (implicit host conversion, host/device mixing, 0-d results, missing functions).
"""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.cuda


def test_device_arrays_are_not_numpy_arrays_and_do_not_convert_implicitly(cupy):
    a = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    assert not isinstance(a, np.ndarray) and isinstance(a, cupy.ndarray)
    with pytest.raises(TypeError):
        np.asarray(a)
    assert isinstance(a.get(), np.ndarray) and isinstance(cupy.asnumpy(a), np.ndarray)
    np.testing.assert_array_equal(a.get(), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_host_and_device_arrays_do_not_mix(cupy):
    a = cupy.ones(3)
    with pytest.raises(TypeError):
        a + np.ones(3)
    with pytest.raises(TypeError):
        cupy.maximum(a, np.ones(3))
    assert float((a + np.float32(2))[0]) == 3.0  # NumPy scalars are fine
    assert float((a * 2.5).sum()) == 7.5


def test_reductions_and_element_access_give_0d_arrays(cupy):
    a = cupy.arange(4.0)
    for result in (a.sum(), a.max(), cupy.sum(a), a[2], cupy.count_nonzero(a)):
        assert isinstance(result, cupy.ndarray) and result.ndim == 0
    assert float(a.sum()) == 6.0 and int(a[3]) == 3 and a[1].item() == 1.0
    assert bool(a.any())


def test_numpy_functions_dispatch_to_cupy(cupy):
    a = cupy.arange(3.0)
    assert isinstance(np.exp(a), cupy.ndarray)
    assert isinstance(np.concatenate([a, a]), cupy.ndarray)
    assert isinstance(np.where(a > 1, a, 0), cupy.ndarray)


def test_pointers_devices_and_in_place_views(cupy):
    a = cupy.zeros((4, 4), dtype=cupy.float64)
    assert isinstance(a.data.ptr, int) and a.data.ptr != 0
    assert a[1:].data.ptr == a.data.ptr + 4 * 8  # a view's pointer includes its offset
    assert a.device.id == 0 and cupy.cuda.Device().id == 0
    assert a.astype(cupy.float64, copy=False) is a
    assert not a.T.flags.c_contiguous and a.T.flags.f_contiguous
    a[:, ::2] += 1
    assert float(a.sum()) == 8.0
    assert isinstance(cupy.cuda.get_current_stream().ptr, int)


def test_numpy_only_functions_are_absent(cupy):
    for name in ("errstate", "frompyfunc", "nditer", "memmap"):
        assert not hasattr(cupy, name), name


def test_scatter_add_accumulates_repeated_indices(cupy):
    import cupyx

    out = cupy.zeros(3)
    cupyx.scatter_add(out, cupy.asarray([0, 2, 0, 0]), cupy.asarray([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(out.get(), [8.0, 0.0, 2.0])


def test_raw_module_instantiates_templates_by_name_from_an_included_header(cupy, tmp_path):
    """What gpugrad's NVRTC fallback relies on (gpugrad/backend/cuda_kernels.py): a RawModule whose
    code includes a header found through an -I option, its templates instantiated by
    name_expressions, get_function taking such an expression, launches of (grid, block, args) on
    the current stream with NumPy scalars passed at their own width."""
    (tmp_path / "axpy.cuh").write_text(
        "template <int K, class T>\n"
        "__global__ void axpy(const T* x, T* y, T a, long long n) {\n"
        "  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
        "       i += (long long)gridDim.x * blockDim.x) y[i] += a * x[i] * K;\n"
        "}\n")
    names = ("axpy<2, float>", "axpy<3, double>")
    module = cupy.RawModule(code='#include "axpy.cuh"\n', options=("-std=c++17", f"-I{tmp_path}"),
                            name_expressions=names)
    for name, dtype, scalar, k in [(names[0], np.float32, np.float32, 2),
                                   (names[1], np.float64, np.float64, 3)]:
        x = cupy.arange(100, dtype=dtype)
        y = cupy.ones(100, dtype=dtype)
        module.get_function(name)((2,), (32,), (x, y, scalar(0.5), np.int64(100)))
        np.testing.assert_allclose(y.get(), 1 + 0.5 * k * np.arange(100))


def test_memory_a_capture_allocated_stays_the_graphs_after_its_array_is_dropped(cupy):
    """What gg.capture's CUDA graphs rely on when a kernel takes a temporary by pointer (the
    native kernels, RawKernels): an array allocated while capturing, from the graph's own pool,
    may be dropped before the capture ends; its memory is still the graph's, and arrays made
    after the capture never get it, so launches neither read nor write anyone else's data."""
    copy_twice = cupy.RawKernel(
        "extern \"C\" __global__ void copy_twice(const double* x, double* y, long long n) {\n"
        "  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;\n"
        "       i += (long long)gridDim.x * blockDim.x) y[i] = 2 * x[i];\n"
        "}\n", "copy_twice")
    n = 4096
    a = cupy.arange(n, dtype=cupy.float64)
    out = cupy.zeros(n)
    stream = cupy.cuda.Stream(non_blocking=True)
    pool = cupy.cuda.MemoryPool()
    with cupy.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        tmp = cupy.empty(n)
        copy_twice((4,), (128,), (a, tmp, np.int64(n)))
        copy_twice((4,), (128,), (tmp, out, np.int64(n)))
        del tmp  # back to the graph's pool, not to anyone else
        graph = stream.end_capture()
    later = [cupy.full(n, -1.0) for _ in range(8)]  # made after: never the graph's memory
    graph.launch()
    stream.synchronize()
    np.testing.assert_array_equal(out.get(), 4 * np.arange(n))
    for array in later:
        np.testing.assert_array_equal(array.get(), np.full(n, -1.0))


def test_streams_handles_and_the_current_stream(cupy):
    """What gpugrad's launches rely on: the current stream is per thread, `with stream:` makes
    it current and restores the previous one, and the handles are CUDA's (the fake copies this)."""
    import threading

    Stream = cupy.cuda.Stream
    assert Stream.null.ptr == 0 and Stream.ptds.ptr == cupy.cuda.runtime.streamPerThread == 2
    made = Stream(non_blocking=True)
    assert made.ptr not in (0, 1, 2) and made != Stream.null and made.is_non_blocking
    default = cupy.cuda.get_current_stream()
    assert default == Stream.null  # unless CUPY_CUDA_PER_THREAD_DEFAULT_STREAM=1, which no test sets
    seen_elsewhere = []
    with made:
        assert cupy.cuda.get_current_stream() == made
        assert cupy.cuda.get_current_stream().ptr == made.ptr
        with Stream.ptds:
            assert cupy.cuda.get_current_stream().ptr == 2
        assert cupy.cuda.get_current_stream() == made
        other = threading.Thread(target=lambda: seen_elsewhere.append(cupy.cuda.get_current_stream()))
        other.start()
        other.join()
    assert seen_elsewhere == [default]  # another thread keeps its own current stream
    assert cupy.cuda.get_current_stream() == default


def test_memory_info_is_free_and_total_bytes(cupy):
    free, total = cupy.cuda.runtime.memGetInfo()
    assert isinstance(free, int) and isinstance(total, int) and 0 < free <= total


def test_fresh_arrays_are_16_byte_aligned(cupy):
    """tests/test_cuda_conditions.py counts on it: its views one element in are misaligned."""
    for dtype, n in [(cupy.float16, 1), (cupy.float32, 33), (cupy.float64, 4097), (cupy.int64, 7)]:
        assert cupy.empty(n, dtype=dtype).data.ptr % 16 == 0


def test_stream_capture_records_work_and_a_graph_replays_it(cupy):
    """What gg.capture's CUDA graphs rely on (gpugrad/cuda_graph.py): on a capturing stream,
    work is recorded, not run; a synchronizing call (a device-to-host read) is refused and
    invalidates the capture; memory from cupy.empty takes no kernel; Graph.launch runs the
    recorded work again, on whatever the buffers then hold; pools and allocators route the
    capture's allocations."""
    a = cupy.arange(4, dtype=cupy.float64)
    out = cupy.zeros(4)
    stream = cupy.cuda.Stream(non_blocking=True)
    pool = cupy.cuda.MemoryPool()
    with cupy.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        assert stream.is_capturing()
        scratch = cupy.empty(4)  # memory only
        b = a * 2
        out[...] = b + 1
        graph = stream.end_capture()
    assert not stream.is_capturing()
    np.testing.assert_array_equal(out.get(), [0, 0, 0, 0])  # recorded, not run
    graph.launch()
    np.testing.assert_array_equal(out.get(), [1, 3, 5, 7])
    a[...] = 10.0
    graph.launch()
    np.testing.assert_array_equal(out.get(), [21, 21, 21, 21])  # the buffers' values now
    assert scratch.shape == (4,)

    with stream:
        stream.begin_capture()
        c = a + 1
        with pytest.raises(cupy.cuda.runtime.CUDARuntimeError):
            c.get()  # a device-to-host read: refused
        with pytest.raises(cupy.cuda.runtime.CUDARuntimeError):
            stream.end_capture()  # the capture was invalidated
