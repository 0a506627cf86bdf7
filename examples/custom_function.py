"""A custom autograd Function: the sigmoid node of the classic backprop lecture.

forward computes y = 1 / (1 + e^-x) and saves only its output y; backward applies the local
derivative dy/dx = y (1 - y) to the upstream gradient. We check it with gradcheck (float64
central differences), then train a small model that uses it.
"""

import gpugrad as gg
import gpugrad.nn.functional as F


class Sigmoid(gg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = 1 / (1 + gg.exp(-x))
        ctx.save_for_backward(y)  # the output is all backward needs
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return grad_output * y * (1 - y)


class TinyNet(gg.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = gg.nn.Linear(2, 8)
        self.out = gg.nn.Linear(8, 1)

    def forward(self, x):
        return self.out(Sigmoid.apply(self.hidden(x)))


gg.manual_seed(0)

# 1. the gradient of our node against finite differences, in float64
x = gg.randn(4, 3, dtype=gg.float64, requires_grad=True)
assert gg.autograd.gradcheck(Sigmoid.apply, (x,), eps=1e-6, atol=1e-6)
print("gradcheck passed: backward = grad * y * (1 - y) matches central differences")

# 2. it agrees with the built-in sigmoid, value and gradient
z = gg.randn(5, requires_grad=True)
Sigmoid.apply(z).sum().backward()
ours = z.grad.numpy().copy()
z.grad = None
gg.sigmoid(z).sum().backward()
assert abs(ours - z.grad.numpy()).max() < 1e-6
print("matches gg.sigmoid's gradient")

# 3. train a tiny model that uses it on XOR
X = gg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = gg.tensor([[0.0], [1.0], [1.0], [0.0]])
model = TinyNet()
optimizer = gg.optim.Adam(model.parameters(), lr=0.05)
for step in range(1, 301):
    loss = F.binary_cross_entropy_with_logits(model(X), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step in (1, 100, 200, 300):
        print(f"step {step:3d}  loss {loss.item():.4f}")

with gg.no_grad():
    predictions = (model(X) > 0).float()
print("XOR predictions", predictions.reshape(-1).tolist(), "targets", y.reshape(-1).tolist())
