"""Anomaly mode: nodes remember where forward created them, and a NaN/Inf made in backward
raises an error naming the node and showing that forward traceback."""

from __future__ import annotations

import os
import re

from gpugrad.autograd import mode
from gpugrad.backend import device_guard, xp_of

_FRAME = re.compile(r'\s*File "([^"]+)", line \d+')
# gpugrad/ itself: frames under it are the library's, not the user's
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


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
    """Raise if a gradient `node` sends back holds NaN or Inf (called by the engine)."""
    for i, g in enumerate(grad_inputs):
        if g is None:
            continue
        array = g.array
        if array.dtype.kind != "f":
            continue
        xp = xp_of(array)
        with device_guard(array):  # a ToDevice node's gradient lives on another GPU
            if bool(xp.isfinite(array).all()):
                continue
            nan = int(xp.count_nonzero(xp.isnan(array)))
            inf = int(xp.count_nonzero(xp.isinf(array)))
        raise RuntimeError(
            f"Function '{node.name()}' returned {'nan' if nan else 'inf'} values in its {i}th "
            f"output (the gradient for its input {i}, shape {tuple(array.shape)}: {nan} nan, "
            f"{inf} inf of {array.size} values).\n" + _forward_site(node.creation_trace)
        )


def _forward_site(trace) -> str:
    if not trace:
        return (
            "No forward traceback: the node was created outside detect_anomaly(); run the "
            "forward pass inside the block too to see where it was created.\n"
        )
    user = _user_frame(trace)
    head = f"It was created by this line of the forward pass:\n{user}" if user else ""
    return (
        head + "Traceback of the forward call that created this node "
        "(most recent call last):\n" + "".join(trace)
    )


def _user_frame(trace) -> str | None:
    """The innermost frame of the trace outside gpugrad itself: the line the user wrote."""
    for frame in reversed(trace):
        match = _FRAME.match(frame)
        if match and not os.path.abspath(match.group(1)).startswith(_PACKAGE_DIR):
            return frame
    return None
