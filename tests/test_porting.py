"""PyTorch's beginner programs ("Learning PyTorch with Examples", the autograd introduction,
the MNIST example's training loop) written once against a module named `torch` and run twice:
with torch, and with gpugrad passed in its place. The same starting weights give the same
numbers (float64, 1e-10 after the whole run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpugrad

torch = pytest.importorskip("torch")
STEPS = 150


def _start(torch, shape=()):
    rng = np.random.default_rng(0)
    return [torch.tensor(rng.standard_normal(shape), requires_grad=True) for _ in range(4)]


def tensors_and_autograd(torch):
    """The polynomial fit with tensors, autograd and a manual update."""
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)
    y = torch.sin(x)
    a, b, c, d = _start(torch)
    for _ in range(STEPS):
        y_pred = a + b * x + c * x**2 + d * x**3
        loss = (y_pred - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= 1e-5 * p.grad
                p.grad = None
    return [loss.item(), a.item(), b.item(), c.item(), d.item()]


def custom_function(torch):
    """The same fit through a user-defined autograd Function (Legendre polynomial P3)."""

    class LegendrePolynomial3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input**3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input**2 - 1)

    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)
    y = torch.sin(x)
    a, b, c, d = (
        torch.full((), v, dtype=torch.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3)
    )
    for _ in range(STEPS):
        P3 = LegendrePolynomial3.apply
        loss = (a + b * P3(c + d * x) - y).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= 5e-6 * p.grad
                p.grad = None
    return [loss.item(), a.item(), b.item(), c.item(), d.item()]


def nn_and_optim(torch):
    """nn.Sequential(Linear, Flatten(0, 1)) on x ** [1, 2, 3], MSELoss(sum), RMSprop."""
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -0.2, 0.05]]))
        model[0].bias.copy_(torch.tensor([0.3]))
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    for _ in range(STEPS):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    linear_layer = model[0]
    return [
        loss.item(),
        linear_layer.bias.item(),
        linear_layer.weight[:, 0].item(),
        linear_layer.weight[:, 1].item(),
        linear_layer.weight[:, 2].item(),
    ]


def custom_module(torch):
    """A Module with four scalar Parameters and a forward of its own; SGD with momentum."""

    class Polynomial3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = (
                torch.nn.Parameter(torch.tensor(v)) for v in (0.1, 0.9, -0.1, -0.1)
            )

        def forward(self, x):
            return self.a + self.b * x + self.c * x**2 + self.d * x**3

    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float64)
    y = torch.sin(x)
    model = Polynomial3()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    for _ in range(STEPS):
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [loss.item()] + [p.item() for p in model.parameters()]


def mnist_style_loop(torch):
    """The MNIST example's structure: log_softmax + nll_loss(sum), argmax(keepdim) with
    eq(view_as), Adadelta with StepLR, gradient clipping, train / test phases."""
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.standard_normal((96, 12)))
    y = torch.tensor(rng.integers(0, 4, 96))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(12, 16), nn.Linear(16, 4)

        def forward(self, x):
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            return F.log_softmax(self.fc2(x), dim=1)

    model = Net().double()
    with torch.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(
                torch.tensor(np.random.default_rng(10 + k).standard_normal(tuple(p.shape)) * 0.3)
            )
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    record = []
    for _ in range(3):
        model.train()
        for start in range(0, 96, 32):
            data, target = X[start : start + 32], y[start : start + 32]
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            optimizer.step()
        scheduler.step()
        model.eval()
        with torch.no_grad():
            output = model(X)
            test_loss = F.nll_loss(output, y, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct = pred.eq(y.view_as(pred)).sum().item()
        record += [loss.item(), test_loss, correct, scheduler.get_last_lr()[0]]
    return record


@pytest.mark.parametrize(
    "program",
    [tensors_and_autograd, custom_function, nn_and_optim, custom_module, mnist_style_loop],
)
def test_program_gives_torchs_numbers(program):
    ours, theirs = program(gpugrad), program(torch)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_autograd_introduction():
    for torch_ in (gpugrad, torch):
        a = torch_.tensor([2.0, 3.0], requires_grad=True)
        b = torch_.tensor([6.0, 4.0], requires_grad=True)
        Q = 3 * a**3 - b**2
        external_grad = torch_.tensor([1.0, 1.0])
        Q.backward(gradient=external_grad)
        assert (9 * a**2 == a.grad).all().item() and (-2 * b == b.grad).all().item()
