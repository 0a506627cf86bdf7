"""The engine hooks data-parallel training is built on: post-accumulate-grad hooks and
queue_callback."""

from __future__ import annotations

import pytest
import torch

import gpugrad as gg
from gpugrad.autograd import engine


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
