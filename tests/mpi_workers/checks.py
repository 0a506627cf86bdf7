"""Checks run inside `mpirun -n N python tests/mpi_workers/checks.py OUT_DIR` (tests/
test_distributed_mpi.py starts it). Every rank runs every check in the same order; each rank
writes OUT_DIR/rank<r>.json as it goes ({check: "ok"}), so pytest reports per check. A failing
check raises, which aborts the job (gg.distributed's uncaught-exception handling): the checks
after it are reported as not run."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's gpugrad

import gpugrad as gg
import gpugrad.distributed as dist
import gpugrad.nn.functional as F
from gpugrad.nn.parallel import DistributedDataParallel as DDP

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def rank_values(rank: int, shape, dtype: str) -> np.ndarray:
    """Each rank's deterministic input, so every rank can compute the expected result."""
    rng = np.random.default_rng(100 + rank)
    if dtype.startswith("int"):
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.uniform(-2, 2, size=shape).astype(dtype)


# ---- collectives against NumPy ---------------------------------------------------------------
REDUCE = {
    dist.ReduceOp.SUM: lambda xs: np.sum(xs, axis=0),
    dist.ReduceOp.AVG: lambda xs: np.sum(xs, axis=0) / len(xs),
    dist.ReduceOp.PRODUCT: lambda xs: np.prod(xs, axis=0),
    dist.ReduceOp.MAX: lambda xs: np.max(xs, axis=0),
    dist.ReduceOp.MIN: lambda xs: np.min(xs, axis=0),
}


def _close(got, want, dtype):
    tol = {"float32": 1e-5, "float64": 1e-12}.get(dtype, 0)
    np.testing.assert_allclose(got, want.astype(dtype), rtol=tol, atol=tol)


@check
def collectives_match_numpy():
    rank, size = dist.get_rank(), dist.get_world_size()
    for dtype in ("float32", "float64", "int64", "int32"):
        inputs = [rank_values(r, (3, 5), dtype) for r in range(size)]
        for op, reference in REDUCE.items():
            if op is dist.ReduceOp.AVG and dtype.startswith("int"):
                continue
            t = gg.tensor(inputs[rank].copy())
            assert dist.all_reduce(t, op) is None
            _close(t.numpy(), reference(np.stack(inputs)), dtype)
            t = gg.tensor(inputs[rank].copy())  # the async form, waited on
            work = dist.all_reduce(t, op, async_op=True)
            assert work.wait() is True and work.is_completed()
            _close(t.numpy(), reference(np.stack(inputs)), dtype)
        for src in range(size):
            t = gg.tensor(inputs[rank].copy())
            dist.broadcast(t, src=src)
            _close(t.numpy(), inputs[src], dtype)
        out = [gg.zeros(3, 5, dtype=dtype) for _ in range(size)]
        dist.all_gather(out, gg.tensor(inputs[rank]))
        for r in range(size):
            _close(out[r].numpy(), inputs[r], dtype)
        big = gg.zeros(3 * size, 5, dtype=dtype)
        dist.all_gather_into_tensor(big, gg.tensor(inputs[rank]))
        _close(big.numpy(), np.concatenate(inputs), dtype)
        # reduce_scatter: rank r's input_list[k] is block k of its values; rank k gets the sum
        blocks = [rank_values(r, (size, 2, 3), dtype) for r in range(size)]
        mine = gg.zeros(2, 3, dtype=dtype)
        dist.reduce_scatter(mine, [gg.tensor(b) for b in blocks[rank]])
        _close(mine.numpy(), np.sum([b[rank] for b in blocks], axis=0), dtype)
        if dtype.startswith("float"):
            mine = gg.zeros(2, 3, dtype=dtype)
            dist.reduce_scatter_tensor(
                mine, gg.tensor(blocks[rank].reshape(2 * size, 3)), op=dist.ReduceOp.AVG
            )
            _close(mine.numpy(), np.mean([b[rank] for b in blocks], axis=0), dtype)
    # a transposed (non-contiguous) view is reduced in place too
    base = gg.tensor(rank_values(rank, (4, 3), "float64"))
    view = base.T
    dist.all_reduce(view)
    want = np.sum([rank_values(r, (4, 3), "float64") for r in range(size)], axis=0)
    _close(base.numpy(), want, "float64")
    dist.barrier()


