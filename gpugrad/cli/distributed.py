"""`gpugrad train --distributed`: the same training, data parallel over the ranks mpirun started.

Every rank draws the same global batches as single-process training would (same split, same
shuffling), trains on its rows of each (rank r takes rows r, r + N, ...) and DDP averages the
gradients, each rank's weighted by its share of the batch, so a last batch that does not split
evenly still gives the single-process mean: the trained model is single-process training's.
Rank 0 prints, plots and saves; the others stay silent."""

from __future__ import annotations

import argparse
import contextlib
import os

import gpugrad as gg
import gpugrad.distributed as dist


class Shards:
    """This rank's rows of a global batch and the factor that makes DDP's plain average of the
    ranks' mean losses the mean over the whole batch (1.0 when the batch splits evenly)."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def __call__(self, x: gg.Tensor, y: gg.Tensor) -> tuple[gg.Tensor, gg.Tensor, float]:
        rows = y.shape[0]
        x, y = x[self.rank :: self.world], y[self.rank :: self.world]
        return x, y, self.world * y.shape[0] / rows

    def total(self, running) -> None:
        """Sum the epoch's running loss, hits and count over the ranks (into `running`)."""
        sums = gg.tensor(
            [float(running.loss_sum), float(running.correct), running.count], dtype="float64"
        )
        dist.all_reduce(sums)
        running.loss_sum, running.correct, running.count = sums.tolist()


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, train) -> int:
    """Join the ranks, train (train(args, parser) wraps the model in DDP), leave together."""
    use_gpu = args.device == "cuda" or (args.device == "auto" and dist.is_nccl_available())
    if args.device == "cuda" and not dist.is_nccl_available():
        from gpugrad.distributed import nccl

        parser.error(f"--distributed --device cuda needs NCCL: {nccl.unavailable_reason()}")
    dist.init_process_group("nccl" if use_gpu else "mpi")
    rank = dist.get_rank()
    args.device = (
        f"cuda:{dist.get_node_local_rank() % gg.cuda.device_count()}" if use_gpu else "cpu"
    )
    args.shards = Shards(rank, dist.get_world_size())
    if rank != 0:  # one voice: rank 0 reports, plots and saves
        args.quiet, args.save, args.plot, args.grad_report = True, None, None, None
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull) if rank != 0 else contextlib.nullcontext(),
    ):
        train(args, parser)
    dist.destroy_process_group()
    return 0


def check_batches(args, parser, train_size: int) -> None:
    """Every global batch must give each rank at least one row."""
    world = dist.get_world_size()
    smallest = min(args.batch_size, train_size % args.batch_size or args.batch_size)
    if smallest < world:
        parser.error(
            f"--distributed over {world} ranks: a batch of {smallest} examples cannot give every "
            f"rank a row; use a --batch-size that leaves at least {world} in every batch"
        )
