"""Bandwidth of gpugrad's memory-bound CUDA kernels, as a fraction of a measured device copy.

Every fused kernel runs on 2**26-element float32 arrays at each level: "native" (gpugrad._cuda),
"cupy" (the CuPy fallback kernels) and "reference" (plain CuPy array expressions). Each call is
timed with CUDA events after a warm-up; the median of the repeats counts. Achieved GB/s = the
bytes a kernel must read and write once / time; the ceiling is a device-to-device copy of one
such array (bytes read + written), measured the same way. Arrays are 256 MiB, far larger than
L2, so no input rotation is needed. Writes JSON (--out); every result row names the GPU, driver,
CUDA, CuPy and torch versions (gpu_env.py). Without a usable GPU it prints why, writes
{"skipped": true, ...} and exits 0.

    python benchmarks/gpu_kernels.py --out gpu-results/gpu_kernels.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback

import numpy as np
from gpu_env import one_line, versions  # this script's folder is on sys.path

SCHEMA = "gpugrad.gpu_kernels/1"
LEVELS = ("native", "cupy", "reference")


def cuda_unavailable_reason() -> str | None:
    """None when CuPy imports and sees a GPU, else why not (never raises)."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as exc:  # noqa: BLE001 - no CuPy, no driver, no device: all mean "skip"
        return f"{type(exc).__name__}: {exc}"
    return None


def run_header(schema: str) -> dict:
    """What every GPU benchmark document starts with: schema, date, host and Python."""
    return {"schema": schema, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": platform.node(), "python": sys.version.split()[0]}


def write_json(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, default=str)
    os.replace(tmp, path)


def timed(cp, fn, warmup: int, repeats: int) -> dict:
    """Median / min milliseconds of fn() on the GPU, from CUDA events around each call."""
    for _ in range(warmup):
        fn()
    cp.cuda.runtime.deviceSynchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "repeats": repeats}


def copy_ceiling(cp, n: int, warmup: int, repeats: int) -> dict:
    """Device-to-device copy bandwidth of one n-element float32 array (read + write bytes)."""
    src = cp.random.standard_normal(n, dtype=cp.float32)
    dst = cp.empty_like(src)
    nbytes = src.nbytes
    memcpy = timed(cp, lambda: dst.data.copy_from_device_async(src.data, nbytes), warmup, repeats)
    copyto = timed(cp, lambda: cp.copyto(dst, src), warmup, repeats)
    out = {"bytes": 2 * nbytes}
    for name, t in (("memcpy", memcpy), ("copyto", copyto)):
        out[f"{name}_median_ms"] = t["median_ms"]
        out[f"{name}_gbps"] = 2 * nbytes / (t["median_ms"] * 1e-3) / 1e9
    out["ceiling_gbps"] = max(out["memcpy_gbps"], out["copyto_gbps"])
    return out


def kernel_cases(cp, kernels, n: int):
    """(name, bytes moved once, call) for every fused kernel on n float32 elements."""
    f32 = cp.float32
    cp.random.seed(0)

    def normal(*shape):
        return cp.random.standard_normal(shape, dtype=f32)

    x, g = normal(n), normal(n)
    y = kernels.sigmoid_fwd(x)
    _, mask = kernels.relu_fwd(x)
    mask_bytes = mask.nbytes
    wide_cols = 4096  # bias_act: (n / 4096, 4096); softmax_xent: (n / 1024, 1024)
    xb, gb = x.reshape(-1, wide_cols), g.reshape(-1, wide_cols)
    bias = normal(wide_cols)
    yb = kernels.bias_act_fwd(xb, bias, "relu")
    xs = x.reshape(-1, 1024)
    rows = xs.shape[0]
    target = cp.asarray(np.random.default_rng(0).integers(0, 1024, rows))
    flag = kernels.bad_target_flag(xs)
    _, lse = kernels.softmax_xent_fwd(xs, target, -100, flag)
    scale = cp.full(rows, 1.0 / rows, dtype=f32)
    p, buf, m, v = normal(n), cp.zeros(n, f32), cp.zeros(n, f32), cp.zeros(n, f32)
    word = 4 * n
    return [
        ("sigmoid_fwd", 2 * word, lambda: kernels.sigmoid_fwd(x)),
        ("sigmoid_bwd", 3 * word, lambda: kernels.sigmoid_bwd(y, g)),
        ("tanh_fwd", 2 * word, lambda: kernels.tanh_fwd(x)),
        ("tanh_bwd", 3 * word, lambda: kernels.tanh_bwd(y, g)),
        ("relu_fwd", 2 * word + mask_bytes, lambda: kernels.relu_fwd(x)),
        ("relu_bwd", 2 * word + mask_bytes, lambda: kernels.relu_bwd(g, mask)),
        ("bias_act_fwd_relu", 2 * word, lambda: kernels.bias_act_fwd(xb, bias, "relu")),
        ("bias_act_bwd_relu", 3 * word, lambda: kernels.bias_act_bwd(yb, gb, "relu")),
        ("softmax_xent_fwd", word + 16 * rows,
         lambda: kernels.softmax_xent_fwd(xs, target, -100, flag)),
        ("softmax_xent_bwd", 2 * word + 24 * rows,
         lambda: kernels.softmax_xent_bwd(xs, target, lse, scale)),
        ("sgd_step_momentum", 5 * word,
         lambda: kernels.sgd_step(p, g, buf, kernels.sgd_hyper(1e-6, 0.9, 0.0, 0.0, False, False))),
        ("adam_step", 7 * word,
         lambda: kernels.adam_step(p, g, m, v,
                                   kernels.adam_hyper(1e-6, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001, False))),
        *optimizer_step_cases(cp, kernels, n),
    ]


