"""Reverse and forward mode autodiff: Function, backward / grad, gradcheck, forward_ad."""
from gpugrad.autograd import forward_ad, mode  # noqa: F401
from gpugrad.autograd.anomaly import detect_anomaly, is_anomaly_enabled
from gpugrad.autograd.engine import backward, grad
from gpugrad.autograd.flow import FlowReport, GradFlowTracker, flow_report, record_grads
from gpugrad.autograd.function import Function, Node
from gpugrad.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from gpugrad.autograd.mode import enable_grad, no_grad, set_grad_enabled

__all__ = ["Function", "Node", "backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError",
           "forward_ad", "no_grad", "enable_grad", "set_grad_enabled", "detect_anomaly",
           "is_anomaly_enabled", "functional", "record_grads", "flow_report", "FlowReport",
           "GradFlowTracker"]


def __getattr__(name):
    if name == "functional":  # imported on first use: it builds on gpugrad.ops
        import importlib

        return importlib.import_module("gpugrad.autograd.functional")
    raise AttributeError(name)
