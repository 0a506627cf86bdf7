"""gg.viz: the DOT text carries the right value and gradient on the right edge; rendering
with Graphviz; graphs kept by retain_graph and built by create_graph; record_grads leaves
no observer behind."""

from __future__ import annotations

import gc
import re
import shutil

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import viz
from gpugrad.autograd import engine, function
from gpugrad.autograd.record import Recording

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")

_NODE = re.compile(r"^\s*(\w+) \[(.*)\];$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$")
_FONT = re.compile(r'<font color="([^"]+)">(.*?)</font>')


def _label_parts(attrs: str) -> dict:
    """{"title": ..., "values": [...], "grads": [...]} of an HTML label."""
    match = re.search(r"label=<(.*)>", attrs or "")
    label = match.group(1) if match else ""
    title = re.search(r"<b>(.*?)</b>", label)
    fonts = _FONT.findall(label)
    return {
        "title": title.group(1) if title else None,
        "values": [text for color, text in fonts if color == viz.VALUE_COLOR],
        "grads": [text for color, text in fonts if color == viz.GRAD_COLOR],
        "raw": label,
    }


def parse_dot(text: str):
    """(nodes {id: parts}, edges [(tail, head, parts)]) of the DOT text to_dot writes."""
    nodes, edges = {}, []
    for line in text.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2), _label_parts(edge.group(3))))
            continue
        node = _NODE.match(line)
        if node and node.group(1) not in ("graph", "node", "edge"):
            nodes[node.group(1)] = _label_parts(node.group(2))
    return nodes, edges


def _by_title(nodes) -> dict:
    return {parts["title"]: node_id for node_id, parts in nodes.items()}


def _edge(edges, tail, head):
    found = [parts for t, h, parts in edges if t == tail and h == head]
    assert len(found) == 1, f"expected one edge {tail} -> {head}, found {len(found)}"
    return found[0]


def _lecture_example():
    x = gg.tensor(-2.0, requires_grad=True)
    y = gg.tensor(5.0, requires_grad=True)
    z = gg.tensor(-4.0, requires_grad=True)
    with gg.autograd.record_grads() as rec:
        f = (x + y) * z
        f.backward()
    return x, y, z, f, rec


def test_lecture_example_values_and_gradients_on_the_right_edges():
    x, y, z, f, rec = _lecture_example()
    text = viz.to_dot(f, names={"x": x, "y": y, "z": z, "f": f}, recording=rec)
    nodes, edges = parse_dot(text)
    ids = _by_title(nodes)
    add, mul, out = ids["AddBackward"], ids["MulBackward"], ids["f"]
    expected = {  # edge: (forward value, gradient flowing back along it)
        (ids["x"], add): ("-2", "-4"),
        (ids["y"], add): ("5", "-4"),
        (ids["z"], mul): ("-4", "3"),
        (add, mul): ("3", "-4"),
        (mul, out): ("-12", "1"),
    }
    labelled = [(t, h) for t, h, parts in edges if parts["values"] or parts["grads"]]
    assert sorted(labelled) == sorted(expected)
    for (tail, head), (value, grad) in expected.items():
        parts = _edge(edges, tail, head)
        assert parts["values"] == [value] and parts["grads"] == [grad], (tail, head, parts)
        # value above gradient: the value's <font> comes first in the label
        assert parts["raw"].index(value) < parts["raw"].rindex(grad)
    # leaves show value and accumulated .grad; the output its value and the seed
    shown = (("x", "-2", "-4"), ("y", "5", "-4"), ("z", "-4", "3"), ("f", "-12", "1"))
    for name, value, grad in shown:
        assert nodes[ids[name]]["values"] == [value] and nodes[ids[name]]["grads"] == [grad]
    assert "scalar" in nodes[mul]["raw"]