def optimizer_step_cases(cp, kernels, n: int):
    """The other optimizers' steps at their defaults (the CPU benchmark's arguments, made on the
    GPU): p and each state buffer read and written, g read."""
    from gpugrad.bench import cases_kernels

    cases = []
    for name in ("rmsprop_step", "adagrad_step", "adadelta_step", "adamax_step", "nadam_step",
                 "radam_step"):
        *arrays, hyper = cases_kernels.step_arguments(
            name, lambda: cp.random.standard_normal(n, dtype=cp.float32))
        words = 2 * sum(a is not None for a in arrays) - 1
        cases.append((name, words * 4 * n,
                      lambda name=name, arrays=arrays, hyper=hyper:
                      getattr(kernels, name)(*arrays, hyper)))
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("gpu-results", "gpu_kernels.json"))
    parser.add_argument("--log2-elements", type=int, default=26)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--levels", default=",".join(LEVELS))
    args = parser.parse_args(argv)
    doc = run_header(SCHEMA)

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"CUDA not available: skipped ({reason})")
        write_json(args.out, {**doc, "skipped": True, "reason": reason})
        return 0

    import cupy as cp

    import gpugrad as gg
    from gpugrad.backend import cuda_kernels, kernels

    n = 1 << args.log2_elements
    native_reason = cuda_kernels.native_unavailable_reason()
    env = versions()
    doc.update({
        "skipped": False,
        "versions": env,
        "device": gg.cuda.get_device_name(),
        "cupy": cp.__version__,
        "gpugrad_file": gg.__file__,
        "backend_info": gg.backend_info(),
        "native_unavailable_reason": native_reason,
        "elements": n,
        "dtype": "float32",
        "warmup": args.warmup,
        "repeats": args.repeats,
        "timing": "CUDA events around each call (includes Python dispatch), median of repeats",
    })
    print(f"gpugrad from {gg.__file__}; n = 2**{args.log2_elements}; {one_line(env)}")
    if native_reason:
        print(f"native level unavailable: {native_reason}")

    started = time.perf_counter()
    doc["copy"] = copy_ceiling(cp, n, args.warmup, args.repeats)
    ceiling = doc["copy"]["ceiling_gbps"]
    print(f"copy ceiling: {ceiling:.0f} GB/s (memcpy {doc['copy']['memcpy_gbps']:.0f}, "
          f"copyto {doc['copy']['copyto_gbps']:.0f})")
    results = doc["results"] = []
    write_json(args.out, doc)  # partial results survive a timeout
    try:
        cases = kernel_cases(cp, kernels, n)
    except Exception as exc:  # noqa: BLE001 - record and stop: nothing to time
        doc["error"] = f"setting up the inputs failed: {type(exc).__name__}: {exc}"
        traceback.print_exc()
        write_json(args.out, doc)
        return 1
    print(f"{'kernel':<20} {'level':<10} {'median ms':>10} {'GB/s':>8} {'of copy':>8}")
    for name, nbytes, call in cases:
        for level in args.levels.split(","):
            row = {"kernel": name, "level": level, "bytes": nbytes, "versions": env}
            if level == "native" and native_reason:
                row["skipped"] = native_reason
                results.append(row)
                continue
            try:
                with kernels.use(level):
                    t = timed(cp, call, args.warmup, args.repeats)
            except Exception as exc:  # noqa: BLE001 - one broken kernel must not hide the rest
                row["error"] = f"{type(exc).__name__}: {exc}"
                print(f"{name:<20} {level:<10} ERROR {row['error']}")
                results.append(row)
                continue
            gbps = nbytes / (t["median_ms"] * 1e-3) / 1e9
            row.update(t, gbps=gbps, fraction_of_copy=gbps / ceiling)
            results.append(row)
            print(f"{name:<20} {level:<10} {t['median_ms']:>10.3f} {gbps:>8.0f} "
                  f"{gbps / ceiling:>8.1%}")
        write_json(args.out, doc)
    doc["seconds"] = time.perf_counter() - started
    write_json(args.out, doc)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
