"""`python -m gpugrad <command>` and the `gpugrad` console script: train | bench."""

from __future__ import annotations

import argparse
import sys


def bench(argv: list[str]) -> int:
    """gpugrad vs torch on the CPU (gpugrad.bench.run.main; it needs torch and threadpoolctl)."""
    from gpugrad.bench import run as bench_run

    status = bench_run.main(argv)
    return 0 if status is None else int(status)


def build_parser() -> argparse.ArgumentParser:
    from gpugrad.cli import train

    parser = argparse.ArgumentParser(
        prog="gpugrad",
        description="gpugrad: train an MLP on a real dataset, or run the benchmarks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{train,bench}")
    commands.required = True
    train_parser = commands.add_parser(
        "train",
        help="train an MLP on scikit-learn's digits (GPU when usable)",
        description=train.DESCRIPTION,
    )
    train.add_arguments(train_parser)
    train_parser.set_defaults(handler=lambda args: train.run(args, train_parser))
    commands.add_parser(
        "bench",
        help="gpugrad vs PyTorch on the CPU (needs 'gpugrad[bench]'; "
        "`gpugrad bench --help` lists the options)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":  # its options belong to gpugrad.bench.run
        return bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
