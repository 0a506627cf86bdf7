#!/usr/bin/env bash
# Checks gpugrad on a GPU machine in one command (DESIGN.md, "Checking on a real GPU"):
# prints the GPU and tool versions, builds and installs gpugrad with its CUDA module (a
# non-editable install, warnings printed but not errors), runs the `cuda` tests (the most
# telling first, on every core with pytest-xdist when it is there), gg.distributed's NCCL
# backend on one rank, then the GPU benchmarks against torch, and leaves gpu_check.log,
# steps.tsv, gpu_env.json, pytest_cuda.xml, nccl_check.json, gpu_kernels.json, gpu_mlp.json and
# gpu_summary.md in $OUT (default ./gpu-results; 8 files, as many as the device tool brings
# back: a new result belongs in one of them). Needs no network; about 5 minutes on an H100,
# under 8 by its own clock (each step gets a share of GPU_CHECK_BUDGET seconds, default 465, and
# prints its wall time). A failed step is recorded and the next one still runs: a failed CUDA
# build says why, and the CuPy paths still get checked.
#
#   bash scripts/gpu_check.sh
#   OUT=/tmp/gpu-results GPU_CHECK_CUDA_ARCH=default bash scripts/gpu_check.sh
#   GPU_CHECK_FAKE=1 bash scripts/gpu_check.sh     # the rehearsal, on a machine with no GPU
#
# The rehearsal runs every step in its order on the fake GPU (tests/fake_cupy, with the CUDA
# simulator's build of csrc/cuda as gpugrad._cuda): the real build (into a throwaway virtual
# environment that sees $PYTHON's packages, so your own gpugrad install stays), the same tests
# and the benchmarks at small sizes, and the same files in $OUT, marked as a rehearsal.
# Other settings: PYTHON (default python3), GPU_CHECK_PYTEST_WORKERS (default: every core),
# GPU_CHECK_BUILD_DIR (default $REPO/build/gpu-check: a rerun rebuilds only what changed),
# GPU_CHECK_TIME_SCALE (multiplies every time limit; 3 in the rehearsal).
set -euo pipefail
export PYTHONUNBUFFERED=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FAKE=${GPU_CHECK_FAKE:-0}
[[ $FAKE =~ ^[01]$ ]] || FAKE=1
OUT=${OUT:-./gpu-results}
PYTHON=${PYTHON:-python3}
BUILD_ROOT=${GPU_CHECK_BUILD_DIR:-$REPO/build/gpu-check}
TIME_SCALE=${GPU_CHECK_TIME_SCALE:-$((FAKE ? 3 : 1))}
BUDGET=${GPU_CHECK_BUDGET:-$((465 * TIME_SCALE))}
# the rehearsal's benchmarks run small: the fake GPU is NumPy and a CPU simulator
KERNEL_BENCH_ARGS=""
MLP_BENCH_ARGS=""
if ((FAKE)); then
  KERNEL_BENCH_ARGS="--log2-elements 12 --warmup 1 --repeats 2"
  MLP_BENCH_ARGS="--configs 784-512-512-10 --warmup 1 --repeat-scale 0.1"
fi
STEPS=""
RUN_DIR=""
export REPO FAKE OUT PYTHON BUILD_ROOT KERNEL_BENCH_ARGS MLP_BENCH_ARGS

failed=0

seconds_left() {
  echo $((BUDGET - SECONDS))
}

# step NAME CAP RESERVE FUNCTION [ARGS]: run FUNCTION (exported, in a child bash with errexit)
# under `timeout`, at most CAP seconds and never into the RESERVE seconds kept for the steps
# after it (both times TIME_SCALE); record its status and wall time, and never fail the script.
step() {
  local name=$1 cap=$(($2 * TIME_SCALE)) reserve=$(($3 * TIME_SCALE))
  shift 3
  local limit rc=0 started=$SECONDS
  limit=$(($(seconds_left) - reserve))
  ((limit > cap)) && limit=$cap
  printf '\n==== %s (limit %ss, %ss used of %ss) ====\n' "$name" "$limit" "$SECONDS" "$BUDGET"
  if ((limit < 10)); then
    echo "skipped: out of time"
    printf '%s\t%s\t%s\n' "$name" "skipped (out of time)" 0 >>"$STEPS"
    failed=1
    return 0
  fi
  # SIGINT first: pytest and the benchmarks stop cleanly and keep what they have written
  timeout --signal=INT --kill-after=15 "$limit" bash -c 'set -euo pipefail; "$@"' step "$@" ||
    rc=$?
  ((rc == 124)) && echo "timed out after ${limit}s"
  printf '%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - started)) >>"$STEPS"
  printf '==== %s: exit %s after %ss ====\n' "$name" "$rc" $((SECONDS - started))
  ((rc == 0)) || failed=1
  return 0
}

