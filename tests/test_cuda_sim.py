"""The CPU simulator of CUDA (tests/cuda_sim) that runs csrc/cuda's kernels in
tests/test_native_kernels.py: its launch rewrite, its collectives and barriers, and the misuses
it must report. A simulator that passed everything would prove nothing about the kernels."""
from __future__ import annotations

import numpy as np
import pytest

from tests.cuda_sim import build


@pytest.fixture(scope="module")
def sim():
    try:
        return build.load_selftest()
    except build.Unavailable as exc:
        pytest.skip(f"CUDA simulator not buildable here: {exc}")


def ok(result):
    error, out = result
    assert error == "", error
    return np.array(out)


# ---- the launch rewrite ----------------------------------------------------------------------
def test_rewrite_turns_a_launch_into_a_call():
    source = "void f() {\n  k<A, B>\n      <<<grid_for(n), kThreads, 0, as_stream(s)>>>(x,\n y);\n}\n"
    out = build.rewrite_launches(source)
    assert "<<<" not in out
    assert ("::gg_sim::launch(grid_for(n), kThreads, 0, as_stream(s), [&] { k<A, B>(x, y); });"
            in out)
    assert out.count("\n") == source.count("\n")  # line numbers survive for diagnostics


@pytest.mark.parametrize("config, expected", [
    ("g, b", "g, b, 0, nullptr"),
    ("g, b, 16", "g, b, 16, nullptr"),
    ("dim3(1, 2), dim3(3, 4)", "dim3(1, 2), dim3(3, 4), 0, nullptr"),
    ("g, b, 0, s", "g, b, 0, s"),
])
def test_rewrite_fills_in_cudas_default_launch_arguments(config, expected):
    out = build.rewrite_launches(f"{{ k<<<{config}>>>(p); }}")
    assert f"::gg_sim::launch({expected}, [&] {{ k(p); }});" in out


def test_rewrite_ignores_comments_and_rejects_what_it_cannot_read():
    out = build.rewrite_launches("{ a = 1;  // see k<<<1, 2>>>(p);\n k<<<1, 32>>>(p); }")
    assert "::gg_sim::launch(1, 32, 0, nullptr, [&] { k(p); });" in out
    with pytest.raises(ValueError, match="without arguments"):
        build.rewrite_launches("{ k<<<1, 32>>>; }")


# ---- collectives, barriers, index registers, atomics -------------------------------------------
def test_warp_sums_by_xor_and_down_shuffles(sim):
    out = ok(sim.lane_sums()).reshape(3 * 64, 2)
    assert (out[:, 0] == sum(range(32))).all()  # every lane holds the xor-reduced sum
    lane = np.arange(3 * 64) % 32
    assert (out[lane == 0, 1] == sum(range(32))).all()


def test_ballot_any_all_and_indexed_shuffle(sim):
    out = ok(sim.ballots()).reshape(32, 4)
    assert (out[:, 0] == sum(1 << lane for lane in range(0, 32, 3))).all()
    assert (out[:, 1] == 1).all() and (out[:, 2] == 1).all()
    assert (out[:, 3] == 90).all()


def test_block_barrier_and_shared_memory(sim):
    values = np.random.default_rng(0).integers(-1000, 1000, 5 * 256)
    out = ok(sim.block_sum(values.tolist()))
    np.testing.assert_array_equal(out, values.reshape(5, 256).sum(axis=1))


def test_three_dimensional_grids_and_blocks(sim):
    out = ok(sim.index_registers())
    threads = 5 * 6 * 2
    expected = [block * 1000 + thread for block in range(2 * 3 * 4) for thread in range(threads)]
    np.testing.assert_array_equal(out, expected)


def test_atomic_add_counts_every_thread(sim):
    assert ok(sim.atomic_count())[0] == 7 * 96


# ---- what CUDA leaves undefined is an error --------------------------------------------------
@pytest.mark.parametrize("kernel, message", [
    ("shuffle_after_exit", ("__shfl_xor_sync with mask 0xffffffff in block (0,0,0), warp 0: "
                            "lane 5 has already exited")),
    ("barrier_skipped", "__syncthreads() in block (0,0,0) reached by 10 of 64 threads"),
    ("collective_deadlock", ("deadlock in block (0,0,0): 32 threads at __syncthreads(), "
                             "32 at warp collectives")),
    ("mixed_collectives", "waits at __shfl_xor_sync with mask 0xffffffff instead"),
    ("too_many_threads", "invalid configuration argument"),
    ("empty_grid", "invalid configuration argument"),
])
def test_misuse_is_reported_as_a_launch_error(sim, kernel, message):
    error, _ = getattr(sim, kernel)()
    assert message in error


def test_a_failed_launch_leaves_the_next_one_clean(sim):
    out = ok(sim.launch_after_error_is_clean()).reshape(64, 2)
    assert (out[:, 0] == sum(range(32))).all()


@pytest.mark.slow
def test_kernels_on_an_h100_shaped_device(sim):
    """The kernel checks again with the simulated device shaped as an H100 (132 SMs of 2048
    threads): launches then cover the data in one pass over many blocks, and the bias gradient
    is summed across ~100 blocks with atomics, instead of the default's few looping blocks."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, GG_SIM_SMS="132", GG_SIM_THREADS_PER_SM="2048")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cudasim",
               "tests/test_native_kernels.py"]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.strip().splitlines()[-1]
