"""Anomaly mode: nodes remember where forward created them, and a NaN/Inf made in backward
raises an error naming the node and showing that forward traceback."""
from __future__ import annotations

from gpugrad.autograd import mode
from gpugrad.backend import xp_of


class detect_anomaly:
    """Context manager: check every backward result for NaN / Inf (slow; for debugging)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = mode.state.anomaly
        mode.state.anomaly = self.check_nan
        return self

    def __exit__(self, *exc):
        mode.state.anomaly = self._prev
        return False


def is_anomaly_enabled() -> bool:
    return mode.state.anomaly


def check_node(node, grad_inputs):
    for i, g in enumerate(grad_inputs):
        if g is None:
            continue
        array = g.array
        if array.dtype.kind == "f" and not bool(xp_of(array).isfinite(array).all()):
            where = "".join(node.creation_trace or ["  (no trace: the node was created outside detect_anomaly)\n"])
            bad = "nan" if bool(xp_of(array).isnan(array).any()) else "inf"
            raise RuntimeError(
                f"Function '{node.name()}' returned {bad} values in its {i}th output.\n"
                f"Traceback of the forward call that created this node:\n{where}"
            )
