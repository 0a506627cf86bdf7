"""Grad mode and forward-AD mode: thread-local switches read on every op."""
from __future__ import annotations

import functools
import threading


class _State(threading.local):
    def __init__(self):
        self.grad_enabled = True
        self.fw_level = 0  # > 0 inside gg.autograd.forward_ad.dual_level()
        self.fw_suspended = 0  # > 0 while a jvp rule runs (tangents of tangents are not tracked)
        self.anomaly = False  # gg.autograd.detect_anomaly(): record traces, check backward for NaN


state = _State()


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward."""
    return state.grad_enabled


class _GradMode:
    enabled = True

    def __enter__(self):
        self._prev = state.grad_enabled
        state.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        state.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator: ops run without recording the graph."""

    enabled = False


class enable_grad(_GradMode):
    """Context manager / decorator: ops record the graph (inside no_grad too)."""

    enabled = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode: bool):
        self.enabled = bool(mode)
        self._prev = state.grad_enabled
        state.grad_enabled = self.enabled  # like torch, it also works as a plain call

    def __enter__(self):
        return self

