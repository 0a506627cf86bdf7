"""gg.distributed and DDP pieces that need no second process: the engine hooks DDP is built on
(post-accumulate-grad hooks, queue_callback), DistributedSampler against torch's, the bucket
layout, the mismatch message, errors before init, and a one-process group without mpi4py. The
multi-process checks are in test_distributed_mpi.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.distributed as dist
from gpugrad.autograd import engine
from gpugrad.distributed.group import ReduceOp, mismatch_message, signature
from gpugrad.nn.parallel.distributed import _make_buckets

ROOT = Path(__file__).resolve().parents[1]


# ---- Tensor.register_post_accumulate_grad_hook and engine.queue_callback ---------------------
def test_post_accumulate_grad_hook_sees_the_accumulated_grad_like_torch():
    def run(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([0.5], requires_grad=True)
        seen = []
        w.register_post_accumulate_grad_hook(lambda t: seen.append(("w", t.grad.tolist())))
        b.register_post_accumulate_grad_hook(lambda t: seen.append(("b", t.grad.tolist())))
        for _ in range(2):  # the second backward accumulates: the hook sees the sum
            ((w * 3).sum() + b.sum() * 2).backward()
        return seen

    ours, theirs = run(gg), run(torch)
    assert sorted(ours) == sorted(theirs)
    assert ("w", [6.0, 6.0]) in ours and ("b", [4.0]) in ours


def test_post_accumulate_grad_hook_refusals_and_removal_match_torch():
    w = gg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot be registered on non-leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gg.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    calls = []
    handle = w.register_post_accumulate_grad_hook(calls.append)
    w.sum().backward()
    handle.remove()
    w.sum().backward()
    assert calls == [w]
    x = gg.ones(2, requires_grad=True)  # backward(inputs=...) accumulates too: hooks run
    x.register_post_accumulate_grad_hook(calls.append)
    (x * w).sum().backward(inputs=[x])
    assert calls == [w, x]


def test_queue_callback_runs_once_after_every_grad_is_accumulated():
    a = gg.ones(3, requires_grad=True)
    b = gg.ones(3, requires_grad=True)
    log = []

    def finish():
        log.append(("end", a.grad is not None and b.grad is not None))

    def first_hook(t):
        log.append("hook")
        if log.count("hook") == 1:
            engine.queue_callback(finish)

    a.register_post_accumulate_grad_hook(first_hook)
    b.register_post_accumulate_grad_hook(first_hook)
    (a * b).sum().backward()
    assert log == ["hook", "hook", ("end", True)]
    (a * b).sum().backward()  # nothing queued now: the callback does not run again
    assert log.count(("end", True)) == 1


def test_a_failed_backward_drops_its_queued_callbacks():
    a = gg.ones(2, requires_grad=True)
    ran = []

    def bad(t):
        engine.queue_callback(lambda: ran.append(1))
        raise ValueError("hook failed")

    handle = a.register_post_accumulate_grad_hook(bad)
    with pytest.raises(ValueError, match="hook failed"):
        a.sum().backward()
    handle.remove()
    a.sum().backward()
    assert ran == [] and engine._final_callbacks == []


# ---- DistributedSampler -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 7, 10, 12])
@pytest.mark.parametrize("replicas", [1, 3, 5])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_matches_torch_in_order(size, replicas, drop_last):
    from torch.utils.data import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = gg.data.DistributedSampler(
            gg.zeros(size), replicas, rank, shuffle=False, drop_last=drop_last
        )
        theirs = TorchSampler(range(size), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_shuffles_by_seed_and_epoch():
    def shards(epoch, seed=0, replicas=3):
        out = []
        for rank in range(replicas):
            sampler = gg.data.DistributedSampler(range(20), replicas, rank, seed=seed)
            sampler.set_epoch(epoch)
            out.append(list(sampler))
        return out

    first = shards(0)
    assert sorted(i for s in first for i in s) == sorted(list(range(20)) + [first[0][0]])
    assert shards(0) == first  # the same on every call: every rank draws the same order
    assert shards(1) != first and shards(0, seed=1) != first
    with pytest.raises(
        ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"
    ):
        gg.data.DistributedSampler(range(5), num_replicas=3, rank=3)


def test_dataloader_takes_its_order_from_a_sampler():
    X = gg.arange(10).reshape(10, 1)
    sampler = gg.data.DistributedSampler(X, num_replicas=2, rank=1, shuffle=False)
    loader = gg.data.DataLoader(X, batch_size=2, sampler=sampler)
    assert [b[0].reshape(-1).tolist() for b in loader] == [[1, 3], [5, 7], [9]]
    assert len(loader) == 3
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        gg.data.DataLoader(X, sampler=sampler, shuffle=True)


# ---- buckets, messages, errors -----------------------------------------------------------------
def test_buckets_follow_reverse_parameter_order_with_a_small_first_bucket():
    model = gg.nn.MLP([784, 2048, 2048, 10])
    named = list(model.named_parameters())
    buckets = _make_buckets(named, 1 << 20, 25 << 20, gg.device("cpu"))
    assert [b.names for b in buckets] == [
        ["4.bias", "4.weight", "2.bias", "2.weight"],
        ["0.bias", "0.weight"],
    ]
    assert [b.nbytes for b in buckets] == [
        4 * (10 + 20480 + 2048 + 2048 * 2048),
        4 * (2048 + 2048 * 784),
    ]
    small = _make_buckets(named, 1 << 20, 1 << 20, gg.device("cpu"))
    assert [b.names for b in small] == [
        ["4.bias", "4.weight", "2.bias", "2.weight"],
        ["0.bias", "0.weight"],
    ]
    each = _make_buckets(named, 1, 1, gg.device("cpu"))
    assert [b.names for b in each] == [[name] for name, _ in reversed(named)]


def test_mismatch_message_groups_ranks_and_names_what_differs():
    a = signature("all_reduce", np.zeros((4, 3), np.float32), op=ReduceOp.SUM)
    b = signature("all_reduce", np.zeros((4, 2), np.float32), op=ReduceOp.SUM)
    c = signature("broadcast", np.zeros(3, np.int64), root=1)
    message = mismatch_message("all_reduce", np.stack([a, b, a, c]))
    assert message.startswith("all_reduce: the ranks' calls do not match")
    assert "ranks 0, 2: all_reduce(SUM) of float32 (4, 3) on cpu" in message
    assert "rank 1: all_reduce(SUM) of float32 (4, 2) on cpu" in message
    assert "rank 3: broadcast from rank 1 of int64 (3,) on cpu" in message


def test_before_init_the_api_says_so():
    assert not dist.is_initialized() and dist.is_available()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="not been initialized"):
        dist.all_reduce(gg.ones(2))
    with pytest.raises(RuntimeError, match="not been initialized"):
        gg.nn.parallel.DistributedDataParallel(gg.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend must be 'mpi' or 'nccl', got 'gloo'"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="init_method and store are not supported"):
        dist.init_process_group("mpi", init_method="tcp://127.0.0.1:23456")


LONE_GROUP = """
import sys
import gpugrad as gg, gpugrad.distributed as dist
assert "mpi4py" not in sys.modules, "importing gpugrad imported mpi4py"
sys.modules["mpi4py"] = None  # from here on, as if it were not installed
import gpugrad.nn.functional as F
dist.init_process_group("mpi")
assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
t = gg.tensor([1.0, 2.0])
dist.all_reduce(t, dist.ReduceOp.AVG)
out = [gg.zeros(2)]
dist.all_gather(out, t)
assert out[0].tolist() == [1.0, 2.0]
try:
    dist.all_reduce(t, op="sum")
