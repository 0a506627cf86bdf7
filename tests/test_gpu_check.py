"""scripts/gpu_check.sh, rehearsed on the fake GPU (GPU_CHECK_FAKE=1) before it ever meets a GPU.

The rehearsal runs every step in its real order: the real build and install (into a throwaway
environment), the import check, every cuda test (this is the suite's run of them on the fake GPU:
tests/fake_cupy and the CUDA simulator, under pytest-xdist when it is there), and both GPU
benchmarks at small sizes. The tests below check that each step ran and passed and that every
result file is there, well-formed and marked as a rehearsal; then the script's pieces that only
a failing GPU run would reach: the build's first-error diagnosis and its list of warnings.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
RESULT_FILES = {"gpu_check.log", "steps.tsv", "gpu_env.json", "pytest_cuda.xml", "nccl_check.json",
                "gpu_kernels.json", "gpu_mlp.json", "gpu_summary.md"}  # the device tool's most: 8
VERSION_KEYS = {"gpu", "driver", "cuda_runtime", "cuda_driver_api", "cupy", "torch", "torch_cuda"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, cuda_sim):  # cuda_sim: built here first, so a failure reads as one
    out = tmp_path_factory.mktemp("gpu-results")
    env = dict(os.environ, GPU_CHECK_FAKE="1", OUT=str(out), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    return out, done


@pytest.mark.slow
def test_the_rehearsal_runs_every_step_and_each_passes(rehearsal):
    out, done = rehearsal
    build, failing = ["build + install (GPUGRAD_CUDA=ON)"], set()
    if shutil.which("nvcc") is None:  # no CUDA compiler here: the CUDA build fails, as it should,
        build.append("build + install (GPUGRAD_CUDA=OFF, fallback)")  # and the fallback runs
        failing = {build[0]}
    assert done.returncode == (1 if failing else 0), done.stdout[-8000:] + done.stderr[-2000:]
    with open(out / "steps.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["step"] for r in rows] == ["nvidia-smi", "versions", *build, "import gpugrad",
                                         "pytest -m cuda",
                                         "NCCL: 1-rank group, collectives + a DDP step",
                                         "benchmark: fused kernels", "benchmark: MLP step vs torch"]
    assert all(r["exit"] == "0" for r in rows if r["step"] not in failing), rows
    assert all(r["seconds"].isdigit() for r in rows)
    log = (out / "gpu_check.log").read_text()
    assert "REHEARSAL on the fake GPU" in log
    assert all(f"==== {r['step']}: exit {r['exit']} after {r['seconds']}s ====" in log for r in rows)
    assert "imported from " + str(ROOT) not in log  # the install, not the source tree
    assert "compiler warning" in log  # the build's warnings were looked for and reported


@pytest.mark.slow
def test_the_rehearsal_leaves_every_result_file_well_formed(rehearsal):
    out, done = rehearsal
    assert {p.name for p in out.iterdir()} == RESULT_FILES, done.stdout[-3000:]
    env = json.loads((out / "gpu_env.json").read_text())
    assert env["rehearsal"] is True and VERSION_KEYS <= set(env)

    suite = ET.parse(out / "pytest_cuda.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite.get("name").startswith("gpugrad cuda tests: REHEARSAL on the fake GPU")
    assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0
    ran = {case.get("classname") for case in suite.iter("testcase") if case.find("skipped") is None}
    for module in ("test_cupy_semantics", "test_native_kernels", "test_cuda_conditions", "test_cuda"):
        assert f"tests.{module}" in ran, f"no test of {module} ran"
    assert int(suite.get("tests")) > 800

    kernels = json.loads((out / "gpu_kernels.json").read_text())
    assert kernels["skipped"] is False and kernels["copy"]["ceiling_gbps"] > 0
    levels = {(r["kernel"], r["level"]) for r in kernels["results"] if r.get("gbps", 0) > 0}
    assert {("relu_fwd", "native"), ("relu_fwd", "cupy"), ("adam_step", "native")} <= levels
    assert not [r for r in kernels["results"] if "error" in r]
    assert all(r["versions"]["rehearsal"] and VERSION_KEYS <= set(r["versions"])
               for r in kernels["results"])
    mlp = json.loads((out / "gpu_mlp.json").read_text())
    assert mlp["skipped"] is False
    (row,) = mlp["results"]
    assert "error" not in row and row["gpugrad"]["median_ms"] > 0
    assert math.isfinite(row["gpugrad"]["loss_after"])
    captured = row["gpugrad_captured"]  # gg.capture's CUDA graph: recorded once, then replayed
    assert captured["capture_stats"]["recorded"] == 1 and captured["capture_stats"]["replayed"] > 0
    assert captured["steps"] == row["gpugrad"]["steps"]
    assert captured["loss_after"] == pytest.approx(row["gpugrad"]["loss_after"], rel=1e-5)
    assert row["versions"]["rehearsal"] and VERSION_KEYS <= set(row["versions"])
    summary = (out / "gpu_summary.md").read_text()
    assert summary.startswith("# REHEARSAL") and "784-512-512-10" in summary


def script_function(*args: str, out: Path) -> str:
    """One function of gpu_check.sh (sourced, it defines its functions and runs none); its output.
    GPU_CHECK_FAKE and OUT too: were it ever to run whole, it would be a rehearsal, out of the way."""
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_FAKE="1", OUT=str(out))
    done = subprocess.run(["bash", "-c", 'source "$1"; shift; "$@"', "bash", str(SCRIPT), *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_failed_build_names_its_first_error_and_the_tools(tmp_path):
    log = tmp_path / "build.log"
    log.write_text(
        "  [3/12] Building CUDA object CMakeFiles/k.dir/csrc/cuda/optim.cu.o\n"
        "  FAILED: CMakeFiles/k.dir/csrc/cuda/optim.cu.o\n"
        "  nvcc -O3 --Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror -c csrc/cuda/optim.cu\n"
        '  csrc/cuda/optim.cu(12): error: identifier "beta3" is undefined\n'
        '  csrc/cuda/rowwise.cu(40): error: expected a ";"\n'
        "  ninja: build stopped: subcommand failed.\n"
        "  ERROR: Failed building wheel for gpugrad\n")
    out = script_function("diagnose_build", str(log), out=tmp_path)
    first = out.split("first error:", 1)[1]
    (error_line,) = [line for line in first.splitlines() if "error:" in line][:1]
    assert 'optim.cu(12): error: identifier "beta3"' in error_line
    assert first.index("beta3") < first.index("the build had:")
    assert "scikit-build-core" in out and "Python headers:" in out and "cmake" in out


def test_build_warnings_are_counted_and_listed_but_not_pip_notices(tmp_path):
    log = tmp_path / "build.log"
    log.write_text(
        "WARNING: Location 'file:///opt/pypi/simple/x/' is ignored: it is neither a file nor a dir\n"
        '  csrc/cuda/device.cu(7): warning #177-D: variable "unused" was declared but never referenced\n'
        "  csrc/bindings_cpu.cpp:31:9: warning: unused variable 'n' [-Wunused-variable]\n"
        "  [5/12] Linking CXX shared module _C.so\n")
    out = script_function("report_warnings", str(log), out=tmp_path)
    assert "2 compiler warning(s)" in out and "#177-D" in out and "-Wunused-variable" in out
    assert "Location" not in out
    clean = tmp_path / "clean.log"
    clean.write_text("  [5/12] Linking CXX shared module _C.so\n")
    assert "no compiler warnings" in script_function("report_warnings", str(clean), out=tmp_path)


def test_run_first_puts_the_telling_cuda_tests_first():
    from tests import run_first

    order = ["tests/test_func.py::test_a", "tests/test_cuda.py::test_op_on_cuda_matches_cpu[x]",
             "tests/test_native_kernels.py::test_b", "tests/test_cuda.py::test_fused_kernel_on_cuda[y]",
             "tests/test_cupy_semantics.py::test_c", "tests/test_devices.py::test_d"]
    items = [SimpleNamespace(nodeid=nodeid) for nodeid in order]
    run_first.pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [order[4], order[2], order[3], order[1], order[0],
                                               order[5]]
