"""Command-line tools behind `python -m gpugrad` / `gpugrad`: train (cli/train.py); bench lives
in the source tree's benchmarks/ folder."""