def test_latest_recording_is_used_implicitly_and_names_are_optional():
    *_, f, _ = _lecture_example()
    nodes, edges = parse_dot(viz.to_dot(f))
    leaves = [i for i, parts in nodes.items() if parts["title"] == "AccumulateGrad"]
    assert sorted(nodes[i]["values"][0] for i in leaves) == ["-2", "-4", "5"]
    ids = _by_title(nodes)
    assert _edge(edges, ids["AddBackward"], ids["MulBackward"])["grads"] == ["-4"]
    assert _edge(edges, ids["MulBackward"], "out")["grads"] == ["1"]


def test_values_and_grads_switches():
    *_, f, rec = _lecture_example()
    _, edges = parse_dot(viz.to_dot(f, grads=False, recording=rec))
    assert all(not parts["grads"] for _, _, parts in edges)
    assert any(parts["values"] == ["3"] for _, _, parts in edges)
    _, edges = parse_dot(viz.to_dot(f, values=False, recording=rec))
    assert all(not parts["values"] for _, _, parts in edges)
    _, edges = parse_dot(viz.to_dot(f, recording=False))
    assert all(not parts["grads"] for _, _, parts in edges)


def test_forward_only_recording_shows_values_before_any_backward():
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.autograd.record_grads() as rec:
        out = gg.exp(a * 2).sum()
    nodes, edges = parse_dot(viz.to_dot(out, recording=rec))
    ids = _by_title(nodes)
    exp_to_sum = _edge(edges, ids["ExpBackward"], ids["SumBackward"])
    assert exp_to_sum["values"] == [viz.format_array(np.exp(np.array([2.0, 4.0], np.float32)))]
    assert exp_to_sum["grads"] == []
    assert any(parts["title"] is None and "constant" in parts["raw"] for parts in nodes.values())


def test_retain_graph_values_come_from_saved_tensors_without_a_recording():
    x = gg.tensor(-2.0, requires_grad=True)
    y = gg.tensor(5.0, requires_grad=True)
    z = gg.tensor(-4.0, requires_grad=True)
    f = (x + y) * z
    f.backward(retain_graph=True)
    nodes, edges = parse_dot(viz.to_dot(f, recording=False))
    ids = _by_title(nodes)
    assert _edge(edges, ids["AddBackward"], ids["MulBackward"])["values"] == ["3"]
    # a second backward through the kept graph, recorded: gradients appear, .grad doubled
    with gg.autograd.record_grads() as rec:
        f.backward(retain_graph=True)
    nodes, edges = parse_dot(viz.to_dot(f, recording=rec))
    ids = _by_title(nodes)
    assert _edge(edges, ids["AddBackward"], ids["MulBackward"])["grads"] == ["-4"]
    x_leaf = [i for i, p in nodes.items() if p["values"] == ["-2"] and p["title"] != "output"]
    assert nodes[x_leaf[0]]["grads"] == ["-8"]  # accumulated over both passes


def test_create_graph_double_backward_graph():
    x = gg.tensor([0.5, -1.0, 2.0], dtype=gg.float64, requires_grad=True)
    with gg.autograd.record_grads() as rec:
        y = gg.sigmoid(x).sum()
        (gx,) = gg.autograd.grad(y, x, create_graph=True)
        gx.sum().backward()
    nodes, edges = parse_dot(viz.to_dot(gx, recording=rec))
    ids = _by_title(nodes)
    assert "SigmoidBackwardBackward" in ids and "SigmoidBackward" in ids
    _edge(edges, ids["SigmoidBackward"], ids["SigmoidBackwardBackward"])
    s = 1 / (1 + np.exp(-x.array))
    assert nodes["out"]["values"] == [viz.format_array(s * (1 - s))]
    assert nodes["out"]["grads"] == ["[1, 1, 1]"]
    leaf = ids["AccumulateGrad"]
    assert nodes[leaf]["grads"] == [viz.format_array(s * (1 - s) * (1 - 2 * s))]