last_step_ok() {
  [ "$(tail -1 "$STEPS" | cut -f2)" = "0" ]
}

# py ARGS: Python as this run needs it; in the rehearsal through tests/fake_cupy/run.py, which
# puts the fake CuPy and the simulator's gpugrad._cuda in place first (from $RUN_DIR's copy of
# tests/, so run it there). `py - <<'PY'` runs a here-document.
py() {
  if ((FAKE)); then
    "$PYTHON" -m tests.fake_cupy.run "$@"
  else
    "$PYTHON" "$@"
  fi
}

show_gpu() {
  if ((FAKE)); then
    echo "rehearsal: no nvidia-smi; the fake GPU's properties instead"
    cd "$RUN_DIR"
    py - <<'PY'
import cupy

props = cupy.cuda.runtime.getDeviceProperties(0)
print("name, compute_cap, memory.total [MiB]")
print(f"{props['name'].decode()}, {props['major']}.{props['minor']}, {props['totalGlobalMem'] >> 20}")
PY
    return 0
  fi
  nvidia-smi
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.sm \
    --format=csv || true
}

# What the build needs, found or not: printed before the build and again when it fails.
build_tools() {
  echo "CUDACXX=${CUDACXX:-} CMAKE_ARGS=${CMAKE_ARGS:-} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-}"
  if command -v nvcc >/dev/null; then nvcc --version | tail -2; else echo "nvcc: not on PATH"; fi
  if command -v cmake >/dev/null; then cmake --version | head -1; else echo "cmake: not on PATH"; fi
  if command -v ninja >/dev/null; then echo "ninja $(ninja --version)"; else echo "ninja: not on PATH"; fi
  "${CXX:-g++}" --version 2>/dev/null | head -1 || echo "${CXX:-g++}: not found"
  "$PYTHON" - <<'PY'
import importlib.metadata as metadata
import os
import sys
import sysconfig

print("Python", sys.version.split()[0], "at", sys.executable)
for name in ("numpy", "torch", "pybind11", "scikit-build-core", "cmake", "ninja", "pytest",
             "pytest-xdist"):
    try:
        print(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}: not installed (as a Python package)")
include = sysconfig.get_paths()["include"]
found = os.path.isfile(os.path.join(include, "Python.h"))
print(f"Python headers: {include}:",
      "Python.h found" if found else "NO Python.h (the build cannot compile a Python module)")
PY
}

show_versions() {
  build_tools
  cd "$RUN_DIR"
  py "$REPO/benchmarks/gpu_env.py" --out "$OUT/gpu_env.json"
}

# A build's compiler warnings, counted and listed (they are not errors here: GPUGRAD_WERROR=OFF).
WARNING_LINE='(\): warning #|:[0-9]+(:[0-9]+)?: warning:|nvcc warning|CMake Warning)'
report_warnings() {
  local log=$1 count
  count=$(grep -cE "$WARNING_LINE" "$log" || true)
  if ((count == 0)); then
    echo "---- no compiler warnings ----"
    return 0
  fi
  echo "---- ${count} compiler warning(s): not errors in this build (GPUGRAD_WERROR=OFF); CI's are ----"
  grep -E -A2 "$WARNING_LINE" "$log" | head -80
}

# Why a build failed: its first error with some context, then the tools it had.
diagnose_build() {
  local log=$1
  echo "---- why the build failed ----"
  echo "first error:"
  grep -n -m1 -E -B3 -A8 '(error( #[0-9A-Za-z-]+)?:|CMake Error|fatal error|ERROR: )' "$log" ||
    echo "  no error line found: read the build output above"
  echo "the build had:"
  build_tools
}

