"""Regression tests for what adversarial probes found (issue 15): each failed before its fix.
Numbers in the test names are the issue's items; the fuzz's findings come after them."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import warnings
import zipfile

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import serialization
from gpugrad.__main__ import main
from gpugrad.cli import train as cli_train

F = gg.nn.functional
torch = pytest.importorskip("torch")
TF = torch.nn.functional
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _t(array, requires_grad=False):
    return gg.tensor(np.asarray(array), requires_grad=requires_grad), torch.tensor(
        np.asarray(array), requires_grad=requires_grad
    )


# ---- 1: every target ignored -----------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, t: m.nn.functional.cross_entropy(x, t),
        lambda m, x, t: m.nn.functional.cross_entropy(x, t, label_smoothing=0.2),
        lambda m, x, t: m.nn.functional.cross_entropy(x, t, weight=x.detach()[0].abs() + 1),
        lambda m, x, t: m.nn.functional.nll_loss(m.nn.functional.log_softmax(x, 1), t),
        lambda m, x, t: m.nn.functional.cross_entropy(
            x.reshape(3, 2, 2), t.unsqueeze(1).expand(3, 2)
        ),
    ],
    ids=["plain", "label_smoothing", "weight", "nll_loss", "nd"],
)
def test_1_all_targets_ignored_gives_nan_loss_and_zero_gradient(call):
    data = np.random.default_rng(0).standard_normal((3, 4))
    target = np.full(3, -100)
    (gx, tx), (gt, tt) = _t(data, True), _t(target)
    gloss, tloss = call(gg, gx, gt), call(torch, tx, tt)
    gloss.backward()
    tloss.backward()
    assert math.isnan(gloss.item()) and math.isnan(tloss.item())
    np.testing.assert_array_equal(gx.grad.numpy(), tx.grad.numpy())
    assert not np.isnan(gx.grad.numpy()).any()


def test_1_an_all_padding_batch_leaves_the_parameters_finite():
    gg.manual_seed(0)
    model = gg.nn.Linear(4, 3)
    opt = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for target in ([0, 1], [-100, -100], [2, 0]):
        opt.zero_grad()
        F.cross_entropy(model(gg.randn(2, 4)), gg.tensor(target)).backward()
        opt.step()
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


# ---- 2: class weights are checked ------------------------------------------------------------
WEIGHT_LOSSES = {
    "cross_entropy": lambda m, x, t, w: m.nn.functional.cross_entropy(x, t, weight=w),
    "cross_entropy_probs": lambda m, x, t, w: m.nn.functional.cross_entropy(
        x, m.nn.functional.softmax(x.detach() * 2, 1), weight=w
    ),
    "nll_loss": lambda m, x, t, w: m.nn.functional.nll_loss(x, t, weight=w),
    "multi_margin_loss": lambda m, x, t, w: m.nn.functional.multi_margin_loss(x, t, weight=w),
}


@pytest.mark.parametrize("loss", sorted(WEIGHT_LOSSES))
@pytest.mark.parametrize("shape", [(5,), (2,), (3, 1), (1, 3), ()])
def test_2_weight_of_the_wrong_shape_is_refused(loss, shape):
    x, t = gg.randn(4, 3), gg.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match=rf"{loss.replace('_probs', '')}: weight .*\b3 classes"):
        WEIGHT_LOSSES[loss](gg, x, t, gg.ones(*shape))
    with pytest.raises((RuntimeError, ValueError)):  # torch refuses them too
        WEIGHT_LOSSES[loss](torch, torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), torch.ones(shape))


@pytest.mark.parametrize("loss", sorted(WEIGHT_LOSSES))
def test_2_weight_must_be_a_float_tensor(loss):
    x, t = gg.randn(4, 3), gg.tensor([0, 1, 2, 1])
    name = loss.replace("_probs", "")
    with pytest.raises(TypeError, match=rf"{name}: weight must be a Tensor"):
        WEIGHT_LOSSES[loss](gg, x, t, [1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match=rf"{name}: weight .*int64"):
        WEIGHT_LOSSES[loss](gg, x, t, gg.tensor([1, 1, 1]))


# ---- 5: loss arguments out of range ----------------------------------------------------------
@pytest.mark.parametrize("smoothing", [2.0, 1.5, -0.1, math.nan])
@pytest.mark.parametrize("probs", [False, True])
def test_5_label_smoothing_out_of_range(smoothing, probs):
    x = gg.randn(3, 4)
    t = F.softmax(gg.randn(3, 4), 1) if probs else gg.tensor([0, 1, 3])
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, t, label_smoothing=smoothing)


@pytest.mark.parametrize(
    "p, y, bad",
    [
        (1.5, 1.0, "input"),
        (-0.5, 0.0, "input"),
        (math.nan, 1.0, "input"),
        (0.5, 1.5, "target"),
        (0.5, -1.0, "target"),
    ],
)
def test_5_binary_cross_entropy_values_outside_0_1(p, y, bad):
    gp, tp = _t([0.3, p])
    gy, ty = _t([1.0, y])
    with pytest.raises(RuntimeError, match=f"all elements of {bad} should be between 0 and 1"):
        TF.binary_cross_entropy(tp, ty)
    with pytest.raises(ValueError, match=f"binary_cross_entropy: all elements of {bad} should be"):
        F.binary_cross_entropy(gp, gy)


# ---- 6: empty reductions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: m.amax(x, 1),
        lambda m, x: m.amin(x, -1),
        lambda m, x: x.max(1)[0],
        lambda m, x: x.min(1, keepdim=True)[1],
        lambda m, x: x.argmax(1),
        lambda m, x: x.argmin(-1),
        lambda m, x: m.amax(x, (1,), keepdim=True),
        lambda m, x: m.logsumexp(x, 1),
    ],
)
def test_6_reducing_the_non_empty_dimension_of_an_empty_tensor(call):
    gx, tx = _t(np.zeros((0, 3), np.float32))
    got, want = call(gg, gx), call(torch, tx)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype.name == str(want.dtype)[6:]


@pytest.mark.parametrize(
    "call, kind, name",
    [
        (lambda m, x: m.amax(x, 0), IndexError, "amax"),
        (lambda m, x: m.amin(x), RuntimeError, "amin"),
        (lambda m, x: x.max(0), IndexError, "max"),
        (lambda m, x: x.argmax(0), IndexError, "argmax"),
        (lambda m, x: x.argmin(), IndexError, "argmin"),
        (lambda m, x: x.max(), RuntimeError, "max"),
        (lambda m, x: x.reshape(-1).argmax(), IndexError, "argmax"),
    ],
)
def test_6_reducing_an_empty_dimension_is_an_error_naming_the_op(call, kind, name):
    gx, tx = _t(np.zeros((0, 3), np.float32))
    with pytest.raises(kind):
        call(torch, tx)
    with pytest.raises(kind, match=rf"^{name}: .*(empty|zero)"):
        call(gg, gx)


# ---- 7: in-place on a tensor whose elements share memory -------------------------------------
@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
        lambda t: t.__iadd__(1),
        lambda t: t.zero_(),
        lambda t: t.fill_(3.0),
        lambda t: t.copy_(gg.ones(3, 4)),
        lambda t: t.__setitem__(0, 5.0),
        lambda t: t[1].add_(1),
        lambda t: t.clamp_(0, 1),
        lambda t: t.normal_(),
    ],
)
def test_7_in_place_on_an_expanded_tensor(write):
    base = gg.zeros(3, 1)
    with pytest.raises(RuntimeError, match=r"expand.*clone\(\)"):
        write(base.expand(3, 4))
    assert base.numpy().tolist() == [[0.0], [0.0], [0.0]]  # nothing was written


def test_7_in_place_on_a_read_only_array():
    frozen = np.zeros(3, np.float32)
    frozen.flags.writeable = False
    t = gg.from_numpy(frozen)
    with pytest.raises(RuntimeError, match="add_: .*read-only"):
        t.add_(1)


def test_7_expanded_tensors_still_read_and_copy():
    t = gg.arange(3.0).reshape(3, 1).expand(3, 2)
    u = t.clone()
    u.add_(1)
    assert u.numpy().tolist() == [[1, 1], [2, 2], [3, 3]]
