"""Command line: run the CPU benchmark cases against torch and write DIR/bench-cpu-<date>.json
and .md. `python -m benchmarks.run [--quick] [--cases mlp,ops,overhead,memory] [--repeats N]
[--out DIR]`; `--profile mlp|overhead` prints where gpugrad's time goes instead."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from benchmarks import cases_memory, cases_mlp, cases_ops, cases_overhead, harness

CASES = {"mlp": cases_mlp, "ops": cases_ops, "overhead": cases_overhead, "memory": cases_memory}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke test)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="fixed rounds per comparison (default: time budget)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="set numpy's BLAS, OpenMP and torch to N threads (default: torch matches numpy's BLAS)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--profile",
        choices=("mlp", "overhead"),
        default=None,
        help="cProfile gpugrad's MLP step (784-512-512-10 b128 relu) or the 1-element chain",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    for flag in ("repeats", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    args.cases = cases
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.profile:
        return profile(args.profile, args.threads)
    try:
        import threadpoolctl  # noqa: F401  (harness reads numpy's BLAS threads through it)
        import torch
    except ImportError as exc:
        print(
            f"benchmarks: {exc.name} is not installed (pip install 'gpugrad[bench]')",
            file=sys.stderr,
        )
        return 2
    settings = harness.QUICK if args.quick else harness.Settings()
    settings = dataclasses.replace(settings, repeats=args.repeats, threads=args.threads)
    threads = harness.match_threads(torch, settings.threads)
    env = harness.environment(torch)
    env["threads"] = threads
    print(
        f"gpugrad bench (CPU): numpy BLAS {threads['numpy_blas_threads']} threads, "
        f"torch {threads['torch_threads']} threads; cases {','.join(args.cases)}",
        flush=True,
    )
    started = time.perf_counter()
    results = []
    for name in args.cases:
        case_started = time.perf_counter()
        rows = CASES[name].run(torch, settings)
        results += rows
        print(
            f"  {name}: {len(rows)} rows in {time.perf_counter() - case_started:.1f} s", flush=True
        )
    doc = harness.report(env, settings, results, time.perf_counter() - started)
    json_path, md_path = harness.write(doc, args.out)
    print(harness.markdown(doc))
    print(f"wrote {json_path} and {md_path}")
    return 0


def profile(what: str, threads: int | None = None, calls: int = 50, top: int = 25) -> int:
    """cProfile `calls` gpugrad calls after a warm-up; print the top functions by tottime."""
    import cProfile
    import pstats

    if threads is not None:
        from threadpoolctl import threadpool_limits

        from gpugrad.backend import kernels

        kernels.native_cpu()
        threadpool_limits(limits=threads)

    if what == "mlp":
        params, x, y = cases_mlp.make_problem((784, 512, 512, 10), 128)
        fn = cases_mlp.GpugradEngineMLP(params, x, y, "relu").step
        label = "gpugrad MLP step 784-512-512-10 b128 relu (engine only)"
    else:
        fn = cases_overhead.gpugrad_fns()["forward+backward"]
        label = (
            f"gpugrad {cases_overhead.FULL_CHAIN} adds/muls on 1-element tensors, forward+backward"
        )
    for _ in range(5):
        fn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    print(f"{label}: {calls} calls")
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