@check
def mismatched_shapes_are_an_error_naming_the_ranks():
    rank, size = dist.get_rank(), dist.get_world_size()
    try:
        dist.all_reduce(gg.ones(2, 1 + (rank == size - 1)))
    except ValueError as exc:
        message = str(exc)
    else:
        raise AssertionError("no error for mismatched shapes")
    assert "all_reduce" in message, message
    assert f"rank {size - 1}: all_reduce(SUM) of float32 (2, 2)" in message, message
    others = ", ".join(str(r) for r in range(size - 1))
    assert f"{others}: all_reduce(SUM) of float32 (2, 1)" in message, message
    try:  # different collectives on different ranks
        if rank == 0:
            dist.broadcast(gg.ones(3), src=0)
        else:
            dist.all_reduce(gg.ones(3))
    except ValueError as exc:
        assert "rank 0: broadcast from rank 0 of float32 (3,)" in str(exc), str(exc)
    else:
        raise AssertionError("no error for different collectives")
    t = gg.ones(4)  # the group still works afterwards
    dist.all_reduce(t)
    assert t.tolist() == [float(size)] * 4


# ---- DistributedDataParallel -----------------------------------------------------------------
def _batch(dtype, n=12, features=8, classes=4, seed=7):
    rng = np.random.default_rng(seed)
    X = gg.tensor(rng.standard_normal((n, features)), dtype=dtype)
    y = gg.tensor(rng.integers(0, classes, n))
    return X, y


def _mlp(dtype, seed):
    gg.manual_seed(seed)
    return gg.nn.MLP([8, 16, 16, 4], activation="relu", dtype=dtype)


def _optimizer(name, params):
    if name == "sgd":
        return gg.optim.SGD(params, lr=0.05, momentum=0.9)
    return gg.optim.AdamW(params, lr=1e-2, weight_decay=1e-2)


@check
def ddp_equals_single_process_training_over_50_steps():
    rank, size = dist.get_rank(), dist.get_world_size()
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        for opt_name in ("sgd", "adamw"):
            reference = _mlp(dtype, seed=0)
            ref_opt = _optimizer(opt_name, reference.parameters())
            # each rank starts from other values: DDP must broadcast rank 0's (seed 0)
            model = DDP(_mlp(dtype, seed=rank), bucket_cap_mb=0.0005)  # several small buckets
            assert len(model._buckets) > 1
            opt = _optimizer(opt_name, model.parameters())
            for step in range(50):
                X, y = _batch(dtype, seed=step)
                ref_opt.zero_grad()
                F.cross_entropy(reference(X), y).backward()
                ref_opt.step()
                opt.zero_grad()
                F.cross_entropy(model(X[rank::size]), y[rank::size]).backward()
                opt.step()
            for (name, p), q in zip(model.module.named_parameters(), reference.parameters()):
                err = float(np.max(np.abs(p.detach().numpy() - q.detach().numpy())))
                assert err <= tol, f"{dtype} {opt_name}: {name} differs by {err:.3g} > {tol}"


@check
def bucket_all_reduce_starts_before_backward_reaches_the_first_layer():
    """Overlap observed, not assumed: the communication thread stamps when each bucket's
    all-reduce starts; a hook on the first layer's output stamps when backward gets there."""
    rank, size = dist.get_rank(), dist.get_world_size()
    gg.manual_seed(0)
    net = gg.nn.Sequential(
        gg.nn.Linear(64, 256),
        gg.nn.ReLU(),
        gg.nn.Linear(256, 256),
        gg.nn.ReLU(),
        gg.nn.Linear(256, 10),
    )
    model = DDP(net, bucket_cap_mb=0.2)
    first = net[0]
    reached = {}

    def stamp(grad):
        reached.setdefault("first layer", time.perf_counter())

    def stamp_when_backward_gets_here(module, args, out):
        out.register_hook(stamp)

    first.register_forward_hook(stamp_when_backward_gets_here)
    rng = np.random.default_rng(rank)
    X = gg.tensor(rng.standard_normal((128, 64)), dtype="float32")
    y = gg.tensor(rng.integers(0, 10, 128))
    F.cross_entropy(model(X), y).backward()
    timing = model._get_ddp_logging_data()
    buckets = model._buckets
    last_layer = {id(p) for p in net[4].parameters()}
    assert last_layer <= {id(p) for p in buckets[0].params}
    assert id(first.weight) in {id(p) for p in buckets[-1].params}
    started = [start for _, _, start, _ in timing["buckets"]]  # (index, bytes, start, end)
    assert started[0] < reached["first layer"], (started, reached)
    assert started[-1] > reached["first layer"]
    # and when backward() returned, every gradient was the average
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    for g in grads:
        gathered = [gg.zeros(*g.shape) for _ in range(size)]
        dist.all_gather(gathered, gg.tensor(g))
        for other in gathered:
            np.testing.assert_array_equal(other.numpy(), g)


