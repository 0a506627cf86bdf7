"""flow_report and GradFlowTracker: numbers against a hand computation on a tiny MLP, flags,
reading a recorded backward, and the per-epoch tracker with its plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import engine, function
from gpugrad.autograd.flow import FlowReport, GradFlowTracker, flow_report
from gpugrad.autograd.record import latest, saved_nbytes


def _mlp(seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "fc1.weight": gg.tensor(rng.standard_normal((3, 5)), requires_grad=True),
        "fc1.bias": gg.tensor(rng.standard_normal(5), requires_grad=True),
        "fc2.weight": gg.tensor(rng.standard_normal((5, 2)), requires_grad=True),
        "fc2.bias": gg.tensor(rng.standard_normal(2), requires_grad=True),
    }
    x = gg.tensor(rng.standard_normal((4, 3)))
    return params, x


def _forward(params, x):
    pre = x @ params["fc1.weight"] + params["fc1.bias"]
    hidden = gg.relu(pre)
    out = hidden @ params["fc2.weight"] + params["fc2.bias"]
    return (out * out).mean(), pre


class _Model:
    def __init__(self, params):
        self.params = params

    def named_parameters(self):
        return iter(self.params.items())


def _row(rows, name):
    found = [row for row in rows if row.name == name]
    assert len(found) == 1, name
    return found[0]


def test_tiny_mlp_numbers_match_a_hand_computation():
    params, x = _mlp()
    loss, _ = _forward(params, x)
    relu_node = next(e[0] for e in loss.grad_fn.next_edges if e is not None)
    while relu_node.name() != "ReluBackward":
        relu_node = next(e[0] for e in relu_node.next_edges if e is not None)
    relu_saved = saved_nbytes(relu_node)
    report = flow_report(loss, model=_Model(params))
    assert isinstance(report, FlowReport)

    # parameters: norms and zero fractions of .grad, computed with NumPy
    for name, p in params.items():
        row = _row(report.params, name)
        grad = p.grad.array
        assert row.norm == pytest.approx(np.linalg.norm(grad), rel=1e-12)
        assert row.zero_fraction == pytest.approx(np.mean(grad == 0))
        assert (row.nan, row.inf, row.flag, row.shape) == (0, 0, "", tuple(p.shape))

    # nodes: the gradient flowing into the ReLU output and into the root, by hand
    W1, b1 = params["fc1.weight"].array, params["fc1.bias"].array
    W2, b2 = params["fc2.weight"].array, params["fc2.bias"].array
    h = np.maximum(x.array @ W1 + b1, 0)
    out = h @ W2 + b2
    d_out = 2 * out / out.size
    d_hidden = d_out @ W2.T
    relu_row = _row(report.nodes, "ReluBackward")
    assert relu_row.norm == pytest.approx(np.linalg.norm(d_hidden), rel=1e-12)
    assert relu_row.shape == (4, 5)
    # bytes saved for backward: ReLU keeps a bit-packed mask, not its input
    assert relu_row.saved_bytes == relu_saved and 0 < relu_saved <= 20 // 8 + 4
    assert report.nodes[0].norm == pytest.approx(1.0)  # the seed
    d_pre = d_hidden * (h > 0)
    assert params["fc1.bias"].grad.array == pytest.approx(d_pre.sum(0))
    assert report.flagged == []


def test_table_and_dict():
    params, x = _mlp()
    loss, _ = _forward(params, x)
    report = flow_report(loss, named_parameters=list(params.items()))
    table = report.table()
    for word in ("grad L2", "ReluBackward", "MatMulBackward", "fc1.weight", "fc2.bias", "flags:"):
        assert word in table
    assert str(report) == table
    data = json.loads(json.dumps(report.to_dict()))
    assert [row["name"] for row in data["params"]] == list(params)
    assert data["vanishing"] == 1e-7 and data["exploding"] == 1e3


def test_flags_vanishing_exploding_nonfinite_and_unused():
    small = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    big = gg.tensor([1.0, 2.0], dtype=gg.float64, requires_grad=True)
    root = gg.tensor([0.0, 4.0], dtype=gg.float64, requires_grad=True)
    unused = gg.tensor([1.0], requires_grad=True)
    loss = (small * 1e-9).sum() + (big * 1e4).sum() + gg.sqrt(root).sum()
    with np.errstate(divide="ignore"):
        report = flow_report(
            loss,
            named_parameters={"small": small, "big": big, "root": root, "unused": unused},
        )
    flags = {row.name: row.flag for row in report.params}
    assert flags == {"small": "vanishing", "big": "exploding", "root": "inf", "unused": "no grad"}
    assert _row(report.params, "root").inf == 1
    assert _row(report.nodes, "SqrtBackward").flag == ""  # inf appears only below it
    assert {row.name for row in report.flagged} == {"small", "big", "root", "unused"}
    strict = flow_report((small * 2).sum(), named_parameters={"small": small}, exploding=1.0)
    assert strict.params[0].flag == "exploding"


def test_reads_a_recorded_backward_instead_of_running_another():
    params, x = _mlp(1)
    with gg.autograd.record_grads() as rec:
        loss, _ = _forward(params, x)
        loss.backward()  # frees the graph: a second backward would fail
    report = flow_report(loss, named_parameters=params)
    expected = np.linalg.norm(params["fc2.weight"].grad.array)
    assert _row(report.params, "fc2.weight").norm == pytest.approx(expected)
    assert flow_report(loss, named_parameters=params, recording=rec).to_dict() == report.to_dict()
    assert report.recording is rec


def test_its_own_recording_does_not_replace_the_users_latest():
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.autograd.record_grads() as mine:
        out = (a * 3).sum()
    loss = (a * 2).sum()
    report = flow_report(loss)
    assert latest() is mine and report.recording is not mine
    assert report.recording.leaf_grad(a._accumulator()).tolist() == [2.0, 2.0]
    assert out.grad_fn in mine.values
    assert engine.observers == [] and function.forward_observers == []


def test_leaves_are_reported_when_no_parameters_are_named():
    a = gg.tensor([3.0, 4.0], requires_grad=True)
    report = flow_report((a * 1).sum())
    assert [(row.name, row.norm) for row in report.params] == [("leaf0", pytest.approx(2**0.5))]
    with pytest.raises(RuntimeError, match="no grad_fn"):
        flow_report(a)


def test_grad_flow_tracker_epochs_table_history_and_plot(tmp_path):
    weight = gg.tensor([0.0, 0.0], requires_grad=True)
    bias = gg.tensor([0.0], requires_grad=True)
    tracker = GradFlowTracker()
    seen = {"weight": [], "bias": []}
    for epoch in range(2):
        for step in range(3):
            weight.grad, bias.grad = None, None
            scale = 10.0 ** -(epoch * 9 + step)
            ((weight * scale).sum() + (bias * 3 * scale).sum()).backward()
            seen["weight"].append(np.linalg.norm(weight.grad.array))
            seen["bias"].append(np.linalg.norm(bias.grad.array))
            tracker.observe([("weight", weight), ("bias", bias)])
        table = tracker.end_epoch()
        assert f"epoch {epoch + 1}" in table and "weight" in table and "bias" in table
    history = tracker.history
    for name in ("weight", "bias"):
        expected = [np.mean(seen[name][:3]), np.mean(seen[name][3:])]
        assert history[name] == pytest.approx(expected, rel=1e-6)
    assert tracker.epochs[1]["weight"]["steps"] == 3
    assert tracker.epochs[1]["weight"]["max"] == pytest.approx(seen["weight"][3], rel=1e-6)
    assert "vanishing" not in tracker.table(0) and "vanishing" in tracker.table(1)

    pytest.importorskip("matplotlib")
    path = tracker.plot(tmp_path / "flow.png")
    assert path.endswith("flow.png") and (tmp_path / "flow.png").read_bytes()[:4] == b"\x89PNG"


def test_grad_flow_tracker_plot_needs_an_epoch_and_skips_missing_grads(tmp_path):
    tracker = GradFlowTracker()
    with pytest.raises(ValueError, match="end_epoch"):
        tracker.plot(tmp_path / "x.png")
    p = gg.tensor([1.0], requires_grad=True)
    tracker.observe({"p": p})  # no .grad yet: nothing to record
    tracker.end_epoch()
    assert tracker.history == {}
    (p * 2).sum().backward()
    tracker.observe({"p": p})
    tracker.end_epoch()
    first, second = tracker.history["p"]
    assert math.isnan(first) and second == pytest.approx(2.0)  # no grad in epoch 1
    pytest.importorskip("matplotlib")
    tracker.plot(tmp_path / "p.svg")
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()
