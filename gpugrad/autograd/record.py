"""Opt-in recording of what flows through the graph: forward values per node output and,
per backward run, the gradients into and out of every node. Nothing is recorded (and the
engine's observer lists stay empty) outside `with record_grads():`."""

from __future__ import annotations

import weakref

from gpugrad.autograd import engine, function
from gpugrad.autograd.function import AccumulateGrad

# A strong reference, so `with record_grads():` without `as` still feeds gg.viz.to_dot; it
# holds little, since a recording's tables let go of each graph when the graph dies.
_latest: Recording | None = None


def latest() -> Recording | None:
    """The recording most recently opened by record_grads() (None before the first one)."""
    return _latest


def _snapshot(array):
    # a copy: a later in-place op on the tensor must not rewrite what was recorded
    return None if array is None else array.copy()


class Recording:
    """What one record_grads() block saw. Tables are keyed weakly by graph node, so a
    recording never keeps a graph alive: entries vanish with the nodes they describe.

    values[node]      -> list of output arrays, one per node output (forward)
    grad_outputs[node]-> list of gradient arrays flowing INTO the node, one per output
    grad_inputs[node] -> list of gradient arrays the node sent along node.next_edges
    leaf_grad(acc)    -> summed gradient that reached an AccumulateGrad node (its leaf)
    saved_bytes[node] -> bytes the node held for backward when it ran
    A node that runs in several backward passes keeps the gradients of the last one.
    """

    def __init__(self, values: bool = True, grads: bool = True, publish: bool = True):
        self.keep_values = values
        self.keep_grads = grads
        self.publish = publish  # become latest() on entry (internal recordings do not)
        self.values: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.grad_outputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.grad_inputs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # AccumulateGrad -> {consumer node: {edge index: gradient}}; a leaf's total is their
        # sum, so a second backward pass replaces (not adds to) what the first one recorded
        self._leaf_parts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.saved_bytes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.active = False

    # ---- observers (called by Function.apply and the engine) ------------------------
    def _on_forward(self, node, outputs):
        self.values[node] = [None if out is None else _snapshot(out.array) for out in outputs]

    def _on_backward(self, node, grad_outputs, grad_inputs):
        self.grad_outputs[node] = [None if g is None else g.array for g in grad_outputs]
        self.grad_inputs[node] = [None if g is None else g.array for g in grad_inputs]
        self.saved_bytes[node] = saved_nbytes(node)
        for k, (edge, g) in enumerate(zip(node.next_edges, grad_inputs)):
            if edge is None or g is None or not isinstance(edge[0], AccumulateGrad):
                continue
            parts = self._leaf_parts.get(edge[0])
            if parts is None:
                parts = self._leaf_parts[edge[0]] = weakref.WeakKeyDictionary()
            parts.setdefault(node, {})[k] = g.array

    # ---- queries ----------------------------------------------------------------------
    def value(self, node, output_nr: int = 0):
        """Recorded forward value of output `output_nr` of `node`, or None."""
        outs = self.values.get(node)
        if outs is None or output_nr >= len(outs):
            return None
        return outs[output_nr]

    def grad_into(self, node, output_nr: int = 0):
        """Gradient that flowed into output `output_nr` of `node` (None if not recorded)."""
        if isinstance(node, AccumulateGrad):
            return self.leaf_grad(node)
        outs = self.grad_outputs.get(node)
        if outs is None or output_nr >= len(outs):
            return None
        return outs[output_nr]

    def leaf_grad(self, acc):
        """Sum of the gradients that reached AccumulateGrad node `acc` (None if none did)."""
        parts = self._leaf_parts.get(acc)
        total = None
        for by_edge in (parts or {}).values():
            for g in by_edge.values():
                total = g.copy() if total is None else total + g
        return total

    def grad_along(self, node, k: int):
        """Gradient `node` sent back along its k-th edge (None if not recorded)."""
        outs = self.grad_inputs.get(node)
        if outs is None or k >= len(outs):
            return None
        return outs[k]

    def __contains__(self, node) -> bool:
        return node in self.values or node in self.grad_outputs or node in self._leaf_parts

    # ---- context manager --------------------------------------------------------------
    def __enter__(self):
        global _latest
        if self.active:
            raise RuntimeError("record_grads: this recording is already active")
        if self.keep_values:
            function.forward_observers.append(self._on_forward)
        if self.keep_grads:
            engine.observers.append(self._on_backward)
        self.active = True
        if self.publish:
            _latest = self
        return self

    def __exit__(self, *exc):
        self._detach()
        return False

    def _detach(self):
        for observers, fn in (
            (function.forward_observers, self._on_forward),
            (engine.observers, self._on_backward),
        ):
            # a bound method equals only itself on the same recording: nested blocks are safe
            for i, obs in enumerate(observers):
                if obs == fn:
                    del observers[i]
                    break
        self.active = False


def record_grads(values: bool = True, grads: bool = True) -> Recording:
    """Context manager: record forward values (values=True) and per-edge gradients
    (grads=True) of every graph built and every backward run inside the block.

        with gg.autograd.record_grads() as rec:
            loss = model(x).sum()
            loss.backward()
        gg.viz.to_dot(loss)   # uses the latest recording, or pass recording=rec
    """
    return Recording(values=values, grads=grads)


def saved_nbytes(node) -> int:
    """Bytes of the arrays a node keeps for backward (0 once released)."""
    saved = getattr(node, "_saved", None)
    if not saved:
        return 0
    seen, total = set(), 0
    for entry in saved:
        if entry is None or entry.array is None or id(entry.array) in seen:
            continue
        seen.add(id(entry.array))
        total += int(getattr(entry.array, "nbytes", 0))
    return total


def graph_nodes(root_node) -> list:
    """Every node reachable from root_node, breadth first (iterative: deep graphs are fine)."""
    order, seen, frontier = [root_node], {root_node}, [root_node]
    while frontier:
        following = []
        for node in frontier:
            for edge in node.next_edges:
                if edge is not None and edge[0] not in seen:
                    seen.add(edge[0])
                    order.append(edge[0])
                    following.append(edge[0])
        frontier = following
    return order
