"""detect_anomaly: a NaN / Inf made in backward raises, naming the node and the user's line
of the forward pass that created it; outside the block nothing is checked."""

from __future__ import annotations

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.autograd import mode


class NanGrad(gg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * float("nan")


def test_sqrt_at_zero_gives_inf_in_backward_and_names_the_line():
    x = gg.tensor([0.0, 1.0, 4.0], requires_grad=True)
    with gg.autograd.detect_anomaly(), np.errstate(divide="ignore"):
        y = gg.sqrt(x)  # the forward line the error must point at
        with pytest.raises(RuntimeError) as err:
            y.sum().backward()
    message = str(err.value)
    assert "'SqrtBackward' returned inf values in its 0th output" in message
    assert "1 inf of 3 values" in message
    assert "test_anomaly.py" in message and "y = gg.sqrt(x)" in message
    created_by = message.split("It was created by this line of the forward pass:\n")[1]
    assert created_by.splitlines()[1].strip().startswith("y = gg.sqrt(x)")


def test_custom_function_returning_nan_is_caught_with_its_name():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    with gg.autograd.detect_anomaly():
        out = NanGrad.apply(x).sum()
        with pytest.raises(RuntimeError, match="'NanGradBackward' returned nan values") as err:
            out.backward()
    assert "out = NanGrad.apply(x).sum()" in str(err.value)
    assert x.grad is None  # the error came before anything was accumulated


def test_outside_anomaly_mode_nothing_is_checked():
    assert not gg.autograd.is_anomaly_enabled()
    x = gg.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        gg.sqrt(x).sum().backward()
    assert np.isinf(x.grad.array[0])
    z = gg.tensor([1.0], requires_grad=True)
    NanGrad.apply(z).sum().backward()
    assert np.isnan(z.grad.array).all()


def test_forward_outside_the_block_still_names_the_op():
    x = gg.tensor([0.0], requires_grad=True)
    y = gg.sqrt(x).sum()
    with (
        gg.autograd.detect_anomaly(),
        np.errstate(divide="ignore"),
        pytest.raises(RuntimeError, match="SqrtBackward") as err,
    ):
        y.backward()
    assert "created outside detect_anomaly()" in str(err.value)


def test_finite_backward_passes_and_the_mode_is_restored():
    x = gg.tensor([1.0, 4.0], requires_grad=True)
    with gg.autograd.detect_anomaly():
        assert gg.autograd.is_anomaly_enabled()
        gg.sqrt(x).sum().backward()
    assert x.grad.array.tolist() == [0.5, 0.25]
    assert mode.state.anomaly is False
    with pytest.raises(ValueError), gg.autograd.detect_anomaly():
        raise ValueError("boom")
    assert mode.state.anomaly is False
