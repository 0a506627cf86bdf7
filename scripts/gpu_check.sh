#!/usr/bin/env bash
# Checks gpugrad on a GPU machine in one command (DESIGN.md, "Checking on a real GPU"):
# prints the GPU and tool versions, builds and installs gpugrad with its CUDA module (a
# non-editable install), runs the `cuda` tests, then the GPU benchmarks against torch, and
# leaves gpu_check.log, steps.tsv, pytest_cuda.xml, gpu_kernels.json, gpu_mlp.json and
# gpu_summary.md in $OUT (default ./gpu-results). Needs no network; about 5 minutes on an H100,
# under 8 by its own clock (each step gets a share of GPU_CHECK_BUDGET seconds, default 465).
# A failed step is recorded and the next one still runs, so partial results survive.
#
#   bash scripts/gpu_check.sh
#   OUT=/tmp/gpu-results GPU_CHECK_CUDA_ARCH=default bash scripts/gpu_check.sh
set -euo pipefail
export PYTHONUNBUFFERED=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-./gpu-results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log"
STEPS="$OUT/steps.tsv"
BUDGET=${GPU_CHECK_BUDGET:-465}
PYTHON=${PYTHON:-python}
# Python runs from here, away from the source tree, so `import gpugrad` finds the installed
# package (with its compiled _C and _cuda), not the bare sources in $REPO/gpugrad.
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gpugrad-check-XXXXXX")
export REPO OUT PYTHON RUN_DIR

failed=0

seconds_left() {
  echo $((BUDGET - SECONDS))
}

# step NAME CAP RESERVE FUNCTION [ARGS]: run FUNCTION (exported, in a child bash with errexit)
# under `timeout`, at most CAP seconds and never into the RESERVE seconds kept for the steps
# after it; record its status, and never fail the script.
step() {
  local name=$1 cap=$2 reserve=$3
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

show_gpu() {
  nvidia-smi
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.sm \
    --format=csv || true
}

show_versions() {
  "$PYTHON" --version
  command -v nvcc && nvcc --version | tail -2 || echo "nvcc: not on PATH"
  cmake --version | head -1 || true
  "$PYTHON" - <<'PY'
import importlib
for name in ("numpy", "cupy", "torch", "pybind11", "scikit_build_core", "pytest"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
try:
    import cupy
    print("cupy sees", cupy.cuda.runtime.getDeviceCount(), "device(s); CUDA runtime",
          cupy.cuda.runtime.runtimeGetVersion(), "driver", cupy.cuda.runtime.driverGetVersion())
    from cupy_backends.cuda.libs import nvrtc
    print("NVRTC", nvrtc.getVersion())
except Exception as exc:  # noqa: BLE001
    print("cupy / NVRTC problem:", type(exc).__name__, exc)
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as exc:  # noqa: BLE001
    print("torch problem:", type(exc).__name__, exc)
PY
}

install_gpugrad() { # MODE: ON (the CUDA module must build) or OFF (CPU kernels only)
  cd "$REPO"
  GPUGRAD_CUDA=$1 "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index \
    --force-reinstall -v .
}

show_install() {
  cd "$RUN_DIR"
  "$PYTHON" - <<'PY'
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
PY
}

run_tests() {
  # a copy of the tests: `from tests.opinfo import OPS` resolves here, gpugrad in site-packages
  rm -rf "$RUN_DIR/tests"
  cp -r "$REPO/tests" "$RUN_DIR/tests"
  cp "$REPO/pyproject.toml" "$RUN_DIR/pyproject.toml"
  cd "$RUN_DIR"
  local files
  mapfile -t files < <(grep -l 'mark\.cuda' tests/test_*.py)
  echo "test files with cuda tests: ${files[*]}"
  # --maxfail rather than -x: one GPU run should report every broken kernel, not the first
  "$PYTHON" -m pytest "${files[@]}" -m cuda -q -rs --maxfail=25 -p no:cacheprovider \
    --continue-on-collection-errors --durations=15 --junitxml="$OUT/pytest_cuda.xml"
}

bench_kernels() {
  cd "$RUN_DIR"
  "$PYTHON" "$REPO/benchmarks/gpu_kernels.py" --out "$OUT/gpu_kernels.json"
}

bench_mlp() {
  cd "$RUN_DIR"
  "$PYTHON" "$REPO/benchmarks/gpu_mlp.py" --out "$OUT/gpu_mlp.json" \
    --summary "$OUT/gpu_summary.md" --kernels-json "$OUT/gpu_kernels.json"
}

export -f show_gpu show_versions install_gpugrad show_install run_tests bench_kernels bench_mlp

main() {
  echo "gpugrad GPU check: $(date -Is) on $(hostname); repo $REPO; results in $OUT"
  printf 'step\texit\tseconds\n' >"$STEPS"
  mkdir -p "$RUN_DIR"
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  # build the CUDA module for this GPU only (halves the compile); "default" keeps CMakeLists'
  local arch=${GPU_CHECK_CUDA_ARCH:-}
  if [ -z "$arch" ]; then
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 |
      tr -d '. ' || true)
  fi
  if [[ $arch =~ ^[0-9]+$ ]]; then
    export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CUDA_ARCHITECTURES=$arch"
    echo "CUDA architecture: sm_$arch (CMAKE_ARGS=$CMAKE_ARGS)"
  fi
  export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

  step "nvidia-smi" 30 420 show_gpu
  step "versions" 60 400 show_versions
  step "build + install (GPUGRAD_CUDA=ON)" 300 160 install_gpugrad ON
  if [ "$(tail -1 "$STEPS" | cut -f2)" != "0" ]; then
    echo "the CUDA build failed: installing without it, so the CuPy fallback still gets checked"
    step "build + install (GPUGRAD_CUDA=OFF, fallback)" 150 150 install_gpugrad OFF
    if [ "$(tail -1 "$STEPS" | cut -f2)" != "0" ]; then
      echo "no install worked: running from the source tree (NumPy and CuPy paths only)"
      export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    fi
  fi
  step "import gpugrad" 60 150 show_install
  step "pytest -m cuda" 260 100 run_tests  # CuPy compiles each new kernel with NVRTC: a fresh machine needs time
  step "NCCL: 1-rank group, collectives + a DDP step" 40 60 bash -c 'cd "$RUN_DIR" && "$PYTHON" "$REPO/scripts/gpu_check_nccl.py" --out "$OUT/nccl_check.json"'
  step "benchmark: fused kernels" 90 55 bench_kernels
  step "benchmark: MLP step vs torch" 150 5 bench_mlp

  printf '\n==== summary (%ss) ====\n' "$SECONDS"
  column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"
  [ -f "$OUT/gpu_summary.md" ] && cat "$OUT/gpu_summary.md"
  echo "results: $OUT"
  rm -rf "$RUN_DIR"
  return "$failed"
}

main "$@" 2>&1 | tee "$LOG"
