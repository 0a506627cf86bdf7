"""Pictures of the recorded graph, drawn as the backprop lecture draws them: forward values
(blue) above backward gradients (red) on every edge, leaves with their value and .grad.

Values and gradients come from gg.autograd.record_grads(); without a recording, values are
read from what the graph still holds (the output, the leaves, saved tensors).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np

from gpugrad import backend
from gpugrad.autograd import record as _record
from gpugrad.autograd.function import AccumulateGrad
from gpugrad.tensor import Tensor

__all__ = ["format_array", "render", "to_dot"]

VALUE_COLOR = "#1f5fbf"
GRAD_COLOR = "#c62828"
_SMALL = 6  # tensors with at most this many entries are printed in full

_INSTALL_HINT = (
    "gg.viz.render needs Graphviz's `dot` program, which is not on PATH. Install it with "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install graphviz`, or write gg.viz.to_dot(...) to a .dot file and render it "
    "elsewhere."
)


# ---- formatting numbers -------------------------------------------------------------------
def _to_host(array) -> np.ndarray:
    return backend.to_host(array)


def _format_exact(value) -> str:
    """Shortest text that reads back to the same number: -2, 0.5, 1e-08, nan."""
    kind = np.asarray(value).dtype.kind
    if kind == "b":
        return str(bool(value))
    if kind in "iu":
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")
    if number == int(number) and abs(number) < 1e16:
        return str(int(number))  # -2.0 -> "-2": integers print without ".0"
    try:
        if 1e-4 <= abs(number) < 1e16:
            return np.format_float_positional(value, unique=True, trim="-")
        return np.format_float_scientific(value, unique=True, trim="-")
    except TypeError:  # a dtype NumPy cannot format (bfloat16): Python's repr
        return repr(number)


def _format_short(value) -> str:
    """Four significant digits, for entries of a tensor and summaries."""
    kind = np.asarray(value).dtype.kind
    if kind == "b":
        return str(bool(value))
    if kind in "iu":
        return str(int(value))
    return f"{float(value):.4g}"


def _format_shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def format_array(array) -> str:
    """One-line text for a value or gradient: the number itself for one element, the
    entries for small tensors, else shape with mean / min / max (and NaN / Inf counts)."""
    host = _to_host(array)
    if host.size == 1:
        text = _format_exact(host.reshape(())[()])
        return text if host.ndim == 0 else "[" * host.ndim + text + "]" * host.ndim
    if host.size <= _SMALL:
        return _nested(host)
    if host.size == 0:
        return f"{_format_shape(host.shape)} empty"
    text = _format_shape(host.shape)
    if host.dtype.kind == "f":
        finite = host[np.isfinite(host)].astype(np.float64)
        nan, inf = int(np.isnan(host).sum()), int(np.isinf(host).sum())
    else:
        finite, nan, inf = host, 0, 0
    if finite.size:
        text += (
            f" mean {_format_short(finite.mean())} min {_format_short(finite.min())}"
            f" max {_format_short(finite.max())}"
        )
    if nan:
        text += f" nan×{nan}"
    if inf:
        text += f" inf×{inf}"
    return text


def _nested(host: np.ndarray) -> str:
    if host.ndim == 0:
        return _format_short(host[()])
    return "[" + ", ".join(_nested(row) for row in host) + "]"


# ---- walking the graph --------------------------------------------------------------------
def _saved_values(nodes) -> dict:
    """(id(node), output_nr) -> array, from the tensors nodes saved for backward (available
    before backward runs, or after backward with retain_graph=True)."""
    found = {}
    for node in nodes:
        saved = getattr(node, "_saved", None)
        if not saved:
            continue
        for entry, is_output in zip(saved, node._saved_is_output):
            if entry is None or entry.array is None:
                continue
            if is_output:
                found.setdefault((id(node), entry.output_nr), entry.array)
            elif entry.grad_fn is not None:
                found.setdefault((id(entry.grad_fn), entry.output_nr), entry.array)
    return found


class _Graph:
    """What to_dot needs to know about one graph, gathered once."""

    def __init__(self, output: Tensor, recording):
        self.output = output
        self.recording = recording
        self.root = None
        if output.grad_fn is not None:
            self.root = (output.grad_fn, output._output_nr)
        elif output.requires_grad:
            acc = output._accumulator() if output._accumulator is not None else None
            self.root = (acc if acc is not None else AccumulateGrad(output), 0)
        self.nodes = _record.graph_nodes(self.root[0]) if self.root is not None else []
        self.saved = _saved_values(self.nodes)
        self.shapes = {}  # (id(node), nr) -> shape, from what consumers recorded of inputs
        for node in self.nodes:
            for edge, meta in zip(node.next_edges, getattr(node, "input_meta", ())):
                if edge is not None and meta is not None:
                    self.shapes.setdefault((id(edge[0]), edge[1]), meta[0])
        if self.root is not None:
            self.shapes[(id(self.root[0]), self.root[1])] = output.shape

    def value(self, node, output_nr: int):
        if isinstance(node, AccumulateGrad):
            return node.variable.array
        if self.recording is not None:
            recorded = self.recording.value(node, output_nr)
            if recorded is not None:
                return recorded
        if self.root is not None and node is self.root[0] and output_nr == self.root[1]:
            return self.output.array
        return self.saved.get((id(node), output_nr))

    def shape(self, node, output_nr: int):
        if isinstance(node, AccumulateGrad):
            return node.variable.shape
        value = self.value(node, output_nr)
        return value.shape if value is not None else self.shapes.get((id(node), output_nr))

    def grad_along(self, node, k: int):
        return None if self.recording is None else self.recording.grad_along(node, k)

    def seed(self):
        if self.recording is None or self.root is None:
            return None
        node, nr = self.root
        if isinstance(node, AccumulateGrad):
            return None
        return self.recording.grad_into(node, nr)


# ---- DOT text -----------------------------------------------------------------------------
def _escape(text: str) -> str:
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.replace(char, entity)
    return text


def _font(text: str, color: str) -> str:
    return f'<font color="{color}">{_escape(text)}</font>'


def _value_grad_lines(value, grad, values: bool, grads: bool) -> list[str]:
    lines = []
    if values and value is not None:
        lines.append(_font(format_array(value), VALUE_COLOR))
    if grads and grad is not None:
        lines.append(_font(format_array(grad), GRAD_COLOR))
    return lines


def _html(lines: list[str]) -> str:
    return "<" + "<br/>".join(lines) + ">"


def _shape_text(shape) -> str:
    if shape is None:
        return "shape ?"
    return "scalar" if len(shape) == 0 else "×".join(str(n) for n in shape)


def _resolve_recording(recording):
    if recording is None:
        return _record.latest()
    if recording is False:
        return None
    return recording


def _names_by_id(names) -> dict:
    if names is None:
        return {}
    items = names.items() if hasattr(names, "items") else names
    return {id(tensor): str(name) for name, tensor in items}


def to_dot(
    output: Tensor,
    values: bool = True,
    grads: bool = True,
    recording=None,
    names=None,
    legend: bool = True,
) -> str:
    """Graphviz DOT text of the graph that produced `output`: one box per op node (its name
    and output shape), one oval per leaf (value and accumulated .grad), and on every edge
    the forward value (blue) above the gradient that flowed back along it (red).

    recording: a gg.autograd.record_grads() recording (default: the latest one; False for
    none). names: {name: tensor} (e.g. dict(model.named_parameters())) labels leaves.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(output).__name__}")
    graph = _Graph(output, _resolve_recording(recording))
    named = _names_by_id(names)
    ids = {id(node): f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = [
        "digraph gpugrad {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", nodesep=0.35, ranksep=0.6];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10, color="#555555"];',
    ]
    for node in graph.nodes:
        lines.append(f"  {ids[id(node)]} {_node_attrs(node, graph, named, values, grads)};")

    constants = 0
    for node in graph.nodes:
        metas = getattr(node, "input_meta", ())
        for k, edge in enumerate(node.next_edges):
            if edge is None:
                meta = metas[k] if k < len(metas) else None
                if meta is None:
                    continue  # a non-tensor argument (a Python number, a mask array)
                const_id = f"c{constants}"
                constants += 1
                label = _html([_escape("constant"), _escape(_shape_text(meta[0]))])
                lines.append(
                    f'  {const_id} [shape=plaintext, fontsize=9, fontcolor="#888888", '
                    f"label={label}];"
                )
                lines.append(f'  {const_id} -> {ids[id(node)]} [style=dashed, color="#aaaaaa"];')
                continue
            producer, nr = edge
            value = graph.value(producer, nr)
            grad = graph.grad_along(node, k)
            attrs = []
            label_lines = _value_grad_lines(value, grad, values, grads)
            if label_lines:
                attrs.append(f"label={_html(label_lines)}")
            if producer.num_outputs > 1:
                attrs.append(f'taillabel="{nr}"')
            attr_text = f" [{', '.join(attrs)}]" if attrs else ""
            lines.append(f"  {ids[id(producer)]} -> {ids[id(node)]}{attr_text};")

    out_title = named.get(id(output), "output")
    out_lines = [f"<b>{_escape(out_title)}</b>", _escape(_shape_text(output.shape))]
    seed = graph.seed()
    out_lines += _value_grad_lines(output.array, seed, values, grads)
    lines.append(
        '  out [shape=oval, peripheries=2, style=filled, fillcolor="#fdebd0", '
        f"label={_html(out_lines)}];"
    )
    if graph.root is not None:
        edge_lines = _value_grad_lines(output.array, seed, values, grads)
        attr_text = f" [label={_html(edge_lines)}]" if edge_lines else ""
        lines.append(f"  {ids[id(graph.root[0])]} -> out{attr_text};")

    if legend and (values or grads):
        key = []
        if values:
            key.append(_font("value (forward)", VALUE_COLOR))
        if grads:
            key.append(_font("gradient (backward)", GRAD_COLOR))
        lines.append(f"  legend [shape=note, fontsize=9, label={_html(key)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_attrs(node, graph: _Graph, named: dict, values: bool, grads: bool) -> str:
    if isinstance(node, AccumulateGrad):
        leaf = node.variable
        title = named.get(id(leaf), "AccumulateGrad")
        label = [f"<b>{_escape(title)}</b>", _escape(_shape_text(leaf.shape))]
        grad = None if leaf.grad is None else leaf.grad.array
        label += _value_grad_lines(leaf.array, grad, values, grads)
        return f'[shape=oval, style=filled, fillcolor="#dbe9f6", label={_html(label)}]'
    shapes = [_shape_text(graph.shape(node, nr)) for nr in range(node.num_outputs)]
    label = [f"<b>{_escape(node.name())}</b>", _escape(", ".join(shapes))]
    return f'[shape=box, style="rounded,filled", fillcolor="#eeeeee", label={_html(label)}]'


# ---- rendering ----------------------------------------------------------------------------
def render(output: Tensor, path, dpi: int = 150, **to_dot_kwargs) -> str:
    """Draw the graph of `output` to path (.svg, .png or .pdf) with Graphviz's `dot`;
    returns the path. to_dot_kwargs: values, grads, recording, names, legend."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render: unsupported file type {path.suffix!r}; use .svg, .png or .pdf")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(_INSTALL_HINT)
    text = to_dot(output, **to_dot_kwargs)
    command = [dot, f"-T{fmt}", "-o", str(path)]
    if fmt == "png":
        command.insert(1, f"-Gdpi={int(dpi)}")
    result = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"render: `dot -T{fmt}` failed (exit {result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    return str(path)