except TypeError as exc:
    assert "op must be a gg.distributed.ReduceOp" in str(exc)
gg.manual_seed(0)
model = gg.nn.parallel.DistributedDataParallel(gg.nn.MLP([3, 4, 2]))
gg.manual_seed(0)
plain = gg.nn.MLP([3, 4, 2])
x = gg.randn(5, 3)
F.mse_loss(model(x), gg.zeros(5, 2)).backward()
F.mse_loss(plain(x), gg.zeros(5, 2)).backward()
for p, q in zip(model.parameters(), plain.parameters()):
    assert p.grad.tolist() == q.grad.tolist()
assert list(gg.data.DistributedSampler(range(4), shuffle=False)) == [0, 1, 2, 3]
dist.destroy_process_group()
print("lone group ok")
"""


def test_import_needs_no_mpi4py_and_one_process_runs_without_it():
    result = subprocess.run(
        [sys.executable, "-c", LONE_GROUP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "lone group ok" in result.stdout


def test_nccl_is_reported_unavailable_without_a_gpu():
    if gg.cuda.is_available():
        pytest.skip("a GPU is usable here: gpu_check.sh runs the NCCL path")
    assert not dist.is_nccl_available()
    with pytest.raises(RuntimeError, match="init_process_group\\('nccl'\\)"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_gpu_check_nccl_step_skips_cleanly_without_a_gpu(tmp_path):
    if gg.cuda.is_available():
        pytest.skip("a GPU is usable here: gpu_check.sh runs this step for real")
    out = tmp_path / "nccl.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check_nccl.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("skipped: gg.distributed's NCCL path needs a GPU and NCCL")
    assert "skipped" in json.loads(out.read_text())