install_gpugrad() { # MODE: ON (the CUDA module must build) or OFF (CPU kernels only)
  local mode=$1 log="$RUN_DIR/build-$1.log" rc=0
  cd "$REPO"
  # GPUGRAD_WERROR=OFF: a warning CI's compiler never gave must not cost this run its _cuda
  GPUGRAD_CUDA=$mode GPUGRAD_WERROR=OFF "$PYTHON" -m pip install --no-build-isolation --no-deps \
    --no-index --force-reinstall -v --config-settings=build-dir="$BUILD_ROOT/$mode" . 2>&1 |
    tee "$log" || rc=$?
  report_warnings "$log"
  ((rc == 0)) || diagnose_build "$log"
  return "$rc"
}

show_install() {
  cd "$RUN_DIR"
  py - <<'PY'
import os

import gpugrad
from gpugrad.backend import cuda_kernels
print("gpugrad imported from", gpugrad.__file__)
if os.path.realpath(gpugrad.__file__).startswith(os.path.realpath(os.environ["REPO"]) + os.sep):
    print("WARNING: this is the source tree (an editable install or PYTHONPATH), not the wheel")
print("backend_info:", gpugrad.backend_info())
ext = cuda_kernels.native()
print("gpugrad._cuda:", ext, "|", cuda_kernels.native_unavailable_reason() or "in use")
if ext is not None:
    print("  kernels:", ", ".join(ext.kernel_names()), "| devices:", ext.device_count())
if os.environ["FAKE"] == "1":  # the fake put the simulator's build in _cuda's place
    built = [f for f in os.listdir(os.path.dirname(gpugrad.__file__)) if f.startswith("_cuda")]
    print("rehearsal: the simulator stands in for the installed", built or "(no _cuda built)")
PY
}

run_tests() {
  cd "$RUN_DIR"
  local files workers suite args=()
  mapfile -t files < <(grep -l 'mark\.cuda' tests/test_*.py)
  echo "test files with cuda tests: ${files[*]}"
  # tests/run_first.py: CuPy's contract, the native kernels, the GPU conditions, the fused kernels
  # at each level, then the op table, before everything else
  args+=(-p tests.run_first)
  ((FAKE)) && args+=(-p tests.fake_cupy.plugin)
  workers=${GPU_CHECK_PYTEST_WORKERS:-$(nproc)}
  if ((workers > 1)) && "$PYTHON" -c "import xdist" 2>/dev/null; then
    args+=(-n "$workers")
    echo "pytest-xdist: $workers workers"
  else
    echo "one pytest process (pytest-xdist not importable, or GPU_CHECK_PYTEST_WORKERS=1)"
  fi
  suite=$("$PYTHON" -c 'import json, sys; sys.path.insert(0, sys.argv[1]); from gpu_env import one_line
print(one_line(json.load(open(sys.argv[2]))))' "$REPO/benchmarks" "$OUT/gpu_env.json" 2>/dev/null ||
    echo "versions unknown (no gpu_env.json)")
  # --maxfail rather than -x, and high: one broken kernel fails dozens of parametrized cases, and
  # one GPU run should report every broken kernel
  "$PYTHON" -m pytest "${files[@]}" -m cuda "${args[@]}" -q -rs --maxfail=300 -p no:cacheprovider \
    --continue-on-collection-errors --durations=15 --junitxml="$OUT/pytest_cuda.xml" \
    -o junit_suite_name="gpugrad cuda tests: $suite"
}

check_nccl() {
  cd "$RUN_DIR"
  py "$REPO/scripts/gpu_check_nccl.py" --out "$OUT/nccl_check.json"
}

bench_kernels() {
  cd "$RUN_DIR"
  # shellcheck disable=SC2086 # the arguments are words
  py "$REPO/benchmarks/gpu_kernels.py" --out "$OUT/gpu_kernels.json" $KERNEL_BENCH_ARGS
}

bench_mlp() {
  cd "$RUN_DIR"
  # shellcheck disable=SC2086
  py "$REPO/benchmarks/gpu_mlp.py" --out "$OUT/gpu_mlp.json" \
    --summary "$OUT/gpu_summary.md" --kernels-json "$OUT/gpu_kernels.json" $MLP_BENCH_ARGS
}

export -f py show_gpu build_tools show_versions report_warnings diagnose_build install_gpugrad \
  show_install run_tests check_nccl bench_kernels bench_mlp
