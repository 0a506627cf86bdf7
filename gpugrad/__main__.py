"""`python -m gpugrad <command>` and the `gpugrad` console script: train | bench."""

from __future__ import annotations

import argparse
import os
import sys


def _find_benchmarks() -> None:
    """Put the source tree holding benchmarks/ on sys.path (cwd, or the checkout this package
    was imported from), so the console script finds them too."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (os.getcwd(), package_root):
        if os.path.isfile(os.path.join(root, "benchmarks", "run.py")) and root not in sys.path:
            sys.path.insert(0, root)
            return


def bench(argv: list[str]) -> int:
    """Run benchmarks.run.main(argv) from the source tree."""
    _find_benchmarks()
    try:
        from benchmarks import run as bench_run
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.run"):
            print(
                f"gpugrad bench: the benchmarks need {exc.name!r}, which is not installed "
                "(pip install 'gpugrad[bench]')",
                file=sys.stderr,
            )
            return 2
        print(
            "gpugrad bench: the benchmarks are not part of the installed package; they live in the "
            "benchmarks/ folder of gpugrad's source tree. Run `python -m gpugrad bench` from a "
            "checkout of the repository.",
            file=sys.stderr,
        )
        return 2
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
        help="gpugrad vs PyTorch benchmarks (source tree only; "
        "`gpugrad bench --help` lists their options)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":  # its options belong to benchmarks.run
        return bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