@check
def no_sync_accumulates_then_averages_the_sum():
    rank, size = dist.get_rank(), dist.get_world_size()
    reference = _mlp("float64", seed=0)
    model = DDP(_mlp("float64", seed=0))
    batches = [_batch("float64", seed=50 + k) for k in range(3)]
    for X, y in batches:
        F.cross_entropy(reference(X), y).backward()
    with model.no_sync():
        for X, y in batches[:2]:
            F.cross_entropy(model(X[rank::size]), y[rank::size]).backward()
    local = gg.tensor(next(model.parameters()).grad.numpy())  # not averaged: ranks differ
    everyone = [gg.zeros(*local.shape, dtype="float64") for _ in range(size)]
    dist.all_gather(everyone, local)
    assert not np.allclose(everyone[0].numpy(), everyone[-1].numpy())
    X, y = batches[2]
    F.cross_entropy(model(X[rank::size]), y[rank::size]).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-12)


class TwoHeads(gg.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = gg.nn.Linear(4, 8, dtype="float64")
        self.head_a = gg.nn.Linear(8, 2, dtype="float64")
        self.head_b = gg.nn.Linear(8, 2, dtype="float64")

    def forward(self, x, use_b):
        h = self.body(x).relu()
        return self.head_b(h) if use_b else self.head_a(h)


@check
def unused_parameters_are_refused_or_found():
    rank = dist.get_rank()
    x = gg.tensor(np.random.default_rng(rank).standard_normal((3, 4)))
    gg.manual_seed(0)
    model = DDP(TwoHeads())
    try:
        model(x, use_b=False).sum().backward()
    except RuntimeError as exc:
        assert "head_b.weight, head_b.bias received no gradient" in str(exc), str(exc)
        assert "find_unused_parameters=True" in str(exc)
    else:
        raise AssertionError("an unused parameter was not refused")
    # with detection: head_b is used on rank 0 only, head_a on the others
    gg.manual_seed(0)
    model = DDP(TwoHeads(), find_unused_parameters=True)
    gg.manual_seed(0)
    local = TwoHeads()
    for _ in range(2):  # twice: the second backward must not see the first one's state
        model.zero_grad()
        model(x, use_b=rank == 0).sum().backward()
    grads = {name: p.grad for name, p in model.module.named_parameters()}
    local(x, use_b=rank == 0).sum().backward()
    expected = {}
    for name, p in local.named_parameters():
        g = gg.zeros(*p.shape, dtype="float64") if p.grad is None else p.grad
        dist.all_reduce(g, dist.ReduceOp.AVG)
        expected[name] = g.numpy()
    for name, g in grads.items():
        assert g is not None, name
        np.testing.assert_allclose(g.numpy(), expected[name], rtol=1e-12, atol=1e-14)
    # a head no rank uses keeps .grad None, as torch leaves it
    model.zero_grad()
    model(x, use_b=False).sum().backward()
    assert model.module.head_b.weight.grad is None
    assert model.module.head_a.weight.grad is not None


@check
def models_that_differ_across_ranks_are_refused():
    rank = dist.get_rank()
    width = 16 if rank == 0 else 17
    try:
        DDP(gg.nn.MLP([8, width, 4]))
    except ValueError as exc:
        assert (
            "'0.weight' float32 (16, 8) on rank 0 but '0.weight' float32 (17, 8) on rank 1"
            in str(exc)
        ), str(exc)
    else:
        raise AssertionError("different models were accepted")


@check
def distributed_sampler_shards_cover_the_dataset():
    size = dist.get_world_size()
    data = gg.arange(10)
    for drop_last in (False, True):
        sampler = gg.data.DistributedSampler(data, shuffle=True, seed=3, drop_last=drop_last)
        sampler.set_epoch(1)
        mine = list(sampler)
        everyone: list = [None] * size
        dist.all_gather_object(everyone, mine)
        assert all(len(s) == len(sampler) for s in everyone)
        union = [i for s in everyone for i in s]
        if drop_last:
            assert len(set(union)) == len(union) == 10 // size * size
        else:
            assert set(union) == set(range(10)) and len(union) == -(-10 // size) * size


def main(out_dir: str) -> None:
    dist.init_process_group("mpi", timeout=60)
    rank = dist.get_rank()
    results: dict = {}
    path = Path(out_dir) / f"rank{rank}.json"
    for fn in CHECKS:
        start = time.perf_counter()
        fn()
        results[fn.__name__] = f"ok {time.perf_counter() - start:.2f}s"
        path.write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