export WARNING_LINE

# The rehearsal installs into a throwaway virtual environment whose Python sees $PYTHON's
# packages (a .pth file), as the GPU machine's environment holds everything already; so a
# developer's own (editable) gpugrad is neither replaced nor imported.
rehearsal_python() {
  local venv="$RUN_DIR/venv" site
  "$PYTHON" -m venv --without-pip "$venv"
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PYTHON" -c 'import sys
print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
    >"$site/gpu-check-rehearsal.pth"
  echo "$venv/bin/python"
}

main() {
  OUT=$(cd "$OUT" && pwd)
  STEPS="$OUT/steps.tsv"
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gpugrad-check-XXXXXX")
  export OUT RUN_DIR
  echo "gpugrad GPU check: $(date -Is) on $(hostname); repo $REPO; results in $OUT"
  printf 'step\texit\tseconds\n' >"$STEPS"
  # Python runs in $RUN_DIR, away from the source tree, so `import gpugrad` finds the installed
  # package (with its compiled _C and _cuda), not the bare sources in $REPO/gpugrad; the tests
  # run from a copy there (`from tests.opinfo import OPS` resolves in it)
  cp -r "$REPO/tests" "$REPO/pyproject.toml" "$RUN_DIR/"
  if ((FAKE)); then
    echo "REHEARSAL on the fake GPU (GPU_CHECK_FAKE=1): no GPU is used and timings mean nothing"
    cp -r "$REPO/csrc" "$RUN_DIR/"  # tests/cuda_sim builds gpugrad._cuda's stand-in from it
    export GG_CUDA_SIM_CACHE=${GG_CUDA_SIM_CACHE:-$REPO/build/cuda_sim}  # built once, reused
    PYTHON=$(rehearsal_python)
    export PYTHON
    echo "rehearsal Python: $PYTHON (a throwaway environment seeing the packages of $("$PYTHON" -c 'import sys; print(sys.base_prefix)') and yours)"
  fi
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  # build the CUDA module for this GPU only (halves the compile); "default" keeps CMakeLists'
  local arch=${GPU_CHECK_CUDA_ARCH:-}
  if [ -z "$arch" ] && ((FAKE)); then
    arch=90 # the fake GPU is an sm_90
  elif [ -z "$arch" ]; then
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 |
      tr -d '. ' || true)
  fi
  if [[ $arch =~ ^[0-9]+$ ]]; then
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CUDA_ARCHITECTURES=$arch"
    echo "CUDA architecture: sm_$arch (CMAKE_ARGS=$CMAKE_ARGS)"
  fi
  if ((FAKE)); then
    # pybind11's link-time optimization costs the rehearsal a minute of linking on two cores, and
    # CI's own install already links with it
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF"
  fi
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

  step "nvidia-smi" 30 420 show_gpu
  step "versions" 60 400 show_versions
  step "build + install (GPUGRAD_CUDA=ON)" 300 160 install_gpugrad ON
  if ! last_step_ok; then
    echo "the CUDA build failed (why: above): installing without it, so the CuPy paths still get checked"
    step "build + install (GPUGRAD_CUDA=OFF, fallback)" 150 150 install_gpugrad OFF
    if ! last_step_ok; then
      echo "no install worked: running from the source tree (NumPy and CuPy paths only)"
      export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    fi
  fi
  step "import gpugrad" 60 150 show_install
  step "pytest -m cuda" 260 100 run_tests # CuPy compiles each new kernel with NVRTC: a fresh machine needs time
  step "NCCL: 1-rank group, collectives + a DDP step" 40 60 check_nccl
  step "benchmark: fused kernels" 90 55 bench_kernels
  step "benchmark: MLP step vs torch" 150 5 bench_mlp

  printf '\n==== summary (%ss) ====\n' "$SECONDS"
  column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"
  [ -f "$OUT/gpu_summary.md" ] && cat "$OUT/gpu_summary.md"
  ((FAKE)) && echo "(a REHEARSAL on the fake GPU: the plumbing works; nothing here was measured)"
  echo "results: $OUT"
  rm -rf "$RUN_DIR"
  return "$failed"
}

# sourced (the tests call single functions), it only defines them
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  mkdir -p "$OUT"
  main "$@" 2>&1 | tee "$OUT/gpu_check.log"
fi