def test_multi_use_leaf_and_large_tensors():
    gg.manual_seed(0)
    w = gg.randn(4, 5, requires_grad=True)
    with gg.autograd.record_grads():
        loss = (w * w).sum()
        loss.backward()
    nodes, edges = parse_dot(viz.to_dot(loss, names={"w": w}))
    ids = _by_title(nodes)
    parallel = [p for t, h, p in edges if t == ids["w"] and h == ids["MulBackward"]]
    assert len(parallel) == 2  # w feeds Mul twice: two edges, each with its own gradient
    host = w.array
    for parts in parallel:
        assert parts["values"] == [viz.format_array(host)]
        assert parts["grads"] == [viz.format_array(host)]  # d(w*w)/d(a) = b = w
    assert nodes[ids["w"]]["grads"] == [viz.format_array(2 * host)]
    assert viz.format_array(host).startswith("(4, 5) mean ")


@pytest.mark.parametrize(
    "value, text",
    [
        (np.float32(-2.0), "-2"),
        (np.float32(0.1), "0.1"),
        (np.float64(0.1), "0.1"),
        (np.float64(1 / 3), "0.3333333333333333"),
        (np.float32(1e-8), "1e-08"),
        (np.float64(float("nan")), "nan"),
        (np.float64(float("-inf")), "-inf"),
        (np.int64(7), "7"),
        (np.array([1.0, 2.5, -3.0], np.float32), "[1, 2.5, -3]"),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), "[[1, 2], [3, 4]]"),
        (np.array([5.0]), "[5]"),
        (np.arange(10, dtype=np.float64), "(10,) mean 4.5 min 0 max 9"),
        (
            np.array([1.0, np.nan, 3.0, np.inf, 5.0, 7.0, 9.0]),
            "(7,) mean 5 min 1 max 9 nan×1 inf×1",
        ),
    ],
)
def test_format_array(value, text):
    assert viz.format_array(np.asarray(value)) == text


def test_output_that_is_a_leaf_or_needs_no_grad():
    a = gg.tensor(3.0, requires_grad=True)
    nodes, edges = parse_dot(viz.to_dot(a, recording=False))
    assert nodes["out"]["values"] == ["3"] and len(edges) == 1
    b = gg.tensor([1.0, 2.0])
    nodes, edges = parse_dot(viz.to_dot(b * 2, recording=False))
    assert nodes["out"]["values"] == ["[2, 4]"] and edges == []
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.to_dot(np.zeros(2))


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_render_writes_a_picture(tmp_path, suffix, magic):
    x, y, z, f, _ = _lecture_example()
    path = viz.render(f, tmp_path / f"graph{suffix}", names={"x": x, "y": y, "z": z})
    assert magic in (tmp_path / f"graph{suffix}").read_bytes()[:400]
    assert path == str(tmp_path / f"graph{suffix}")


def test_render_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    *_, f, _ = _lecture_example()
    with pytest.raises(RuntimeError, match="apt-get install graphviz") as err:
        viz.render(f, tmp_path / "g.svg")
    assert "brew install graphviz" in str(err.value) and "conda install graphviz" in str(err.value)
    with pytest.raises(ValueError, match="unsupported file type"):
        viz.render(f, tmp_path / "g.jpg")


def test_recording_leaves_no_observer_behind():
    assert engine.observers == [] and function.forward_observers == []
    with gg.autograd.record_grads() as outer:
        with gg.autograd.record_grads(values=False):
            assert len(engine.observers) == 2 and len(function.forward_observers) == 1
        assert len(engine.observers) == 1 and engine.observers[0] == outer._on_backward
    assert engine.observers == [] and function.forward_observers == []
    with pytest.raises(ZeroDivisionError), gg.autograd.record_grads():
        raise ZeroDivisionError("the body fails")
    assert engine.observers == [] and function.forward_observers == []


def test_recording_does_not_keep_graphs_alive():
    with gg.autograd.record_grads() as rec:
        a = gg.tensor([1.0, 2.0], requires_grad=True)
        out = (a * 3).sum()
        out.backward()
    assert len(rec.values) == 2 and len(rec.grad_outputs) == 2
    del out
    gc.collect()
    assert len(rec.values) == 0 and len(rec.grad_outputs) == 0
    assert isinstance(rec, Recording)


def test_deep_chain_needs_no_recursion():
    x = gg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + 1
    text = viz.to_dot(y, recording=False)
    assert text.count("AddBackward") == 3000
