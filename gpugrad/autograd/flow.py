"""Gradient-flow reports: per node and per parameter, the gradient's L2 norm, share of zeros,
NaN / Inf counts and bytes held for backward, with vanishing / exploding flags; and
GradFlowTracker, which follows per-layer gradient norms across a training run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from gpugrad.autograd.function import AccumulateGrad
from gpugrad.autograd.record import (
    Recording,
    graph_nodes,
    latest,
    record_grads,
    saved_nbytes,
)
from gpugrad.backend import device_guard, xp_of
from gpugrad.tensor import Tensor

__all__ = ["FlowReport", "FlowRow", "GradFlowTracker", "flow_report", "record_grads"]

VANISHING = 1e-7
EXPLODING = 1e3


@dataclass
class FlowRow:
    """One line of a report. norm is None when no gradient reached the node / parameter."""

    kind: str  # "node" or "param"
    name: str
    shape: tuple | None
    norm: float | None
    zero_fraction: float | None
    nan: int
    inf: int
    saved_bytes: int
    flag: str  # "", "vanishing", "exploding", "nan", "inf" or "no grad"


def _grad_stats(arrays) -> tuple:
    """(L2 norm, fraction of zeros, NaN count, Inf count) over several arrays, or Nones."""
    arrays = [a for a in arrays if a is not None]
    if not arrays:
        return None, None, 0, 0
    square_sum, size, zeros, nan, inf = 0.0, 0, 0, 0, 0
    for array in arrays:
        xp = xp_of(array)
        with device_guard(array):
            wide = array.astype(xp.float64)  # float64 sums: a float32 norm overflows early
            square_sum += float(xp.sum(wide * wide))
            size += int(array.size)
            zeros += int(xp.count_nonzero(array == 0))
            if array.dtype.kind == "f":
                nan += int(xp.count_nonzero(xp.isnan(array)))
                inf += int(xp.count_nonzero(xp.isinf(array)))
    return math.sqrt(square_sum), (zeros / size if size else 0.0), nan, inf


def _flag(norm, nan: int, inf: int, vanishing: float, exploding: float) -> str:
    if norm is None:
        return "no grad"
    if nan:
        return "nan"
    if inf:
        return "inf"
    if norm < vanishing:
        return "vanishing"
    if norm > exploding:
        return "exploding"
    return ""


def _format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    return ""  # unreachable


class FlowReport:
    """Rows per graph node (in backward order, from the loss) and per parameter;
    `recording` is the backward it read (pass it to gg.viz.to_dot(loss, recording=...))."""

    def __init__(
        self,
        nodes: list[FlowRow],
        params: list[FlowRow],
        vanishing: float,
        exploding: float,
        recording: Recording | None = None,
    ):
        self.nodes = nodes
        self.params = params
        self.vanishing = vanishing
        self.exploding = exploding
        self.recording = recording

    @property
    def flagged(self) -> list[FlowRow]:
        """Rows with a flag (vanishing, exploding, nan, inf, no grad)."""
        return [row for row in self.nodes + self.params if row.flag]

    def to_dict(self) -> dict:
        return {
            "vanishing": self.vanishing,
            "exploding": self.exploding,
            "nodes": [asdict(row) for row in self.nodes],
            "params": [asdict(row) for row in self.params],
        }

    def table(self) -> str:
        """A readable text table: nodes first, then parameters."""
        header = ("", "name", "shape", "grad L2", "zeros", "nan/inf", "saved", "flag")
        body = []
        for i, row in enumerate(self.nodes):
            body.append(self._cells(f"#{i}", row))
        if self.params:
            body.append(None)  # a rule between node and parameter rows
            for row in self.params:
                body.append(self._cells("param", row))
        widths = [len(h) for h in header]
        for cells in body:
            if cells is not None:
                widths = [max(w, len(c)) for w, c in zip(widths, cells)]
        rule = "  ".join("-" * w for w in widths)

        def line(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [line(header), rule]
        out += [rule if cells is None else line(cells) for cells in body]
        out.append(
            f"flags: vanishing < {self.vanishing:g}, exploding > {self.exploding:g}; "
            f"{len(self.flagged)} flagged"
        )
        return "\n".join(out)

    @staticmethod
    def _cells(index: str, row: FlowRow) -> tuple:
        shape = "?" if row.shape is None else "(" + ", ".join(map(str, row.shape)) + ")"
        norm = "-" if row.norm is None else f"{row.norm:.4e}"
        zeros = "-" if row.zero_fraction is None else f"{100 * row.zero_fraction:.1f}%"
        saved = _format_bytes(row.saved_bytes) if row.kind == "node" else ""
        return (index, row.name, shape, norm, zeros, f"{row.nan}/{row.inf}", saved, row.flag)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<FlowReport: {len(self.nodes)} nodes, {len(self.params)} params, "
            f"{len(self.flagged)} flagged>"
        )


def _named_parameters(model, named_parameters) -> list | None:
    if model is not None and named_parameters is not None:
        raise ValueError("flow_report: pass model or named_parameters, not both")
    if model is not None:
        named_parameters = model.named_parameters()
    if named_parameters is None:
        return None
    items = named_parameters.items() if hasattr(named_parameters, "items") else named_parameters
    return [(str(name), p) for name, p in items]


def flow_report(
    loss: Tensor,
    model=None,
    named_parameters=None,
    recording: Recording | None = None,
    vanishing: float = VANISHING,
    exploding: float = EXPLODING,
    retain_graph: bool = False,
) -> FlowReport:
    """Gradient-flow report of loss's graph. Reads the backward recorded by record_grads()
    (`recording`, or the latest recording when it saw this graph's backward); otherwise runs
    loss.backward() itself under a recording (it accumulates into .grad as usual).
    Parameters come from model.named_parameters() or named_parameters ((name, tensor) pairs
    or a dict); without either, every leaf of the graph is reported as leaf0, leaf1, ..."""
    if not isinstance(loss, Tensor) or loss.grad_fn is None:
        raise RuntimeError("flow_report: loss must be a tensor produced by ops (it has no grad_fn)")
    params = _named_parameters(model, named_parameters)
    nodes = graph_nodes(loss.grad_fn)
    if recording is None:
        candidate = latest()
        if candidate is not None and loss.grad_fn in candidate.grad_outputs:
            recording = candidate
    if recording is None:
        with Recording(values=False, publish=False) as recording:
            loss.backward(retain_graph=retain_graph)

    node_rows = []
    for node in nodes:
        if isinstance(node, AccumulateGrad):
            continue
        grads = recording.grad_outputs.get(node)
        norm, zeros, nan, inf = _grad_stats(grads or [])
        shape = None
        if grads:
            shape = next((tuple(g.shape) for g in grads if g is not None), None)
        node_rows.append(
            FlowRow(
                kind="node",
                name=node.name(),
                shape=shape,
                norm=norm,
                zero_fraction=zeros,
                nan=nan,
                inf=inf,
                saved_bytes=recording.saved_bytes.get(node, saved_nbytes(node)),
                flag=_flag(norm, nan, inf, vanishing, exploding),
            )
        )

    if params is None:
        leaves = [node.variable for node in nodes if isinstance(node, AccumulateGrad)]
        params = [(f"leaf{i}", leaf) for i, leaf in enumerate(leaves)]
    param_rows = []
    for name, p in params:
        acc = p._accumulator() if p._accumulator is not None else None
        grad = None if acc is None else recording.leaf_grad(acc)
        norm, zeros, nan, inf = _grad_stats([grad])
        param_rows.append(
            FlowRow(
                kind="param",
                name=name,
                shape=tuple(p.shape),
                norm=norm,
                zero_fraction=zeros,
                nan=nan,
                inf=inf,
                saved_bytes=0,
                flag=_flag(norm, nan, inf, vanishing, exploding),
            )
        )
    return FlowReport(node_rows, param_rows, vanishing, exploding, recording)


class GradFlowTracker:
    """Per-layer gradient norms over training. In the loop, after loss.backward():

        tracker.observe(model.named_parameters())
    and at the end of each epoch `print(tracker.end_epoch())`; finally tracker.plot(path).
    Norms stay on the device until end_epoch(), so observe() does not synchronize a GPU.
    """

    def __init__(self, vanishing: float = VANISHING, exploding: float = EXPLODING):
        self.vanishing = vanishing
        self.exploding = exploding
        self.epochs: list[dict] = []  # per finished epoch: {name: {"mean", "min", "max", "steps"}}
        self._pending: dict[str, list] = {}

    def observe(self, named_parameters) -> None:
        """Record the L2 norm of each parameter's current .grad (parameters without one are
        skipped)."""
        items = named_parameters.items() if hasattr(named_parameters, "items") else named_parameters
        for name, p in items:
            if p.grad is None:
                continue
            array = p.grad.array
            xp = xp_of(array)
            with device_guard(array):
                wide = array.astype(xp.float64)
                self._pending.setdefault(str(name), []).append(xp.sqrt(xp.sum(wide * wide)))

    def end_epoch(self) -> str:
        """Close the epoch: store per-layer mean / min / max norms; return them as a table."""
        stats = {}
        for name, norms in self._pending.items():
            values = np.array([float(n) for n in norms], dtype=np.float64)
            stats[name] = {
                "mean": float(values.mean()),
                "min": float(values.min()),
                "max": float(values.max()),
                "steps": int(values.size),
            }
        self._pending = {}
        self.epochs.append(stats)
        return self.table(len(self.epochs) - 1)

    @property
    def history(self) -> dict[str, list[float]]:
        """{layer: mean gradient norm per finished epoch} (nan where a layer had no grad)."""
        names: dict[str, None] = {}
        for stats in self.epochs:
            names.update(dict.fromkeys(stats))
        return {
            name: [stats[name]["mean"] if name in stats else math.nan for stats in self.epochs]
            for name in names
        }

    def table(self, epoch: int = -1) -> str:
        """Per-layer gradient norms of one finished epoch, as text."""
        if not self.epochs:
            return "no finished epoch"
        stats = self.epochs[epoch]
        number = epoch % len(self.epochs) + 1
        header = ("layer", "steps", "mean L2", "min L2", "max L2", "flag")
        rows = []
        for name, s in stats.items():
            flag = _flag(
                s["mean"],
                int(math.isnan(s["mean"])),
                int(math.isinf(s["mean"])),
                self.vanishing,
                self.exploding,
            )
            rows.append(
                (
                    name,
                    str(s["steps"]),
                    f"{s['mean']:.4e}",
                    f"{s['min']:.4e}",
                    f"{s['max']:.4e}",
                    flag,
                )
            )
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
            for i, h in enumerate(header)
        ]

        def line(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [f"gradient norms, epoch {number}", line(header), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in rows]
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {"vanishing": self.vanishing, "exploding": self.exploding, "epochs": self.epochs}

    def plot(self, path, title: str = "Gradient flow") -> str:
        """Write a PNG/SVG/PDF of per-layer mean gradient norm per epoch (log y); returns path."""
        if not self.epochs:
            raise ValueError("GradFlowTracker.plot: no finished epoch; call end_epoch() first")
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as err:  # an optional dependency: say how to get it
            raise RuntimeError(
                "GradFlowTracker.plot needs matplotlib: pip install matplotlib"
            ) from err
        figure = Figure(figsize=(7, 4.2), layout="constrained")
        FigureCanvasAgg(figure)  # Agg without pyplot: the user's backend stays untouched
        axes = figure.add_subplot()
        epochs = np.arange(1, len(self.epochs) + 1)
        for name, norms in self.history.items():
            values = np.array(norms, dtype=np.float64)
            values[~(values > 0)] = np.nan  # zeros and NaN have no place on a log axis
            axes.plot(epochs, values, marker="o", markersize=3, label=name)
        axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("mean gradient L2 norm")
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        figure.savefig(str(path), dpi=120)
        return str(path)
