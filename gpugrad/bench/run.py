"""`python -m gpugrad bench`: the CPU benchmark cases against torch, at each thread setting
asked for, written to DIR/bench-cpu-<date>.json and .md (DIR: --out, default the current
folder). `--profile mlp|mlp-small|overhead` prints where gpugrad's time goes instead."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from gpugrad.bench import (
    cases_kernels,
    cases_memory,
    cases_mlp,
    cases_ops,
    cases_overhead,
    harness,
)

CASES = {
    "mlp": cases_mlp,
    "kernels": cases_kernels,
    "ops": cases_ops,
    "overhead": cases_overhead,
    "memory": cases_memory,
}
ONCE = {"memory"}  # bytes saved do not depend on threads: measured at the first setting only
PROFILE_CHAIN = 15  # ops in the profiled chain of 1-element tensors
SETTLE_S = 0.15  # pause before each sample with several threads (harness.Settings.settle_s)


def thread_settings(text: str) -> list[int | None]:
    """'default,1' -> [None, 1]: 'default' is what a user gets without setting anything."""
    settings: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "default":
            settings.append(None)
        elif part.isdigit() and int(part) >= 1:
            settings.append(int(part))
        else:
            raise argparse.ArgumentTypeError(
                f"expected 'default' or a count >= 1 (comma-separated), got {part!r}"
            )
    if not settings:
        raise argparse.ArgumentTypeError("no thread setting given")
    return settings


def parse_args(argv, prog: str = "python -m gpugrad bench", default_out: Path | None = None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
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
        type=thread_settings,
        default=[None],
        help="thread settings to run, comma-separated: 'default' (gpugrad's and numpy's BLAS "
        "defaults, torch matching BLAS) or N (gg.set_num_threads(N), torch.set_num_threads(N)); "
        "e.g. default,1 (default: default)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out,
        help=f"output folder (default: {default_out or 'the current folder'})",
    )
    parser.add_argument(
        "--profile",
        choices=("mlp", "mlp-small", "overhead"),
        default=None,
        help="cProfile gpugrad's MLP step (784-512-512-10 b128 relu; mlp-small: 64-128-128-10 "
        f"b64) or a chain of {PROFILE_CHAIN} ops on 1-element tensors, forward + backward",
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.cases = cases
    if args.out is None:
        args.out = Path.cwd()
    return args


def main(argv=None, prog: str = "python -m gpugrad bench", default_out: Path | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, prog, default_out)
    if args.profile:
        return profile(args.profile, args.threads[0])
    try:
        import threadpoolctl  # noqa: F401  (the harness reads and sets BLAS threads through it)
        import torch
    except ImportError as exc:
        print(
            f"gpugrad bench: {exc.name} is not installed (pip install 'gpugrad[bench]')",
            file=sys.stderr,
        )
        return 2
    base = harness.QUICK if args.quick else harness.Settings()
    base = dataclasses.replace(base, repeats=args.repeats)
    threads = harness.Threads(torch)
    env = harness.environment(torch)
    env["threads"] = []
    started = time.perf_counter()
    results = []
    for k, setting in enumerate(args.threads):
        record = threads.apply(setting)
        env["threads"].append(record)
        several = record["gpugrad_threads"] > 1 or (record["numpy_blas_threads"] or 1) > 1
        settings = dataclasses.replace(
            base, threads=setting, settle_s=SETTLE_S if several and not args.quick else 0.0
        )
        record["settle_s"] = settings.settle_s
        print(
            f"gpugrad bench (CPU), threads {record['requested']}: gpugrad "
            f"{record['gpugrad_threads']}, numpy BLAS {record['numpy_blas_threads']}, torch "
            f"{record['torch_threads']}; cases {','.join(args.cases)}",
            flush=True,
        )
        for name in args.cases:
            if name in ONCE and k > 0:
                continue
            case_started = time.perf_counter()
            rows = CASES[name].run(torch, settings)
            results += rows
            print(
                f"  {name}: {len(rows)} rows in {time.perf_counter() - case_started:.1f} s",
                flush=True,
            )
    threads.apply(None)
    doc = harness.report(env, base, results, time.perf_counter() - started)
    json_path, md_path = harness.write(doc, args.out)
    print(harness.markdown(doc))
    print(f"wrote {json_path} and {md_path}")
    return 0


def profile(what: str, threads: int | None = None, calls: int = 200, top: int = 30) -> int:
    """cProfile `calls` gpugrad calls after a warm-up; print the top functions by tottime."""
    import cProfile
    import pstats

    import gpugrad as gg

    if threads is not None:
        gg.set_num_threads(threads)
    if what in ("mlp", "mlp-small"):
        sizes, batch = ((784, 512, 512, 10), 128) if what == "mlp" else ((64, 128, 128, 10), 64)
        params, x, y = cases_mlp.make_problem(sizes, batch)
        fn = cases_mlp.GpugradEngineMLP(params, x, y, "relu").step
        label = f"gpugrad MLP step {'-'.join(map(str, sizes))} b{batch} relu (engine only)"
    else:
        fn = cases_overhead.gpugrad_fns(PROFILE_CHAIN)["forward+backward"]
        label = f"gpugrad {PROFILE_CHAIN} adds/muls on 1-element tensors, forward+backward"
    for _ in range(5):
        fn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    print(f"{label}: {calls} calls, {gg.get_num_threads()} threads")
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
